"""The webhook inbox in the database: verified deliveries stored once per delivery id, their outcome, the
store's `updated_at` last applied per channel order, and the deliveries each shop refused."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.models import Model
from services.db import transaction
from services.tables import ChannelOrderMark, InboxRow, OrderKey, Refund, Shop, WebhookRejection, utcnow

REASON_MAX = 500  # inbox.reason, webhook_rejections.last_reason
# How long a claim holds a row. Applying one delivery is bounded by the order service's answer (seconds);
# past this its holder is taken to have crashed and the sweeper may apply it again.
CLAIM_LEASE = timedelta(minutes=5)


class InboxStatus(StrEnum):
    RECEIVED = "received"  # stored, not applied yet (the sweeper retries it)
    APPLYING = (
        "applying"  # claimed by the request or the sweeper (applied_at: when; lapses after CLAIM_LEASE)
    )
    APPLIED = "applied"  # handed to the order (or the shop) it is about
    DUPLICATE = "duplicate"  # changed nothing: the same change was applied already
    STALE = "stale"  # older than the store's updated_at already applied: changed nothing
    IGNORED = "ignored"  # nothing orderflow acts on (a ping, a topic it does not use)
    FAILED = "failed"  # cannot be applied as it is: `reason` says why; an operator may replay it


class InboxEntry(Model):
    """A stored delivery as GET /webhooks/deliveries shows it (without its body and headers)."""

    id: int
    source: str
    shop_id: str
    delivery_id: str
    topic: str
    received_at: datetime
    status: InboxStatus
    reason: str | None = None
    channel_order_id: str | None = None
    order_id: str | None = None
    attempts: int = 0
    applied_at: datetime | None = None


class StoredDelivery(Model):
    """What applying a delivery needs: the entry and its raw body."""

    entry: InboxEntry
    body: str


class Rejections(Model):
    """Deliveries to one shop refused for their signature."""

    shop_id: str
    count: int
    last_at: datetime
    last_reason: str


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their zone: they were written in UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _claimable(now: datetime) -> Any:
    """`received`, or `applying` by a claim older than CLAIM_LEASE."""
    return or_(
        col(InboxRow.status) == InboxStatus.RECEIVED.value,
        and_(
            col(InboxRow.status) == InboxStatus.APPLYING.value,
            col(InboxRow.applied_at) < now - CLAIM_LEASE,
        ),
    )


def _entry(row: InboxRow) -> InboxEntry:
    assert row.id is not None
    return InboxEntry(
        id=row.id,
        source=row.source,
        shop_id=row.shop_id,
        delivery_id=row.delivery_id,
        topic=row.topic,
        received_at=_aware(row.received_at),
        status=InboxStatus(row.status),
        reason=row.reason,
        channel_order_id=row.channel_order_id,
        order_id=row.order_id,
        attempts=row.attempts,
        applied_at=_aware(row.applied_at) if row.applied_at else None,
    )


class InboxService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def store(
        self,
        *,
        source: str,
        shop_id: str,
        delivery_id: str,
        topic: str,
        headers: dict[str, str],
        body: str,
        event_id: str | None = None,
        status: InboxStatus = InboxStatus.RECEIVED,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> tuple[InboxEntry, bool]:
        """Insert the delivery; when (source, delivery_id) is stored already, that row and False."""
        row = InboxRow(
            source=source,
            shop_id=shop_id,
            delivery_id=delivery_id,
            event_id=event_id,
            topic=topic,
            received_at=now or utcnow(),
            headers=headers,
            body=body,
            status=status.value,
            reason=reason[:REASON_MAX] if reason else None,
        )
        try:
            with transaction(self._engine) as session:
                session.add(row)
                session.flush()
                return _entry(row), True
        except IntegrityError:
            with Session(self._engine) as session:
                found = session.exec(
                    select(InboxRow).where(InboxRow.source == source, InboxRow.delivery_id == delivery_id)
                ).first()
                if found is None:  # pragma: no cover - the conflict was on another constraint
                    raise
                return _entry(found), False

    def get(self, inbox_id: int) -> StoredDelivery | None:
        with Session(self._engine) as session:
            row = session.get(InboxRow, inbox_id)
            return StoredDelivery(entry=_entry(row), body=row.body) if row else None

    def finish(
        self,
        inbox_id: int,
        status: InboxStatus,
        reason: str | None = None,
        *,
        order_id: str | None = None,
        channel_order_id: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record an attempt's outcome; RECEIVED keeps the row for the sweeper with the reason it waits."""
        with transaction(self._engine) as session:
            row = session.get(InboxRow, inbox_id, with_for_update=True)
            if row is None:
                return
            row.status = status.value
            row.reason = reason[:REASON_MAX] if reason else None
            row.attempts += 1
            row.order_id = order_id or row.order_id
            row.channel_order_id = channel_order_id or row.channel_order_id
            row.applied_at = None if status is InboxStatus.RECEIVED else now or utcnow()

    def claim(self, inbox_id: int, now: datetime | None = None) -> bool:
        """Take a `received` row (or one whose claim lapsed) to apply it: a conditional UPDATE, so of the
        request and the sweeper racing on either database one applies it. False: someone else has it."""
        moment = now or utcnow()
        with transaction(self._engine) as session:
            changed = session.execute(
                update(InboxRow)
                .where(col(InboxRow.id) == inbox_id, _claimable(moment))
                .values(status=InboxStatus.APPLYING.value, applied_at=moment)
            )
            return bool(getattr(changed, "rowcount", 0))

    def reopen(self, inbox_id: int) -> bool:
        """A failed delivery back to `received` for a replay; False when it is not failed."""
        with transaction(self._engine) as session:
            changed = session.execute(
                update(InboxRow)
                .where(col(InboxRow.id) == inbox_id, col(InboxRow.status) == InboxStatus.FAILED.value)
                .values(status=InboxStatus.RECEIVED.value, applied_at=None)
            )
            return bool(getattr(changed, "rowcount", 0))

    def unapplied(
        self, received_before: datetime, limit: int = 100, now: datetime | None = None
    ) -> builtins.list[int]:
        """Deliveries still `received` that arrived before `received_before`, and those whose claim lapsed
        (their holder crashed), oldest first. Failed ones wait for an operator's replay."""
        with Session(self._engine) as session:
            return [
                inbox_id
                for inbox_id in session.exec(
                    select(InboxRow.id)
                    .where(col(InboxRow.received_at) < received_before, _claimable(now or utcnow()))
                    .order_by(col(InboxRow.received_at), col(InboxRow.id))
                    .limit(limit)
                ).all()
                if inbox_id is not None
            ]

    def list(
        self, shop_id: str | None = None, status: InboxStatus | None = None, limit: int = 100
    ) -> builtins.list[InboxEntry]:
        """The most recent deliveries first."""
        query = select(InboxRow)
        if shop_id is not None:
            query = query.where(InboxRow.shop_id == shop_id)
        if status is not None:
            query = query.where(InboxRow.status == status.value)
        query = query.order_by(col(InboxRow.received_at).desc(), col(InboxRow.id).desc()).limit(limit)
        with Session(self._engine) as session:
            return [_entry(row) for row in session.exec(query).all()]

    def count(self) -> int:
        with Session(self._engine) as session:
            return len(session.exec(select(InboxRow.id)).all())

    # ------------------------------------------------------------------ what a delivery names
    def shops_for_stripe_account(self, account_id: str) -> builtins.list[str]:
        """The shops whose payments go through this Stripe account (shops.stripe_account_id): one seller
        may take the money of several shops with one account."""
        with Session(self._engine) as session:
            return builtins.list(
                session.exec(
                    select(Shop.shop_id)
                    .where(Shop.stripe_account_id == account_id)
                    .order_by(col(Shop.shop_id))
                ).all()
            )

    def order_for(self, shop_id: str, channel: str, channel_order_id: str) -> str | None:
        """The orderflow order placed for this shop's channel order, if any."""
        with Session(self._engine) as session:
            return session.exec(
                select(OrderKey.order_id).where(
                    OrderKey.shop_id == shop_id,
                    OrderKey.channel == channel,
                    OrderKey.channel_order_id == channel_order_id,
                )
            ).first()

    def settle_refunds(self, refund_ids: builtins.list[str]) -> tuple[builtins.list[str], builtins.list[str]]:
        """Stripe says these orderflow refunds went through: pending -> succeeded. (settled, unknown)."""
        settled: builtins.list[str] = []
        unknown: builtins.list[str] = []
        with transaction(self._engine) as session:
            for refund_id in refund_ids:
                refund = session.get(Refund, refund_id, with_for_update=True)
                if refund is None:
                    unknown.append(refund_id)
                    continue
                if refund.status != "succeeded":
                    refund.status = "succeeded"
                settled.append(refund_id)
        return settled, unknown

    # ------------------------------------------------------------------ ordering per channel order
    def is_stale(self, shop_id: str, channel_order_id: str, updated_at: datetime) -> bool:
        """True when a newer `updated_at` of this channel order was applied already."""
        with Session(self._engine) as session:
            mark = session.get(ChannelOrderMark, (shop_id, channel_order_id))
            return mark is not None and _aware(mark.updated_at) > updated_at

    def advance(self, shop_id: str, channel_order_id: str, updated_at: datetime) -> None:
        """Remember `updated_at` as applied unless a newer one was."""
        for _ in range(2):  # a concurrent first insert of the same mark: read it and compare again
            try:
                with transaction(self._engine) as session:
                    mark = session.get(ChannelOrderMark, (shop_id, channel_order_id), with_for_update=True)
                    if mark is None:
                        session.add(
                            ChannelOrderMark(
                                shop_id=shop_id, channel_order_id=channel_order_id, updated_at=updated_at
                            )
                        )
                    elif _aware(mark.updated_at) < updated_at:
                        mark.updated_at = updated_at
                return
            except IntegrityError:
                continue

    # ------------------------------------------------------------------ refused signatures
    def record_rejection(self, shop_id: str, reason: str, now: datetime | None = None) -> None:
        moment = now or utcnow()
        for _ in range(2):
            try:
                with transaction(self._engine) as session:
                    row = session.get(WebhookRejection, shop_id, with_for_update=True)
                    if row is None:
                        row = WebhookRejection(shop_id=shop_id)
                        session.add(row)
                    row.count += 1
                    row.last_at = moment
                    row.last_reason = reason[:REASON_MAX]
                return
            except IntegrityError:
                continue

    def rejections(self, shop_id: str | None = None) -> builtins.list[Rejections]:
        query = select(WebhookRejection).order_by(col(WebhookRejection.shop_id))
        if shop_id is not None:
            query = query.where(WebhookRejection.shop_id == shop_id)
        with Session(self._engine) as session:
            return [
                Rejections(
                    shop_id=row.shop_id,
                    count=row.count,
                    last_at=_aware(row.last_at),
                    last_reason=row.last_reason,
                )
                for row in session.exec(query).all()
            ]
