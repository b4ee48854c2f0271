"""Order identity (channel keys) and the read model: projection in, lists and single orders out."""

from __future__ import annotations

import base64
import builtins
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, func, or_, tuple_
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from domain.models import Model, OrderStatus, OrderView, default_shop_id
from domain.stages import awaits_shipment
from services.db import transaction
from services.tables import OrderEventRow, OrderKey, OrderRow, ReadModelLag


class StuckOrder(Model):
    order: OrderView
    reasons: list[str]
    since: datetime
    # What an operator can do, in words ("release: ..."); the order's own advice first.
    suggested_actions: list[str]


class BadCursor(ValueError):
    pass


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def encode_cursor(created_at: datetime, order_id: str) -> str:
    raw = json.dumps([_aware(created_at).isoformat(), order_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Only what encode_cursor makes: [aware ISO time, order id]; anything else (a NUL, bad base64 or
    UTF-8, another shape) is BadCursor, a 422, never a query the database refuses."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(decoded, list) or not all(isinstance(part, str) for part in decoded):
            raise TypeError("not a [time, order id] pair")
        created_at, order_id = decoded
        at = datetime.fromisoformat(created_at)
        if at.tzinfo is None or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", order_id):
            raise ValueError("not a time and order id this API writes")
        return at, order_id
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor is not one this API handed out; pass next_cursor back as it came") from exc


class OrderStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim_key(
        self, channel: str, channel_order_id: str, order_id: str, shop_id: str | None = None
    ) -> tuple[str, bool]:
        """Insert-or-read (shop_id, channel, channel_order_id); returns the owning order_id and if it
        is new. The same order number in two shops is two orders; None is the channel's default shop."""
        shop = shop_id or default_shop_id(channel)
        try:
            with transaction(self._engine) as session:
                session.add(
                    OrderKey(
                        shop_id=shop, channel=channel, channel_order_id=channel_order_id, order_id=order_id
                    )
                )
            return order_id, True
        except IntegrityError:
            with Session(self._engine) as session:
                key = session.get(OrderKey, (shop, channel, channel_order_id))
                if key is None:  # pragma: no cover - the conflict was on another constraint
                    raise
                return key.order_id, False

    def known(self, order_id: str) -> bool:
        with Session(self._engine) as session:
            return (
                session.exec(select(OrderKey.order_id).where(OrderKey.order_id == order_id)).first()
                is not None
            )

    def project(self, view: OrderView) -> None:
        """Upsert the order row and its timeline; an older view never overwrites a newer one.

        When the write fails, the order is marked as lagging (in a transaction of its own, if the
        database takes it) before the error goes back to the workflow, which tries again later."""
        try:
            try:
                self._project(view)
            except IntegrityError:  # a concurrent first write inserted the row: update it now
                self._project(view)
        except SQLAlchemyError as exc:
            self._mark_lagging(view.order_id, exc)
            raise

    def _mark_lagging(self, order_id: str, exc: SQLAlchemyError) -> None:
        error = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
        try:
            with transaction(self._engine) as session:
                lag = session.get(ReadModelLag, order_id, with_for_update=True)
                if lag is None:
                    session.add(ReadModelLag(order_id=order_id, last_error=error))
                else:
                    lag.failures += 1
                    lag.last_error = error
        except SQLAlchemyError:
            pass  # the database takes nothing now: the workflow's retry is what counts

    def lagging(self) -> builtins.list[ReadModelLag]:
        """Orders whose read-model row is behind their workflow, oldest first."""
        with Session(self._engine) as session:
            return list(session.exec(select(ReadModelLag).order_by(col(ReadModelLag.since))).all())

    def _project(self, view: OrderView) -> None:
        version = len(view.timeline)
        with transaction(self._engine) as session:
            row = session.get(OrderRow, view.order_id, with_for_update=True)
            if row is not None and row.version > version:
                return
            fields: dict[str, Any] = {
                "shop_id": view.shop_id or default_shop_id(view.channel.value),
                "channel": view.channel.value,
                "channel_order_id": view.channel_order_id,
                "status": view.status.value,
                "country": view.shipping_address.country,
                "currency": view.currency,
                "total": view.total,
                "warehouse": view.warehouse,
                "exception_reason": view.exception_reason,
                "on_hold": view.on_hold,
                "priority": view.priority,
                "status_since": view.status_since,
                "held_since": view.held_since,
                "payment_due_at": view.payment_due_at,
                "ship_by": view.ship_by if awaits_shipment(view.status) else None,
                "confirm_by": view.confirm_by if view.status == OrderStatus.DELIVERED else None,
                "created_at": view.created_at,
                "updated_at": view.updated_at,
                "version": version,
                "view": view.model_dump(mode="json"),
            }
            if row is None:
                session.add(OrderRow(order_id=view.order_id, **fields))
            else:
                for name, value in fields.items():
                    setattr(row, name, value)
            session.execute(
                delete(OrderEventRow).where(
                    col(OrderEventRow.order_id) == view.order_id, col(OrderEventRow.seq) >= 0
                )
            )
            session.add_all(
                OrderEventRow(order_id=view.order_id, seq=seq, at=e.at, kind=e.kind, detail=e.detail)
                for seq, e in enumerate(view.timeline)
            )
            session.execute(delete(ReadModelLag).where(col(ReadModelLag.order_id) == view.order_id))

    def get(self, order_id: str) -> OrderView | None:
        with Session(self._engine) as session:
            row = session.get(OrderRow, order_id)
            return OrderView.model_validate(row.view) if row else None

    def list(
        self,
        *,
        status: str | None = None,
        channel: str | None = None,
        country: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[OrderView], str | None]:
        """Newest first, keyset-paginated on (created_at, order_id)."""
        query = select(OrderRow)
        if status:
            query = query.where(OrderRow.status == status)
        if channel:
            query = query.where(OrderRow.channel == channel)
        if country:
            query = query.where(OrderRow.country == country)
        if cursor:
            created_at, order_id = decode_cursor(cursor)
            query = query.where(
                tuple_(col(OrderRow.created_at), col(OrderRow.order_id)) < (created_at, order_id)
            )
        query = query.order_by(col(OrderRow.created_at).desc(), col(OrderRow.order_id).desc())
        with Session(self._engine) as session:
            rows = session.exec(query.limit(limit + 1)).all()
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].created_at, page[-1].order_id) if len(rows) > limit else None
        return [OrderView.model_validate(row.view) for row in page], next_cursor

    def count_by_status(self) -> dict[str, int]:
        query = select(OrderRow.status, func.count()).group_by(col(OrderRow.status))
        with Session(self._engine) as session:
            return {status: int(count) for status, count in session.exec(query).all()}

    def waiting_for_stock(self, skus: builtins.list[str]) -> builtins.list[str]:
        """Out-of-stock orders needing any of `skus`, highest priority first, then oldest first."""
        wanted = set(skus)
        query = (
            select(OrderRow)
            .where(OrderRow.status == OrderStatus.EXCEPTION, OrderRow.exception_reason == "out_of_stock")
            .order_by(col(OrderRow.priority), col(OrderRow.created_at), col(OrderRow.order_id))
        )
        with Session(self._engine) as session:
            rows = session.exec(query).all()
        return [row.order_id for row in rows if wanted & {line["sku"] for line in row.view.get("lines", [])}]

    def stuck(self, wall_clock: datetime, older_than: timedelta = timedelta(0)) -> builtins.list[StuckOrder]:
        """Orders in exception, on hold, or past a deadline their current step should have met, each
        with why, since when and what an operator can do.

        Judged on Temporal's clock, the one every order time comes from (docs/ARCHITECTURE.md, Clocks):
        "now" is the newest workflow time in the read model, or `wall_clock` (the caller's) when that
        is later. A server whose clock runs ahead of the host (time skipping, drift) moves the read
        model ahead with it; a stopped worker writes nothing, yet its unpaid orders past their
        deadline must show. `older_than` keeps those stuck for at least that long on the same clock.
        """
        with Session(self._engine) as session:
            newest = session.exec(select(func.max(OrderRow.updated_at))).one()
            now = max(_aware(wall_clock), _aware(newest)) if newest else _aware(wall_clock)
            query = select(OrderRow).where(
                or_(
                    col(OrderRow.status) == OrderStatus.EXCEPTION,
                    col(OrderRow.on_hold).is_(True),
                    col(OrderRow.ship_by) <= now,
                    and_(
                        col(OrderRow.status) == OrderStatus.PENDING_PAYMENT,
                        col(OrderRow.payment_due_at) <= now,
                    ),
                    col(OrderRow.confirm_by) <= now,
                    # rows written before partially_shipped counted as awaiting shipment have no
                    # ship_by column: judged from their view below
                    and_(
                        col(OrderRow.status) == OrderStatus.PARTIALLY_SHIPPED,
                        col(OrderRow.ship_by).is_(None),
                    ),
                )
            )
            rows = list(session.exec(query.order_by(col(OrderRow.created_at))).all())
            lags = {lag.order_id: lag for lag in session.exec(select(ReadModelLag)).all()}
            listed = {row.order_id for row in rows}
            rows += [
                row
                for row in (session.get(OrderRow, order_id) for order_id in lags)
                if row is not None and row.order_id not in listed
            ]
        found: builtins.list[StuckOrder] = []
        for row in rows:
            view = OrderView.model_validate(row.view)
            reasons, actions, since = _why_stuck(row, view, now)
            lag = lags.get(row.order_id)
            if lag is not None:
                reasons.append(
                    f"read model behind since {_at(lag.since)} ({lag.failures} failed write(s), last: "
                    f"{lag.last_error}); this row may be out of date, the order itself goes on and "
                    "the row catches up once the database takes writes again"
                )
                actions.append("check the database: the row catches up by itself once writes go through")
                since = min(since, _aware(lag.since))
            if reasons and since <= now - older_than:
                found.append(
                    StuckOrder(
                        order=view,
                        reasons=reasons,
                        since=since,
                        suggested_actions=list(dict.fromkeys(actions)),
                    )
                )
        return found


