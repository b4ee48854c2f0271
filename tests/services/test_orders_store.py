"""Order identity and the order list as an operator sees them: one order per channel key, exact views."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from domain.models import (
    Address,
    Channel,
    Customer,
    OrderLine,
    OrderStatus,
    OrderView,
    PaymentInfo,
    TimelineEvent,
)
from services.orders import BadCursor, OrderStore
from services.tables import OrderEventRow, OrderKey

PLACED = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
STEPS = ["placed", "paid", "stock_locked", "shipped", "delivered"]


def make_view(
    order_id: str,
    *,
    status: OrderStatus = OrderStatus.PENDING_PAYMENT,
    channel: Channel = Channel.SHOPIFY,
    country: str = "DE",
    created_at: datetime = PLACED,
    events: int = 1,
    total: str = "29.80",
    payment: PaymentInfo | None = None,
) -> OrderView:
    timeline = [
        TimelineEvent(at=created_at + timedelta(minutes=i), kind=STEPS[i], detail=f"step {i}")
        for i in range(events)
    ]
    return OrderView(
        order_id=order_id,
        channel=channel,
        channel_order_id=f"#{order_id}",
        status=status,
        customer=Customer(name="Ana Souza", email="ana@example.com", language="pt-BR"),
        shipping_address=Address(
            country=country, city="Berlin", postal_code="10115", line1="Invalidenstr. 1"
        ),
        lines=[OrderLine(sku="CASE-IP15", quantity=2, unit_price=Decimal("14.90"))],
        total=Decimal(total),
        currency="EUR",
        created_at=created_at,
        updated_at=timeline[-1].at,
        payment=payment,
        timeline=timeline,
    )


@pytest.fixture
def store(engine: Engine) -> OrderStore:
    return OrderStore(engine)


# -------------------------------------------------------------- channel keys
def test_a_channel_order_gets_one_order_id_however_often_it_arrives(store: OrderStore) -> None:
    assert store.claim_key("shopify", "#1001", "ord_a") == ("ord_a", True)
    assert store.claim_key("shopify", "#1001", "ord_b") == ("ord_a", False)
    assert store.claim_key("shopify", "#1001", "ord_a") == ("ord_a", False)
    # The same number on another channel is another order.
    assert store.claim_key("amazon", "#1001", "ord_c") == ("ord_c", True)

    assert store.known("ord_a")
    assert store.known("ord_c")
    assert not store.known("ord_b")
    assert not store.known("ord_never")


def test_twenty_concurrent_claims_of_one_channel_order_agree_on_one_winner(
    engine: Engine, store: OrderStore
) -> None:
    candidates = [f"ord_{i:02d}" for i in range(20)]
    barrier = threading.Barrier(len(candidates))

    def claim(order_id: str) -> tuple[str, bool]:
        barrier.wait(timeout=30)
        return store.claim_key("ebay", "E-77", order_id)

    with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
        results = list(pool.map(claim, candidates))

    winners = [order_id for order_id, new in results if new]
    assert len(winners) == 1
    assert {order_id for order_id, _ in results} == set(winners)
    assert [c for c in candidates if store.known(c)] == winners
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(OrderKey)).one() == 1


# -------------------------------------------------------------- projection
def test_a_projected_view_comes_back_exactly(store: OrderStore) -> None:
    tokyo = timezone(timedelta(hours=9))
    paid_at = datetime(2025, 3, 1, 18, 45, 12, 345678, tzinfo=tokyo)
    view = make_view(
        "ord_1",
        status=OrderStatus.PAID,
        events=2,
        total="12345678.91",
        payment=PaymentInfo(
            payment_id="pay_1", amount=Decimal("12345678.91"), currency="EUR", method="card", paid_at=paid_at
        ),
    )

    store.project(view)
    got = store.get("ord_1")

    assert got == view
    assert got is not None
    assert got.payment is not None
    assert str(got.total) == "12345678.91"
    assert str(got.payment.amount) == "12345678.91"
    for moment in (got.created_at, got.updated_at, got.payment.paid_at, *(e.at for e in got.timeline)):
        assert moment.tzinfo is not None
    assert got.payment.paid_at.utcoffset() == timedelta(hours=9)
    assert got.created_at == PLACED
    assert store.get("ord_missing") is None


def test_an_older_view_never_overwrites_a_newer_one(engine: Engine, store: OrderStore) -> None:
    newer = make_view("ord_1", status=OrderStatus.STOCK_LOCKED, events=3)
    older = make_view("ord_1", status=OrderStatus.PAID, events=2)

    store.project(newer)
    store.project(older)

    assert store.get("ord_1") == newer
    assert [v.order_id for v in store.list(status="stock_locked")[0]] == ["ord_1"]
    assert store.list(status="paid")[0] == []
    with Session(engine) as session:
        kinds = session.exec(
            select(OrderEventRow.kind)
            .where(OrderEventRow.order_id == "ord_1")
            .order_by(col(OrderEventRow.seq))
        ).all()
    assert list(kinds) == ["placed", "paid", "stock_locked"]

    newest = make_view("ord_1", status=OrderStatus.SHIPPED, events=4)
    store.project(newest)
    assert store.get("ord_1") == newest


# -------------------------------------------------------------- listing
def test_list_filters_by_status_channel_and_country(store: OrderStore) -> None:
    store.project(make_view("ord_1", status=OrderStatus.PAID, channel=Channel.SHOPIFY, country="DE"))
    store.project(make_view("ord_2", status=OrderStatus.PAID, channel=Channel.AMAZON, country="FR"))
    store.project(make_view("ord_3", status=OrderStatus.CANCELLED, channel=Channel.AMAZON, country="DE"))
    store.project(make_view("ord_4", status=OrderStatus.SHIPPED, channel=Channel.EBAY, country="US"))

    def ids(status: str | None = None, channel: str | None = None, country: str | None = None) -> set[str]:
        views, cursor = store.list(status=status, channel=channel, country=country)
        assert cursor is None
        return {v.order_id for v in views}

    assert ids() == {"ord_1", "ord_2", "ord_3", "ord_4"}
    assert ids(status="paid") == {"ord_1", "ord_2"}
    assert ids(channel="amazon") == {"ord_2", "ord_3"}
    assert ids(country="DE") == {"ord_1", "ord_3"}
    assert ids(status="paid", channel="amazon") == {"ord_2"}
    assert ids(channel="amazon", country="DE") == {"ord_3"}
    assert ids(status="delivered") == set()


@pytest.mark.parametrize("count", [7, 6])
def test_paging_walks_every_order_newest_first_without_duplicates_or_gaps(
    store: OrderStore, count: int
) -> None:
    # Two orders share a creation time, so the order id must break the tie.
    created = {f"ord_{i}": PLACED + timedelta(minutes=i) for i in range(count)}
    created["ord_3"] = created["ord_2"]
    for order_id, at in created.items():
        store.project(make_view(order_id, created_at=at))
    store.project(make_view("ord_elsewhere", country="FR", created_at=PLACED + timedelta(minutes=3)))
    expected = sorted(created, key=lambda o: (created[o], o), reverse=True)

    seen: list[str] = []
    page_sizes: list[int] = []
    cursor: str | None = None
    for _ in range(count):
        views, cursor = store.list(country="DE", limit=3, cursor=cursor)
        page_sizes.append(len(views))
        seen += [v.order_id for v in views]
        if cursor is None:
            break

    assert cursor is None
    assert seen == expected
    assert page_sizes == ([3, 3, 1] if count == 7 else [3, 3])


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"42").decode(),
        base64.urlsafe_b64encode(b'["yesterday", "ord_1"]').decode(),
        base64.urlsafe_b64encode(b'[20250301, "ord_1"]').decode(),
        base64.urlsafe_b64encode(b'["2025-03-01T09:30:00+00:00"]').decode(),
    ],
)
def test_a_cursor_the_api_never_handed_out_is_refused(store: OrderStore, cursor: str) -> None:
    store.project(make_view("ord_1"))

    with pytest.raises(BadCursor):
        store.list(cursor=cursor)
