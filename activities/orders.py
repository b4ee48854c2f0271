"""Order bookkeeping activities: read-model projection, payments, refunds, shipment requests."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import RecordPayment, RecordRefund, RequestShipment
from domain.models import OrderView
from services.orders import OrderStore
from services.payments import PaymentConflict, PaymentService
from services.shipments import ShipmentService

log = structlog.get_logger(__name__)


class OrderActivities:
    def __init__(self, orders: OrderStore, payments: PaymentService, shipments: ShipmentService) -> None:
        self._orders = orders
        self._payments = payments
        self._shipments = shipments

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
