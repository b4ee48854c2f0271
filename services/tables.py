"""Every database table (SQLModel, table=True). Only services and the API import this module."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Numeric, Text, UniqueConstraint, event
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kwargs: Any) -> Any:
    return Field(sa_type=DateTime(timezone=True), **kwargs)


def _money(**kwargs: Any) -> Any:
    return Field(sa_type=Numeric(16, 4), **kwargs)


class OrderKey(SQLModel, table=True):
    """(shop_id, channel, channel_order_id) -> order_id: catches duplicates long after Temporal forgot
    them. The same order number in two shops of a channel is two orders (revision 0009)."""

    __tablename__ = "order_keys"
    # Declared first: the primary key's column order. None only until the insert hook fills it.
    shop_id: str = Field(default=None, primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=32)
    channel_order_id: str = Field(primary_key=True, max_length=100)
    order_id: str = Field(unique=True, max_length=40)
    created_at: datetime = _ts(default_factory=utcnow)


class Stock(SQLModel, table=True):
    __tablename__ = "stock"
    __table_args__ = (
        CheckConstraint("locked >= 0 AND reserved >= 0 AND safety_stock >= 0", name="ck_stock_pos"),
        CheckConstraint("on_hand >= locked + reserved", name="ck_stock_no_oversell"),
    )
    warehouse: str = Field(primary_key=True, max_length=32)
    sku: str = Field(primary_key=True, max_length=64, index=True)  # lookups by SKU (revision 0005)
    on_hand: int = 0
    locked: int = 0
    reserved: int = 0
    safety_stock: int = 0
    updated_at: datetime = _ts(default_factory=utcnow)


class StockMove(SQLModel, table=True):
    """The stock ledger: one row per (order, line, warehouse, kind, generation), so a retried move is a
    no-op. A line split across warehouses has a row per warehouse. A generation is one placement of the
    order's stock: 0 for the first, +1 each time an operator moves it. Which warehouses a generation
    uses is decided once, by the StockAllocation row claimed in the same transaction.
    """

    __tablename__ = "stock_moves"
    __table_args__ = (UniqueConstraint("order_id", "line_no", "warehouse", "kind", "generation"),)
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(index=True, max_length=40)
    line_no: int
    generation: int = 0
    warehouse: str = Field(max_length=32)
    sku: str = Field(max_length=64)
    kind: str = Field(max_length=32)  # reserve | unreserve | lock_from_reserve | lock | release | ship
    quantity: int
    created_at: datetime = _ts(default_factory=utcnow)


class StockAllocation(SQLModel, table=True):
    """The claim on an order's stock for one generation and kind (reserve or lock), with its plan.

    Inserted first in the allocating transaction: a concurrent retry of the same allocation conflicts
    here and reads the winner's plan, so an order is never allocated twice, whatever the race.
    """

    __tablename__ = "stock_allocations"
    order_id: str = Field(primary_key=True, max_length=40)
    generation: int = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=16)  # reserve | lock
    plan: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(default_factory=utcnow)


class Warehouse(SQLModel, table=True):
    __tablename__ = "warehouses"
    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=100)
    country: str = Field(max_length=2)
    region: str = Field(max_length=16)
    daily_capacity: int | None = None  # shipments per day; None: no limit
    shipping: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # region -> {cost, days}
    updated_at: datetime = _ts(default_factory=utcnow)


class LowStockEvent(SQLModel, table=True):
    """A SKU's available stock fell under its safety stock in a warehouse; closed when it recovers."""

    __tablename__ = "low_stock_events"
    id: int | None = Field(default=None, primary_key=True)
    warehouse: str = Field(index=True, max_length=32)
    sku: str = Field(index=True, max_length=64)
    available: int
    safety_stock: int
    at: datetime = _ts(default_factory=utcnow)
    resolved_at: datetime | None = _ts(default=None, nullable=True)


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    payment_id: str = Field(primary_key=True, max_length=100)
    order_id: str = Field(index=True, max_length=40)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    method: str = Field(max_length=50)
    recorded_at: datetime = _ts(default_factory=utcnow)


class Refund(SQLModel, table=True):
    """A refund owed to the buyer; the payment provider adapter settles it (status pending -> done)."""

    __tablename__ = "refunds"
    # "<order_id>:<payment_id>" (services.payments.refund_id): 40 + 1 + 100 characters at most.
    refund_id: str = Field(primary_key=True, max_length=160)
    order_id: str = Field(index=True, max_length=40)
    payment_id: str = Field(max_length=100)
    amount: Decimal = _money()
    currency: str = Field(max_length=3)
    reason: str = Field(max_length=500)  # an operator's reason (domain.operator.Reason) or the channel's
    status: str = Field(default="pending", max_length=16)
    created_at: datetime = _ts(default_factory=utcnow)


