"""Shops in the database: their descriptions, their encrypted secrets (never handed out as views), the
webhook secrets valid now, and their health as the outbound calls find it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from domain.models import Channel
from domain.shops import CHANNEL_SECRETS, WEBHOOK_SECRET, WEBHOOK_SECRETS, SecretState, ShopView
from services.db import transaction
from services.secrets import SecretBox
from services.tables import Shop, ShopSecret, utcnow

LAST_ERROR_MAX = 500  # shops.last_error


class ChannelChange(Exception):
    """A shop's channel cannot change: its orders and secrets belong to the channel it was made for."""

    def __init__(self, shop_id: str, channel: str) -> None:
        super().__init__(f"shop {shop_id} is a {channel} shop; its channel cannot change (make a new shop)")
        self.shop_id = shop_id
        self.channel = channel


@dataclass(frozen=True)
class ShopFields:
    """What PUT /shops/{shop_id} describes, besides the secrets."""

    channel: Channel
    name: str
    url: str
    currency: str
    language: str
    stripe_account_id: str | None = None
    authorized_counts_as_paid: bool = False
    stock_buffer: int = 0


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone: they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class ShopService:
    def __init__(self, engine: Engine, box: SecretBox, grace: timedelta = timedelta(hours=24)) -> None:
        self._engine = engine
        self._box = box
        self.grace = grace

    def put(
        self, shop_id: str, fields: ShopFields, secrets: dict[str, str | None], now: datetime | None = None
    ) -> ShopView:
        """Create or describe a shop in one transaction. `secrets`: name -> new value, or None to remove
        it; names left out keep their value. A changed webhook secret keeps the previous one for the
        grace period."""
        now = now or utcnow()
        try:
            return self._put(shop_id, fields, secrets, now)
        except IntegrityError:  # a concurrent first PUT of the same shop inserted it: update it now
            return self._put(shop_id, fields, secrets, now)

    def _put(
        self, shop_id: str, fields: ShopFields, secrets: dict[str, str | None], now: datetime
    ) -> ShopView:
        with transaction(self._engine) as session:
            shop = session.get(Shop, shop_id, with_for_update=True)
            if shop is not None and shop.channel != fields.channel.value:
                raise ChannelChange(shop_id, shop.channel)
            if shop is None:
                shop = Shop(shop_id=shop_id, channel=fields.channel.value, name=fields.name, created_at=now)
                session.add(shop)
            shop.name = fields.name
            shop.url = fields.url
            shop.currency = fields.currency
            shop.language = fields.language
            shop.stripe_account_id = fields.stripe_account_id
            shop.authorized_counts_as_paid = fields.authorized_counts_as_paid
            shop.stock_buffer = fields.stock_buffer
            shop.updated_at = now
            for name, value in secrets.items():
                self._set_secret(session, shop_id, name, value, now)
            session.flush()
            return self._view(session, shop, now)

    def _set_secret(
        self, session: Session, shop_id: str, name: str, value: str | None, now: datetime
    ) -> None:
        row = session.get(ShopSecret, (shop_id, name), with_for_update=True)
        if value is None:
            if row is not None:
                session.delete(row)
            return
        if row is None:
            session.add(
                ShopSecret(shop_id=shop_id, name=name, ciphertext=self._box.encrypt(value), changed_at=now)
            )
            return
        if self._box.decrypt(row.ciphertext) == value:
            return  # sent again unchanged: nothing rotates
        if name in WEBHOOK_SECRETS:
            row.previous_ciphertext = row.ciphertext
            row.replaced_at = now
        row.ciphertext = self._box.encrypt(value)
        row.changed_at = now

    def get(self, shop_id: str, now: datetime | None = None) -> ShopView | None:
        with Session(self._engine) as session:
            shop = session.get(Shop, shop_id)
            return self._view(session, shop, now or utcnow()) if shop else None

    def all(self, channel: Channel | None = None, now: datetime | None = None) -> list[ShopView]:
        query = select(Shop).order_by(col(Shop.shop_id))
        if channel is not None:
            query = query.where(Shop.channel == channel.value)
        with Session(self._engine) as session:
            return [self._view(session, shop, now or utcnow()) for shop in session.exec(query).all()]

    def secret(self, shop_id: str, name: str) -> str | None:
        """A secret's plaintext for an outbound call or a signature check; None when unset."""
        with Session(self._engine) as session:
            row = session.get(ShopSecret, (shop_id, name))
            return self._box.decrypt(row.ciphertext) if row else None

    def webhook_secrets(self, shop_id: str, now: datetime, name: str | None = None) -> list[str]:
        """The secrets a webhook delivery to this shop may be signed with: the current one, then the one
        it replaced while within the grace period. `name` defaults to the channel's webhook secret
        (domain.shops.WEBHOOK_SECRET); pass "stripe_webhook_secret" for the shop's Stripe account."""
        with Session(self._engine) as session:
            shop = session.get(Shop, shop_id)
            if shop is None:
                return []
            name = name or WEBHOOK_SECRET.get(Channel(shop.channel))
            row = session.get(ShopSecret, (shop_id, name)) if name else None
            if row is None:
                return []
            found = [self._box.decrypt(row.ciphertext)]
            replaced_at = _aware(row.replaced_at)
            if row.previous_ciphertext and replaced_at is not None and now < replaced_at + self.grace:
                found.append(self._box.decrypt(row.previous_ciphertext))
            return found

    def ensure_default(self, channel: Channel, now: datetime | None = None) -> str:
        """The channel's default shop (for orders that do not name theirs), created when missing."""
        shop_id = f"{channel.value}-default"
        with transaction(self._engine) as session:
            if session.get(Shop, shop_id) is None:
                moment = now or utcnow()
                title = f"{channel.value} (orders that name no shop)"
                session.add(
                    Shop(
                        shop_id=shop_id,
                        channel=channel.value,
                        name=title,
                        created_at=moment,
                        updated_at=moment,
                    )
                )
        return shop_id

    def record_failure(self, shop_id: str, error: str, now: datetime | None = None) -> None:
        """An outbound call failed for a reason a retry cannot fix (revoked token, 401, 404)."""
        with transaction(self._engine) as session:
            shop = session.get(Shop, shop_id, with_for_update=True)
            if shop is not None:
                shop.refused_calls = shop.refused_calls + 1 if not shop.healthy else 1
                shop.healthy = False
                shop.last_error = error[:LAST_ERROR_MAX]
                shop.last_error_at = now or utcnow()

    def record_success(self, shop_id: str) -> None:
        """An outbound call succeeded: the shop is healthy again (its last error stays for the record)."""
        with transaction(self._engine) as session:
            shop = session.get(Shop, shop_id, with_for_update=True)
            if shop is not None and not shop.healthy:
                shop.healthy = True

    def _view(self, session: Session, shop: Shop, now: datetime) -> ShopView:
        rows = {
            row.name: row
            for row in session.exec(select(ShopSecret).where(ShopSecret.shop_id == shop.shop_id)).all()
        }
        names = CHANNEL_SECRETS.get(Channel(shop.channel), ())
        states: dict[str, SecretState] = {}
        for name in dict.fromkeys([*names, *rows]):
            row = rows.get(name)
            states[name] = SecretState(set=False) if row is None else _state(row, self.grace, now)
        values: dict[str, Any] = {
            "shop_id": shop.shop_id,
            "channel": shop.channel,
            "name": shop.name,
            "url": shop.url,
            "currency": shop.currency,
            "language": shop.language,
            "stripe_account_id": shop.stripe_account_id,
            "authorized_counts_as_paid": shop.authorized_counts_as_paid,
            "stock_buffer": shop.stock_buffer,
            "credentials": states,
            "healthy": shop.healthy,
            "last_error": shop.last_error,
            "last_error_at": _aware(shop.last_error_at),
            "refused_calls": shop.refused_calls,
            "created_at": _aware(shop.created_at),
            "updated_at": _aware(shop.updated_at),
        }
        return ShopView.model_validate(values)


def _state(row: ShopSecret, grace: timedelta, now: datetime) -> SecretState:
    replaced_at = _aware(row.replaced_at)
    until = replaced_at + grace if row.previous_ciphertext and replaced_at else None
    return SecretState(
        set=True,
        changed_at=_aware(row.changed_at),
        previous_valid_until=until if until and now < until else None,
    )
