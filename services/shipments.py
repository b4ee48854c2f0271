"""Shipment requests to warehouses: written once per (order, warehouse), read by the warehouse side."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.effects import RequestShipment
from services.db import transaction
from services.tables import ShipmentRequest


class ShipmentService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def request(self, request: RequestShipment) -> bool:
        """False when the warehouse was already asked for this order (a retry)."""
        try:
            with transaction(self._engine) as session:
                session.add(
                    ShipmentRequest(
                        order_id=request.order_id,
                        warehouse=request.warehouse,
                        lines=[line.model_dump(mode="json") for line in request.lines],
                        address=request.address.model_dump(mode="json"),
                        ship_by=request.ship_by,
                    )
                )
            return True
        except IntegrityError:
            return False

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
