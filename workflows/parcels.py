"""The parcels of one order: one per warehouse its stock is locked in, each shipped and tracked alone.

Deterministic bookkeeping used inside OrderWorkflow (an in-workflow equivalent of a child workflow
per shipment: see docs/ARCHITECTURE.md for why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import Part, PartLine, ShipmentView
    from domain.transitions import Command


@dataclass
class Parcel:
    warehouse: str
    lines: list[PartLine]
    status: str = "locked"  # locked -> requested -> shipped -> in_transit -> delivered | withdrawn
    ship_by: datetime | None = None
    late: bool = False
    carrier: str | None = None
    tracking_number: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def shipped(self) -> bool:
        return self.status in ("shipped", "in_transit", "delivered")

    def view(self) -> ShipmentView:
        return ShipmentView(
            warehouse=self.warehouse,
            lines=self.lines,
            status=self.status,
            ship_by=self.ship_by,
            late=self.late,
            carrier=self.carrier,
            tracking_number=self.tracking_number,
            shipped_at=self.shipped_at,
            delivered_at=self.delivered_at,
        )

    @classmethod
    def from_view(cls, view: ShipmentView) -> Parcel:
        return cls(
            warehouse=view.warehouse,
            lines=list(view.lines),
            status=view.status,
            ship_by=view.ship_by,
            late=view.late,
            carrier=view.carrier,
            tracking_number=view.tracking_number,
            shipped_at=view.shipped_at,
            delivered_at=view.delivered_at,
        )

    def describe(self) -> str:
        items = ", ".join(f"{line.quantity} x {line.sku}" for line in self.lines)
        return f"{items} from {self.warehouse}"


@dataclass
class Parcels:
    items: list[Parcel] = field(default_factory=list)

    @classmethod
    def from_parts(cls, parts: list[Part], ship_by: datetime | None) -> Parcels:
        return cls([Parcel(part.warehouse, list(part.lines), ship_by=ship_by) for part in parts])

    @property
    def active(self) -> list[Parcel]:
        return [p for p in self.items if p.status != "withdrawn"]

    @property
    def label(self) -> str | None:
        """'WH-SZ', or 'WH-SZ+WH-LA' for a split order; None before stock is placed."""
        codes = [p.warehouse for p in self.active]
        return "+".join(codes) if codes else None

    def to_request(self) -> list[Parcel]:
        return [p for p in self.active if p.status == "locked"]

    def requested(self) -> list[Parcel]:
        return [p for p in self.active if p.status == "requested"]

    def unshipped(self) -> list[Parcel]:
        return [p for p in self.active if not p.shipped]

    def for_shipment(self, warehouse: str) -> tuple[Parcel | None, str | None]:
        """The parcel a warehouse's shipment confirmation is about, or why there is none."""
        for parcel in self.active:
            if parcel.warehouse == warehouse:
                if parcel.shipped:
                    return None, f"the parcel from {warehouse} already shipped ({parcel.tracking_number})"
                return parcel, None
        return None, f"stock for this order is locked in {self.label}, not in {warehouse}"

    def for_tracking(self, tracking_number: str | None) -> tuple[Parcel | None, str | None]:
        """The parcel a carrier event is about, or why it cannot be told."""
        shipped = [p for p in self.active if p.shipped]
        if tracking_number is not None:
            for parcel in shipped:
                if parcel.tracking_number == tracking_number:
                    return parcel, None
            return None, f"no parcel of this order has tracking number {tracking_number}"
        if len(self.active) > 1:
            return None, "this order ships in several parcels: name the tracking_number"
        if not shipped:
            return None, "the order has not shipped yet"
        return shipped[0], None

    def ship_command(self, parcel: Parcel) -> Command:
        """SHIP when this is the last parcel to leave, else SHIP_PART."""
        others = [p for p in self.unshipped() if p is not parcel]
        return Command.SHIP_PART if others else Command.SHIP

    def deliver_command(self, parcel: Parcel) -> Command:
        """DELIVER when every other parcel has arrived and all have shipped, else DELIVER_PART."""
        others = [p for p in self.active if p is not parcel]
        return Command.DELIVER if all(p.status == "delivered" for p in others) else Command.DELIVER_PART

    def views(self) -> list[ShipmentView]:
        return [p.view() for p in self.items]
