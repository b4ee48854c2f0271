"""Prometheus metrics: the Temporal SDK's exporter serves the SDK's metrics and orderflow's own.

One endpoint per process (`<address>/metrics`). orderflow's metrics are created from the SDK's meter:
activities use `activity.metric_meter()`, workflows `workflow.metric_meter()` (silent during replay,
so a replayed order is never counted twice), the API `Runtime.metric_meter`.
"""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

NOTIFICATIONS_SENT = "orderflow_notifications_sent"  # {kind}: reminders, shipped, cancelled mails
MAIL_GIVEN_UP = "orderflow_mail_given_up"  # {kind}: unsent past ORDERS_MAIL_GIVE_UP_AFTER, never sent
STOCK_LOCKS = "orderflow_stock_locks"  # {result: locked | split | short}
ORDER_EXCEPTIONS = "orderflow_order_exceptions"  # {reason}: out_of_stock, lock_stock_failed, ...
ORDERS_PLACED = "orderflow_orders_placed"  # {channel}
WEBHOOKS_REJECTED = "orderflow_webhooks_rejected"  # {source}: refused for their signature (401)
ORDERS_BY_STATUS = "orderflow_orders"  # gauge {status}, from the read model
PROJECTION_FAILURES = "orderflow_projection_failures"  # read-model writes that failed (retried later)
READ_MODEL_LAGGING = "orderflow_read_model_lagging_orders"  # gauge: orders whose read model is behind


def metrics_runtime(address: str | None) -> Runtime | None:
    """A Temporal runtime exporting Prometheus metrics on `address` (host:port), or None when off."""
    if not address:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
