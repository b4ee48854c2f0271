"""Order identity and the order list as an operator sees them: one order per channel key, exact views."""

from __future__ import annotations

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import Engine, func, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.models import (
    Address,
    Channel,
    Customer,
    Discount,
    OrderLine,
    OrderStatus,
    OrderView,
    PaymentInfo,
    ShipmentView,
    TimelineEvent,
)
from services import migrate
from services.orders import BadCursor, OrderStore, _at
from services.tables import OrderEventRow, OrderKey, OrderRow

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


def test_one_order_number_in_two_shops_is_two_orders(engine: Engine, store: OrderStore) -> None:
    assert store.claim_key("woocommerce", "1001", "ord_eu", "eu-store") == ("ord_eu", True)
    assert store.claim_key("woocommerce", "1001", "ord_us", "us-store") == ("ord_us", True)
    # Within one shop it stays one order, however often it arrives.
    assert store.claim_key("woocommerce", "1001", "ord_again", "eu-store") == ("ord_eu", False)
    # No shop named: the channel's default shop, a third shop.
    assert store.claim_key("woocommerce", "1001", "ord_default") == ("ord_default", True)
    assert store.claim_key("woocommerce", "1001", "ord_x", "woocommerce-default") == ("ord_default", False)
    with Session(engine) as session:
        keys = session.exec(
            select(OrderKey.shop_id, OrderKey.order_id).order_by(col(OrderKey.order_id))
        ).all()
    assert list(keys) == [
        ("woocommerce-default", "ord_default"),
        ("eu-store", "ord_eu"),
        ("us-store", "ord_us"),
    ]


# -------------------------------------------------------------- projection
def test_the_read_model_files_an_order_under_the_shop_its_view_names(
    engine: Engine, store: OrderStore
) -> None:
    store.project(make_view("ord_eu").model_copy(update={"shop_id": "eu-store"}))
    store.project(make_view("ord_old", channel=Channel.EBAY))  # a view from before orders named a shop
    with Session(engine) as session:
        shops = dict(session.exec(select(OrderRow.order_id, OrderRow.shop_id)).all())
    assert shops == {"ord_eu": "eu-store", "ord_old": "ebay-default"}
    assert store.get("ord_eu") == make_view("ord_eu").model_copy(update={"shop_id": "eu-store"})


def test_a_view_keeps_the_orders_money_exactly(store: OrderStore) -> None:
    view = make_view("ord_1", total="26.85").model_copy(
        update={
            "shop_id": "eu-store",
            "subtotal": Decimal("29.80"),
            "discounts": [Discount(code="SPRING", amount=Decimal("7.90"))],
            "shipping": Decimal("4.95"),
            "tax": Decimal("4.29"),
            "taxes_included": True,
        }
    )
    store.project(view)
    got = store.get("ord_1")
    assert got == view
    assert got is not None
    assert (str(got.subtotal), str(got.discounts[0].amount), str(got.shipping)) == ("29.80", "7.90", "4.95")


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


# -------------------------------------------------------------- stuck orders
def late(order_id: str, status: OrderStatus, ship_by: datetime, *, missed: bool = True) -> OrderView:
    """An order paid two days before `ship_by`; with `missed`, the workflow has recorded the miss."""
    view = make_view(order_id, status=status, created_at=ship_by - timedelta(hours=49), events=3)
    events = list(view.timeline)
    if missed:
        events.append(TimelineEvent(at=ship_by, kind="ship_deadline_missed", detail="not shipped"))
    shipments = [
        ShipmentView(warehouse="WH-A", lines=[], status="shipped", ship_by=ship_by),
        ShipmentView(warehouse="WH-B", lines=[], status="requested", ship_by=ship_by, late=missed),
    ]
    return view.model_copy(
        update={
            "timeline": events,
            "updated_at": events[-1].at,
            "status_since": events[2].at,
            "ship_by": ship_by,
            "ship_late": missed,
            "warehouse": "WH-A+WH-B",
            "shipments": shipments if status == OrderStatus.PARTIALLY_SHIPPED else [shipments[1]],
        }
    )


def test_a_late_partially_shipped_order_is_stuck_until_its_last_parcel_leaves(store: OrderStore) -> None:
    now = datetime.now(UTC)
    store.project(late("ord_part", OrderStatus.PARTIALLY_SHIPPED, now - timedelta(hours=3)))
    store.project(late("ord_locked", OrderStatus.STOCK_LOCKED, now - timedelta(hours=2)))
    shipped = late("ord_shipped", OrderStatus.SHIPPED, now - timedelta(hours=1))
    store.project(shipped.model_copy(update={"shipments": []}))

    found = {s.order.order_id: s for s in store.stuck(now)}

    assert set(found) == {"ord_part", "ord_locked"}
    part = found["ord_part"]
    assert part.reasons == [
        f"not shipped; ship-by passed at {_at(now - timedelta(hours=3))}, still waiting for WH-B"
    ]
    assert part.since == now - timedelta(hours=3)
    assert part.suggested_actions == ["ask WH-B to ship; mark-shipped: if it left outside orderflow"]
    assert "reassign-warehouse: lock it in another warehouse" in found["ord_locked"].suggested_actions
    assert [s.order.order_id for s in store.stuck(now, older_than=timedelta(hours=150 / 60))] == ["ord_part"]


