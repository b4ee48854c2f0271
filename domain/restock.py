"""Restock dispatch types: stock that arrived, the dispatcher's state and what one sweep did."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from domain.models import Model

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def dispatcher_id(task_queue: str) -> str:
    """One dispatcher per task queue: the workflow id every signal-with-start names."""
    return f"restock-dispatcher-{task_queue}"


def order_workflow_id(order_id: str) -> str:
    """The order's workflow id (the same scheme app/orders.py starts orders with)."""
    return f"order-{order_id}"


def merge_skus(*groups: list[str]) -> list[str]:
    """SKUs in first-seen order, each once."""
    return list(dict.fromkeys(sku for group in groups for sku in group))


def skus_text(skus: list[str], at_most: int = 5) -> str:
    """A short list for summaries and details: the first few SKUs and how many more."""
    shown = ", ".join(skus[:at_most])
    return f"{shown} and {len(skus) - at_most} more" if len(skus) > at_most else shown


class StockArrived(Model):
    """Signal: on-hand stock of these SKUs grew (PUT /inventory, CSV import)."""

    skus: list[Sku]


class RestockBatch(Model):
    """One sweep: wake the orders waiting for any of `skus`. `sweep_id` makes each order's update
    idempotent across the activity's retries."""

    sweep_id: str
    skus: list[Sku]


class RestockProgress(Model):
    """Heartbeat details: the orders a sweep already served, not served again when it is retried."""

    locked: list[str] = Field(default_factory=list)
    still_short: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # refused (no longer waiting) or gone


class RestockOutcome(RestockProgress):
    """What a sweep did, by order id, each list in the order the orders were served."""

    skus: list[str]
    waiting: int


class RestockDispatch(Model):
    """The dispatcher's input, also what continue-as-new carries: the SKUs not swept yet, and the count
    and outcome of the sweeps so far (so its view reads the same across runs)."""

    pending: list[Sku] = Field(default_factory=list)
    batches_per_run: Annotated[int, Field(ge=1, le=10_000)] = 200
    sweeps: int = 0
    failures: int = 0  # sweeps failed in a row: the back-off goes on where it was
    last: RestockOutcome | None = None


class RestockDispatcherView(Model):
    """Query: what the dispatcher holds and did; `idle` when nothing is pending or under way."""

    pending: list[str]
    sweeping: list[str]
    sweeps: int
    failures: int
    last: RestockOutcome | None
    last_error: str | None

    @property
    def idle(self) -> bool:
        return not self.pending and not self.sweeping
