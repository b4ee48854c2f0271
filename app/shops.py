"""Shop use cases: describe a shop with its secrets, list shops; raising domain errors for any edge."""

from __future__ import annotations

from datetime import datetime

from app.errors import CommandRefused, InvalidField, NotFound
from domain.models import Channel, PlaceOrder, default_shop_id
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

    def check_order_shop(self, order: PlaceOrder) -> None:
        """An order names a shop that exists and sells on the order's channel (a typo would otherwise
        file the order under a shop nobody has, where the same order sent again is a second order)."""
        if order.shop_id is None or order.shop_id == default_shop_id(order.channel.value):
            return
        shop = self._service.get(order.shop_id)
        if shop is None:
            raise InvalidField(
                "shop_id",
                f"no shop {order.shop_id}: describe it first with PUT /shops/{order.shop_id} (operator), "
                f"or leave shop_id out to use the {order.channel.value} default shop",
            )
        if shop.channel != order.channel:
            raise InvalidField(
                "shop_id",
                f"shop {order.shop_id} sells on {shop.channel}, but this order says {order.channel}",
            )

    def list(self, channel: Channel | None = None) -> list[ShopView]:
        return self._service.all(channel)
