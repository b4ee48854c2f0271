"""Shop use cases: describe a shop with its secrets, list shops; raising domain errors for any edge."""

from __future__ import annotations

from datetime import datetime

from app.errors import CommandRefused, NotFound
from domain.models import Channel
from domain.shops import ShopIn, ShopView
from services.shops import ChannelChange, ShopFields, ShopService


class Shops:
    def __init__(self, service: ShopService) -> None:
        self._service = service

    def put(self, shop_id: str, body: ShopIn, now: datetime | None = None) -> ShopView:
        """Create or describe `shop_id`. Credentials left out keep their stored values; null removes one."""
        fields = ShopFields(
            channel=body.channel,
            name=body.name,
            url=body.url,
            currency=body.currency,
            language=body.language,
            stripe_account_id=body.stripe_account_id,
            authorized_counts_as_paid=body.authorized_counts_as_paid,
            stock_buffer=body.stock_buffer,
        )
        try:
            return self._service.put(shop_id, fields, body.credentials.changes(), now)
        except ChannelChange as exc:
            raise CommandRefused(str(exc)) from None

    def get(self, shop_id: str) -> ShopView:
        view = self._service.get(shop_id)
        if view is None:
            raise NotFound(f"shop {shop_id}")
        return view

    def list(self, channel: Channel | None = None) -> list[ShopView]:
        return self._service.all(channel)
