"""The inbox on SQLite and PostgreSQL: one row per delivery id, outcomes recorded, older updates stale,
refused signatures counted per shop, and what the sweeper picks up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from services.inbox import CLAIM_LEASE, InboxService, InboxStatus

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def store(inbox: InboxService, delivery_id: str, now: datetime = T0) -> tuple[int, bool]:
    entry, new = inbox.store(
        source="shopify",
        shop_id="mugs",
        delivery_id=delivery_id,
        topic="orders/create",
        headers={"x-shopify-topic": "orders/create"},
        body='{"id": 1}',
        now=now,
    )
    return entry.id, new


def test_the_same_delivery_id_is_stored_once(engine: Engine) -> None:
    inbox = InboxService(engine)
    first, new = store(inbox, "d-1")
    again, new_again = store(inbox, "d-1")
    assert (new, new_again) == (True, False)
    assert first == again
    assert inbox.count() == 1
    stored = inbox.get(first)
    assert stored is not None
    assert stored.body == '{"id": 1}'
    assert stored.entry.status is InboxStatus.RECEIVED


def test_an_outcome_is_recorded_and_only_a_failed_delivery_reopens(engine: Engine) -> None:
    inbox = InboxService(engine)
    applied, _ = store(inbox, "d-1")
    failed, _ = store(inbox, "d-2")
    inbox.finish(applied, InboxStatus.APPLIED, order_id="ord_1", channel_order_id="1001")
    inbox.finish(failed, InboxStatus.FAILED, "customer.email: the store sent no email" + "!" * 600)
    assert not inbox.reopen(applied)
    assert inbox.reopen(failed)
    listed = {entry.delivery_id: entry for entry in inbox.list(shop_id="mugs")}
    assert listed["d-1"].status is InboxStatus.APPLIED
    assert listed["d-1"].order_id == "ord_1"
    assert listed["d-2"].status is InboxStatus.RECEIVED
    assert listed["d-2"].reason is not None
    assert len(listed["d-2"].reason) == 500
    assert [entry.delivery_id for entry in inbox.list(status=InboxStatus.APPLIED)] == ["d-1"]


def test_the_sweeper_sees_only_settled_unapplied_deliveries_oldest_first(engine: Engine) -> None:
    inbox = InboxService(engine)
    old, _ = store(inbox, "d-old", T0 - timedelta(minutes=5))
    older, _ = store(inbox, "d-older", T0 - timedelta(minutes=9))
    done, _ = store(inbox, "d-done", T0 - timedelta(minutes=7))
    store(inbox, "d-fresh", T0)
    inbox.finish(done, InboxStatus.APPLIED)
    assert inbox.unapplied(T0 - timedelta(seconds=30)) == [older, old]


def test_an_older_updated_at_than_the_one_applied_is_stale(engine: Engine) -> None:
    inbox = InboxService(engine)
    assert not inbox.is_stale("mugs", "1001", T0)
    inbox.advance("mugs", "1001", T0)
    inbox.advance("mugs", "1001", T0 - timedelta(hours=1))  # never moves back
    assert inbox.is_stale("mugs", "1001", T0 - timedelta(seconds=1))
    assert not inbox.is_stale("mugs", "1001", T0)
    assert not inbox.is_stale("other-shop", "1001", T0 - timedelta(days=1))


def test_refused_signatures_are_counted_per_shop_with_the_last_time(engine: Engine) -> None:
    inbox = InboxService(engine)
    inbox.record_rejection("mugs", "missing header", T0)
    inbox.record_rejection("mugs", "does not match", T0 + timedelta(minutes=1))
    [rejected] = inbox.rejections("mugs")
    assert (rejected.count, rejected.last_reason) == (2, "does not match")
    assert rejected.last_at == T0 + timedelta(minutes=1)
    assert inbox.rejections("teas") == []


def test_of_several_claims_at_once_one_applies_the_delivery(engine: Engine) -> None:
    inbox = InboxService(engine)
    inbox_id, _ = store(inbox, "d-1")
    with ThreadPoolExecutor(max_workers=5) as pool:  # the request and the sweeper, racing
        claims = list(pool.map(lambda _: inbox.claim(inbox_id, T0), range(5)))
    assert claims.count(True) == 1
    stored = inbox.get(inbox_id)
    assert stored is not None
    assert stored.entry.status is InboxStatus.APPLYING
    assert inbox.unapplied(T0 + timedelta(minutes=1), now=T0 + timedelta(minutes=1)) == []


def test_a_claim_whose_holder_crashed_lapses_and_the_sweeper_takes_the_row(engine: Engine) -> None:
    inbox = InboxService(engine)
    inbox_id, _ = store(inbox, "d-1")
    assert inbox.claim(inbox_id, T0)
    later = T0 + CLAIM_LEASE + timedelta(seconds=1)
    assert not inbox.claim(inbox_id, T0 + timedelta(minutes=1))  # still held
    assert inbox.unapplied(later, now=later) == [inbox_id]
    assert inbox.claim(inbox_id, later)


def test_a_failed_delivery_waits_for_a_replay_not_the_sweeper(engine: Engine) -> None:
    inbox = InboxService(engine)
    failed, _ = store(inbox, "d-failed", T0 - timedelta(minutes=5))
    waiting, _ = store(inbox, "d-waiting", T0 - timedelta(minutes=4))
    inbox.finish(failed, InboxStatus.FAILED, "body: cannot be read")
    assert inbox.unapplied(T0) == [waiting]
    assert not inbox.claim(failed, T0)
