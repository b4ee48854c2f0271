"""Order bookkeeping activities: read-model projection, payments, refunds, shipment requests."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import RecordPayment, RecordRefund, RequestShipment
from domain.models import OrderView
from services.orders import OrderStore
from services.payments import PaymentConflict, PaymentService
from services.shipments import ShipmentService


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
            return self._payments.record_payment(request)
        except PaymentConflict as exc:
            raise ApplicationError(str(exc), type="PaymentConflict", non_retryable=True) from exc

    @activity.defn
    def record_refund(self, request: RecordRefund) -> str:
        return self._payments.record_refund(request)

    @activity.defn
    def request_shipment(self, request: RequestShipment) -> bool:
        return self._shipments.request(request)