class ShipmentRequest(SQLModel, table=True):
    """What the warehouse is asked to ship; the warehouse integration reads pending requests."""

    __tablename__ = "shipment_requests"
    order_id: str = Field(primary_key=True, max_length=40)
    warehouse: str = Field(primary_key=True, max_length=32)
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    address: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    ship_by: datetime = _ts()
    status: str = Field(default="requested", max_length=16)
    requested_at: datetime = _ts(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """Outbox of customer messages, keyed (order_id, kind) so a reminder is never recorded twice."""

    __tablename__ = "notifications"
    order_id: str = Field(primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=80)  # e.g. order_shipped:<warehouse> for a parcel
    recipient: str = Field(max_length=254)
    language: str = Field(max_length=8)
    subject: str = Field(max_length=300)
    body_text: str
    body_html: str | None = Field(default=None, sa_type=Text)  # None in rows older than revision 0006
    created_at: datetime = _ts(default_factory=utcnow)
    sent_at: datetime | None = _ts(default=None, nullable=True)
    # The mail dispatcher (workflows/mail.py) and the order's own send claim a row before sending it,
    # so two senders never both send it; a claim lapses by itself if its holder dies.
    claimed_until: datetime | None = _ts(default=None, nullable=True)
    claimed_by: str | None = Field(default=None, max_length=36)
    attempts: int = 0  # failed sends
    last_error: str | None = Field(default=None, max_length=300)
    given_up_at: datetime | None = _ts(default=None, nullable=True)  # unsent past ORDERS_MAIL_GIVE_UP_AFTER


class OrderRow(SQLModel, table=True):
    """Read model: one row per order, upserted by the workflow's projection after every change."""

    __tablename__ = "orders"
    order_id: str = Field(primary_key=True, max_length=40)
    channel: str = Field(index=True, max_length=32)
    channel_order_id: str = Field(max_length=100)
    status: str = Field(index=True, max_length=32)
    country: str = Field(index=True, max_length=2)
    currency: str = Field(max_length=3)
    total: Decimal = _money()
    # "WH-A+WH-B+..." when split: a code per warehouse the order ships from, however many that is.
    warehouse: str | None = Field(default=None, sa_type=Text)
    exception_reason: str | None = Field(default=None, max_length=64)
    on_hold: bool = Field(default=False, index=True)
    priority: int = 3  # 1 served first .. 5 last
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()
    status_since: datetime | None = _ts(default=None, nullable=True)
    held_since: datetime | None = _ts(default=None, nullable=True)
    payment_due_at: datetime | None = _ts(default=None, nullable=True)
    ship_by: datetime | None = _ts(default=None, nullable=True)
    confirm_by: datetime | None = _ts(default=None, nullable=True)
    version: int = 0  # timeline length: an older projection never overwrites a newer one
    view: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The shop the order came from (OrderView.shop_id); the channel's default shop for orders placed
    # before shops (revision 0007).
    shop_id: str | None = Field(default=None, index=True, max_length=64)


class ReadModelLag(SQLModel, table=True):
    """An order whose read-model row could not be written: since when, how often, the last error.

    Written in a transaction of its own when a projection fails, deleted by the next one that
    succeeds: /orders/stuck and the lag gauge read it. The workflow retries the projection by itself."""

    __tablename__ = "read_model_lag"
    order_id: str = Field(primary_key=True, max_length=40)
    since: datetime = _ts(default_factory=utcnow)
    failures: int = 1
    last_error: str = Field(sa_type=Text)


class OrderEventRow(SQLModel, table=True):
    """The order timeline, one row per event."""

    __tablename__ = "order_events"
    order_id: str = Field(primary_key=True, max_length=40)
    seq: int = Field(primary_key=True)
    at: datetime = _ts()
    kind: str = Field(max_length=64)
    detail: str = ""


class AuditLog(SQLModel, table=True):
    """Every accepted operator action: who, when, why, with what parameters."""

    __tablename__ = "audit_log"
    order_id: str = Field(primary_key=True, max_length=40)
    action_id: str = Field(primary_key=True, max_length=100)  # the Temporal update id
    action: str = Field(max_length=40)
    actor: str = Field(index=True, max_length=100)
    reason: str = Field(max_length=500)
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    at: datetime = _ts(index=True)


class ApiKey(SQLModel, table=True):
    """API keys, stored as a SHA-256 of their secret part: a leaked table reveals no usable key."""

    __tablename__ = "api_keys"
    key_id: str = Field(primary_key=True, max_length=16)
    name: str = Field(max_length=100)
    role: str = Field(max_length=16)
    secret_sha256: str = Field(max_length=64)
    created_at: datetime = _ts(default_factory=utcnow)
    revoked_at: datetime | None = _ts(default=None, nullable=True)


class Shop(SQLModel, table=True):
    """A seller's store on a channel (services/shops.py); its secrets are in shop_secrets, encrypted."""

    __tablename__ = "shops"
    shop_id: str = Field(primary_key=True, max_length=64)
    channel: str = Field(index=True, max_length=32)
    name: str = Field(max_length=100)
    url: str | None = Field(default=None, max_length=255)  # None: a default shop nobody described yet
    currency: str | None = Field(default=None, max_length=3)
    language: str | None = Field(default=None, max_length=16)
    stripe_account_id: str | None = Field(default=None, index=True, max_length=105)
    authorized_counts_as_paid: bool = False
    stock_buffer: int = 0
    healthy: bool = True
    last_error: str | None = Field(default=None, max_length=500)
    last_error_at: datetime | None = _ts(default=None, nullable=True)
    refused_calls: int = 0  # calls refused since it last became unhealthy
    created_at: datetime = _ts(default_factory=utcnow)
    updated_at: datetime = _ts(default_factory=utcnow)


class ShopSecret(SQLModel, table=True):
    """One secret of a shop, Fernet-encrypted (services/secrets.py). A rotated webhook secret keeps
    the previous ciphertext and when it was replaced, for the grace period."""

    __tablename__ = "shop_secrets"
    shop_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(primary_key=True, max_length=32)
    ciphertext: str = Field(sa_type=Text)
    changed_at: datetime = _ts(default_factory=utcnow)
    previous_ciphertext: str | None = Field(default=None, sa_type=Text)
    replaced_at: datetime | None = _ts(default=None, nullable=True)


class SecretCanary(SQLModel, table=True):
    """A known text encrypted with the secret key: at start-up it proves the configured key can still
    decrypt this database's secrets (services/secrets.py)."""

    __tablename__ = "secret_canary"
    id: int = Field(default=1, primary_key=True)
    ciphertext: str = Field(sa_type=Text)
    created_at: datetime = _ts(default_factory=utcnow)


@event.listens_for(OrderKey, "before_insert")
@event.listens_for(OrderRow, "before_insert")
def _default_shop(_mapper: Any, _connection: Any, row: OrderKey | OrderRow) -> None:
    """A row written without its shop (a view from before orders named theirs, code that predates
    shops) belongs to its channel's default shop; services.orders names the shop itself."""
    if row.shop_id is None:
        row.shop_id = f"{row.channel}-default"  # domain.shops.default_shop_id


class InboxRow(SQLModel, table=True):
    """One verified webhook delivery (services/inbox.py), stored before anything acts on it: a crash after
    the 200 loses nothing, and a redelivery of the same id is a duplicate."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "delivery_id", name="uq_inbox_delivery"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=16)  # shopify | woocommerce | stripe
    shop_id: str = Field(index=True, max_length=64)
    delivery_id: str = Field(max_length=255)
    event_id: str | None = Field(default=None, max_length=255)
    topic: str = Field(max_length=64)
    received_at: datetime = _ts(default_factory=utcnow, index=True)
    headers: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    body: str = Field(sa_type=Text)  # the raw body as sent (webhooks are UTF-8 JSON or a form)
    status: str = Field(default="received", index=True, max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    channel_order_id: str | None = Field(default=None, max_length=100)
    order_id: str | None = Field(default=None, max_length=40)
    attempts: int = 0
    applied_at: datetime | None = _ts(default=None, nullable=True)


class ChannelOrderMark(SQLModel, table=True):
    """The store's `updated_at` last applied per channel order: an older delivery is stale."""

    __tablename__ = "channel_order_marks"
    shop_id: str = Field(primary_key=True, max_length=64)
    channel_order_id: str = Field(primary_key=True, max_length=100)
    updated_at: datetime = _ts()


class WebhookRejection(SQLModel, table=True):
    """Deliveries to a shop refused for their signature: how many, and the last one's time and reason."""

    __tablename__ = "webhook_rejections"
    shop_id: str = Field(primary_key=True, max_length=64)
    count: int = 0
    last_at: datetime = _ts(default_factory=utcnow)
    last_reason: str = Field(default="", max_length=500)