def test_stuck_orders_are_judged_on_temporal_clock_when_it_runs_ahead_of_this_host(store: OrderStore) -> None:
    """A time-skipping server (or a host clock behind Temporal's) must not hide stuck orders: the
    read model's newest workflow time is the clock, the host's only when it is later."""
    host_now = datetime.now(UTC)
    temporal_now = host_now + timedelta(days=30)  # where the order's own clock stands
    missed = late("ord_late", OrderStatus.STOCK_LOCKED, temporal_now - timedelta(hours=5))
    store.project(missed)
    store.project(
        late("ord_in_time", OrderStatus.STOCK_LOCKED, temporal_now + timedelta(hours=1), missed=False)
    )
    noted = missed.model_copy(update={"order_id": "ord_clock", "channel_order_id": "#clock"})
    noted = noted.model_copy(  # another order did something just now, on Temporal's clock
        update={"timeline": [*noted.timeline, TimelineEvent(at=temporal_now, kind="note", detail="")]}
    )
    store.project(noted.model_copy(update={"status": OrderStatus.SHIPPED, "updated_at": temporal_now}))

    found = store.stuck(host_now)

    assert [s.order.order_id for s in found] == ["ord_late"]
    assert found[0].since == temporal_now - timedelta(hours=5)
    assert (
        found[0]
        .reasons[0]
        .startswith(f"not shipped; ship-by passed at {_at(temporal_now - timedelta(hours=5))}")
    )
    # ages on the same clock: stuck for 5 hours of Temporal's time, not minus 30 days of the host's
    assert [s.order.order_id for s in store.stuck(host_now, older_than=timedelta(hours=4))] == ["ord_late"]
    assert store.stuck(host_now, older_than=timedelta(hours=6)) == []


def test_a_stopped_worker_still_shows_on_the_host_clock(store: OrderStore) -> None:
    """Nothing writes the read model while no worker runs: the host's clock takes over, so an unpaid
    order past its deadline shows, with what to do about it."""
    host_now = datetime.now(UTC)
    unpaid = make_view("ord_unpaid", created_at=host_now - timedelta(days=6))
    store.project(unpaid.model_copy(update={"payment_due_at": host_now - timedelta(days=1)}))

    [found] = store.stuck(host_now)

    assert found.reasons == [
        "payment deadline passed but the order was not auto-cancelled (is the worker running?)"
    ]
    assert found.suggested_actions == [
        "start a worker (python worker.py): the order moves on as soon as one runs"
    ]
    assert found.since == host_now - timedelta(days=1)


def test_an_exception_carries_the_orders_own_suggested_actions(store: OrderStore) -> None:
    now = datetime.now(UTC)
    advice = ["retry: runs the failed step again once its cause is fixed", "cancel: cancels the order"]
    view = make_view("ord_exc", status=OrderStatus.EXCEPTION, created_at=now - timedelta(hours=1))
    store.project(
        view.model_copy(
            update={
                "exception_reason": "shipment_failed",
                "suggested_actions": advice,
                "status_since": now - timedelta(minutes=30),
                "on_hold": True,
                "held_since": now - timedelta(minutes=10),
                "hold_reason": "fraud check",
            }
        )
    )

    [found] = store.stuck(now)

    assert found.reasons[0] == "exception: shipment_failed"
    assert found.reasons[1].endswith("fraud check")
    assert found.suggested_actions == [
        *advice,
        "release: the order goes on where it stopped, once the hold's reason is dealt with",
    ]


def test_a_late_partial_shipment_written_before_it_counted_as_awaiting_shipment_is_stuck_too(
    engine: Engine, store: OrderStore
) -> None:
    """Rows projected by the old definition have no ship_by column: the view still knows it."""
    now = datetime.now(UTC)
    store.project(late("ord_old", OrderStatus.PARTIALLY_SHIPPED, now - timedelta(hours=3)))
    store.project(late("ord_in_time", OrderStatus.PARTIALLY_SHIPPED, now + timedelta(hours=3), missed=False))
    with Session(engine) as session:
        session.execute(update(OrderRow).values(ship_by=None))
        session.commit()

    assert [s.order.order_id for s in store.stuck(now)] == ["ord_old"]


# -------------------------------------------------------------- the order_keys migration (0009)
def test_keys_claimed_before_shops_keep_their_order_and_other_shops_may_reuse_the_number(
    fresh: Engine,
) -> None:
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0008_inbox")
    with fresh.begin() as conn:
        for order_id, channel, shop_id in (
            ("ord_1", "shopify", "shopify-default"),  # backfilled by 0007
            ("ord_2", "woocommerce", None),  # written without a shop after 0007
        ):
            conn.execute(
                text(
                    "INSERT INTO order_keys (shop_id, channel, channel_order_id, order_id, created_at) "
                    "VALUES (:shop_id, :channel, '1001', :order_id, :at)"
                ),
                {"shop_id": shop_id, "channel": channel, "order_id": order_id, "at": PLACED},
            )

    migrate.upgrade(fresh)

    with fresh.connect() as conn:
        keys = conn.execute(text("SELECT shop_id, channel, order_id FROM order_keys ORDER BY order_id")).all()
    assert [tuple(key) for key in keys] == [
        ("shopify-default", "shopify", "ord_1"),
        ("woocommerce-default", "woocommerce", "ord_2"),
    ]
    store = OrderStore(fresh)
    assert store.claim_key("woocommerce", "1001", "ord_new") == ("ord_2", False)
    assert store.claim_key("woocommerce", "1001", "ord_eu", "eu-store") == ("ord_eu", True)
    assert store.claim_key("shopify", "1001", "ord_new", "shopify-default") == ("ord_1", False)
    with fresh.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(
            text(
                "INSERT INTO order_keys (channel, channel_order_id, order_id, created_at) "
                "VALUES ('ebay', '1', 'ord_noshop', :at)"
            ),
            {"at": PLACED},
        )
