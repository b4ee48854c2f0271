"""Shipment requests to warehouses: written once per (order, warehouse), read by the warehouse side."""

from __future__ import annotations

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.effects import CancelShipmentRequest, ChangeShipmentAddress, RequestShipment
from services.db import transaction
from services.tables import ShipmentRequest


class ShipmentService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def request(self, request: RequestShipment) -> bool:
        """Ask the warehouse to ship. False when it was already asked (a retry); a request withdrawn
        earlier (the order moved away and back) is reopened with the current lines and address."""
        lines = [line.model_dump(mode="json") for line in request.lines]
        address = request.address.model_dump(mode="json")
        try:
            with transaction(self._engine) as session:
                session.add(
                    ShipmentRequest(
                        order_id=request.order_id,
                        warehouse=request.warehouse,
                        lines=lines,
                        address=address,
                        ship_by=request.ship_by,
                    )
                )
            return True
        except IntegrityError:
            pass
        with transaction(self._engine) as session:
            result = session.execute(
                update(ShipmentRequest)
                .where(
                    col(ShipmentRequest.order_id) == request.order_id,
                    col(ShipmentRequest.warehouse) == request.warehouse,
                    col(ShipmentRequest.status) == "cancelled",
                )
                .values(status="requested", lines=lines, address=address, ship_by=request.ship_by)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def mark_shipped(self, order_id: str, warehouse: str) -> bool:
        """The parcel left (shipped by the warehouse or outside orderflow): nothing more to pick. A
        request a hold withdrew counts too: the warehouse shipped it anyway, and the record says so."""
        return self._close_open(order_id, warehouse, "shipped", also=("cancelled",))

    def cancel(self, request: CancelShipmentRequest) -> bool:
        """Withdraw a request the warehouse has not fulfilled; False when there was none to withdraw."""
        return self._close_open(request.order_id, request.warehouse, "cancelled")

    def _close_open(self, order_id: str, warehouse: str, status: str, also: tuple[str, ...] = ()) -> bool:
        """Move the open request of (order, warehouse) (or one in `also`) to `status`; False when none was."""
        with transaction(self._engine) as session:
            result = session.execute(
                update(ShipmentRequest)
                .where(
                    col(ShipmentRequest.order_id) == order_id,
                    col(ShipmentRequest.warehouse) == warehouse,
                    col(ShipmentRequest.status).in_(("requested", *also)),
                )
                .values(status=status)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def change_address(self, request: ChangeShipmentAddress) -> int:
        """Point open requests at the new address; returns how many changed."""
        with transaction(self._engine) as session:
            result = session.execute(
                update(ShipmentRequest)
                .where(
                    col(ShipmentRequest.order_id) == request.order_id,
                    col(ShipmentRequest.status) == "requested",
                )
                .values(address=request.address.model_dump(mode="json"))
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def for_order(self, order_id: str) -> list[ShipmentRequest]:
        with Session(self._engine) as session:
            return list(
                session.exec(select(ShipmentRequest).where(ShipmentRequest.order_id == order_id)).all()
            )

    def pending(self, warehouse: str) -> list[ShipmentRequest]:
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(ShipmentRequest).where(
                        ShipmentRequest.warehouse == warehouse,
                        ShipmentRequest.status == "requested",
                    )
                ).all()
            )