def _at(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


RELEASE_ADVICE = "release: the order goes on where it stopped, once the hold's reason is dealt with"
WORKER_ADVICE = "start a worker (python worker.py): the order moves on as soon as one runs"
CANCEL_ADVICE = "cancel: cancels the order, releases its stock and refunds any payment"


def _why_stuck(row: OrderRow, view: OrderView, now: datetime) -> tuple[list[str], list[str], datetime]:
    """Why the row is stuck, what an operator can do (the order's own advice first), since when."""
    reasons: list[str] = []
    actions: list[str] = list(view.suggested_actions)
    moments: list[datetime] = []
    if row.status == OrderStatus.EXCEPTION:
        reasons.append(f"exception: {row.exception_reason}")
        moments.append(_aware(row.status_since or row.updated_at))
    if row.on_hold and row.held_since:
        reasons.append(
            f"on hold since {_at(row.held_since)}: {row.view.get('hold_reason') or 'no reason given'}"
        )
        actions.append(RELEASE_ADVICE)
        moments.append(_aware(row.held_since))
    ship_by = row.ship_by or (view.ship_by if awaits_shipment(view.status) else None)
    if ship_by and _aware(ship_by) <= now:
        unshipped = [s.warehouse for s in view.shipments if s.status in ("locked", "requested")]
        where = ", ".join(unshipped) or view.warehouse or "the warehouse"
        reasons.append(f"not shipped; ship-by passed at {_at(ship_by)}, still waiting for {where}")
        if row.status != OrderStatus.EXCEPTION:
            actions.append(f"ask {where} to ship; mark-shipped: if it left outside orderflow")
            if row.status == OrderStatus.STOCK_LOCKED:
                actions += ["reassign-warehouse: lock it in another warehouse", CANCEL_ADVICE]
        moments.append(_aware(ship_by))
    if row.status == OrderStatus.PENDING_PAYMENT and row.payment_due_at and _aware(row.payment_due_at) <= now:
        reasons.append(
            "payment deadline passed but the order was not auto-cancelled (is the worker running?)"
        )
        actions.append(WORKER_ADVICE)
        moments.append(_aware(row.payment_due_at))
    if row.confirm_by and _aware(row.confirm_by) <= now:
        reasons.append("confirmation window passed but the order did not complete (is the worker running?)")
        actions.append(WORKER_ADVICE)
        moments.append(_aware(row.confirm_by))
    return reasons, actions, min(moments, default=now)
