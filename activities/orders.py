"""Order bookkeeping activities: read-model projection, payments, refunds, shipment requests."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import (
    AuditEntry,
    CancelShipmentRequest,
    ChangeShipmentAddress,
    RecordPayment,
    RecordRefund,
    RequestShipment,
    ShipStock,
)
from domain.models import OrderView
from services.audit import AuditService
from services.orders import OrderStore
from services.payments import PaymentConflict, PaymentService
from services.shipments import ShipmentService

log = structlog.get_logger(__name__)


class OrderActivities:
    def __init__(
        self, orders: OrderStore, payments: PaymentService, shipments: ShipmentService, audit: AuditService
    ) -> None:
        self._orders = orders
        self._payments = payments
        self._shipments = shipments
        self._audit = audit

    @activity.defn
    def project_order(self, view: OrderView) -> None:
        self._orders.project(view)

    @activity.defn
    def record_payment(self, request: RecordPayment) -> bool:
        try:
            recorded = self._payments.record_payment(request)
        except PaymentConflict as exc:
            log.warning("payment_conflict", order_id=request.order_id, error=str(exc))
            raise ApplicationError(str(exc), type="PaymentConflict", non_retryable=True) from exc
        log.info("payment_recorded", order_id=request.order_id, new=recorded)
        return recorded

    @activity.defn
    def record_refund(self, request: RecordRefund) -> str:
        refund_id = self._payments.record_refund(request)
        log.info("refund_recorded", order_id=request.order_id, refund_id=refund_id)
        return refund_id

    @activity.defn
    def request_shipment(self, request: RequestShipment) -> bool:
        return self._shipments.request(request)

    @activity.defn
    def cancel_shipment_request(self, request: CancelShipmentRequest) -> bool:
        withdrawn = self._shipments.cancel(request)
        log.info("shipment_request_withdrawn", order_id=request.order_id, warehouse=request.warehouse)
        return withdrawn

    @activity.defn
    def close_shipment_request(self, request: ShipStock) -> bool:
        return self._shipments.mark_shipped(request.order_id, request.warehouse)

    @activity.defn
    def change_shipment_address(self, request: ChangeShipmentAddress) -> int:
        return self._shipments.change_address(request)

    @activity.defn
    def record_audit(self, entry: AuditEntry) -> bool:
        recorded = self._audit.record(entry)
        log.info("operator_action", order_id=entry.order_id, action=entry.action, actor=entry.actor)
        return recorded
