"""Outbound calls to the seller's stores and Stripe: fulfilments, cancellations, refunds, stock levels.

Each activity looks up the shop's decrypted credentials, builds that channel's client, calls it and
maps what happened: a refusal no retry fixes (401, 404, a refused request) is a non-retryable
ApplicationError and marks the shop unhealthy with the reason; a failure that may pass (429, 5xx,
a timeout) stays retryable, after the delay the counterpart asked for; a success makes the shop
healthy again. A shop without credentials (the channel's default shop) has nothing to call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import CancelOnShop, CreateFulfilment, PushStock, RefundPayment, ShopCall
from domain.models import Channel
from domain.shops import ShopView
from integrations.channels.base import Outcome, ParcelNotice
from integrations.channels.shopify.client import ShopifyClient
from integrations.channels.woocommerce.client import WooCommerceClient
from integrations.errors import PermanentError, RetryableError
from integrations.payments.stripe.client import StripePayments
from services.payments import PaymentService
from services.shops import ShopService

log = structlog.get_logger(__name__)

SHOP_REFUSED = "ShopRefused"  # the store refused for good: the shop is marked unhealthy
STRIPE_REFUSED = "StripeRefused"
T = TypeVar("T")

# Stripe's refund statuses as orderflow's refund record keeps them; others stay pending (charge.refunded
# settles them later).
REFUND_STATUS = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}


@dataclass(frozen=True)
class _Store:
    shop: ShopView
    client: ShopifyClient | WooCommerceClient


class ChannelActivities:
    def __init__(
        self, shops: ShopService, payments: PaymentService, *, stripe_api_base: str | None = None
    ) -> None:
        self._shops = shops
        self._payments = payments
        self._stripe_api_base = stripe_api_base

    @activity.defn
    async def create_fulfilment(self, request: CreateFulfilment) -> ShopCall:
        store = await self._store(request.shop_id)
        if isinstance(store, str):
            return ShopCall(done=False, detail=store)
        notice = ParcelNotice(
            tracking_company=request.carrier,
            tracking_number=request.tracking_number,
            tracking_url=request.tracking_url,
            lines=tuple((line.channel_line_id, line.quantity) for line in request.lines),
        )
        client = store.client

        async def call() -> Outcome:
            if isinstance(client, ShopifyClient):
                return await client.create_fulfilment(request.channel_order_id, notice)
            return await client.complete_with_tracking(
                request.channel_order_id, notice, last_parcel=request.last_parcel
            )

        outcome = await self._guard(store, "create the fulfilment", call)
        log.info("shop_fulfilment", key=request.key, shop_id=request.shop_id, created=outcome.created)
        return ShopCall(done=True, detail=f"{request.carrier} {request.tracking_number} ({outcome.id})")

    @activity.defn
    async def cancel_on_shop(self, request: CancelOnShop) -> ShopCall:
        store = await self._store(request.shop_id)
        if isinstance(store, str):
            return ShopCall(done=False, detail=store)
        client = store.client

        async def call() -> Outcome:
            if isinstance(client, ShopifyClient):
                return await client.cancel_order(request.channel_order_id, refund=request.refund)
            return await client.cancel_order(request.channel_order_id)

        outcome = await self._guard(store, "cancel the order", call)
        log.info("shop_order_cancelled", order_id=request.order_id, created=outcome.created)
        return ShopCall(done=True, detail="cancelled" if outcome.created else "was cancelled already")

    @activity.defn
    async def refund_payment(self, request: RefundPayment) -> ShopCall:
        key = await asyncio.to_thread(self._shops.secret, request.shop_id, "stripe_secret_key")
        if key is None:
            return ShopCall(done=False, detail=f"shop {request.shop_id} has no Stripe secret key")
        stripe = StripePayments(key, base_url=self._stripe_api_base)
        try:
            result = await stripe.refund(
                request.refund_id, request.payment_intent_id, request.amount, request.currency
            )
        except PermanentError as error:
            await asyncio.to_thread(self._payments.settle_refund, request.refund_id, "failed")
            if error.status in (401, 403):
                await asyncio.to_thread(self._shops.record_failure, request.shop_id, str(error))
            raise ApplicationError(str(error), type=STRIPE_REFUSED, non_retryable=True) from error
        except RetryableError as error:
            raise _retry(error) from error
        status = REFUND_STATUS.get(result.status)
        if status is not None:
            await asyncio.to_thread(self._payments.settle_refund, request.refund_id, status)
        log.info("refund_sent", refund_id=request.refund_id, stripe_refund=result.refund_id)
        return ShopCall(done=True, detail=f"Stripe refund {result.refund_id}: {result.status}")

    @activity.defn
    async def push_stock(self, request: PushStock) -> ShopCall:
        """WooCommerce only so far: a product's stock_quantity by SKU (see README, stock push)."""
        store = await self._store(request.shop_id)
        if isinstance(store, str):
            return ShopCall(done=False, detail=store)
        client = store.client
        quantity = max(0, request.sellable - store.shop.stock_buffer)
        if not isinstance(client, WooCommerceClient):
            await client.aclose()
            return ShopCall(done=False, detail="stock is not pushed to Shopify shops yet")
        await self._guard(
            store, f"set the stock of {request.sku}", lambda: client.set_stock(request.sku, quantity)
        )
        return ShopCall(done=True, detail=f"{request.sku}: {quantity}")

    async def _store(self, shop_id: str) -> _Store | str:
        """The shop's client, or why there is nothing to call."""
        shop = await asyncio.to_thread(self._shops.get, shop_id)
        if shop is None:
            return f"no shop {shop_id}"
        if not shop.url:
            return f"shop {shop_id} has no address"
        secret = self._shops.secret
        if shop.channel == Channel.SHOPIFY:
            token = await asyncio.to_thread(secret, shop_id, "access_token")
            if token is None:
                return f"shop {shop_id} has no access token"
            return _Store(shop, ShopifyClient(shop.url, token))
        if shop.channel == Channel.WOOCOMMERCE:
            key = await asyncio.to_thread(secret, shop_id, "consumer_key")
            secret_value = await asyncio.to_thread(secret, shop_id, "consumer_secret")
            if key is None or secret_value is None:
                return f"shop {shop_id} has no REST API key"
            return _Store(shop, WooCommerceClient(shop.url, key, secret_value))
        return f"orderflow does not call {shop.channel.value} shops"

    async def _guard(self, store: _Store, what: str, call: Callable[[], Awaitable[T]]) -> T:
        shop_id = store.shop.shop_id
        try:
            result = await call()
        except PermanentError as error:
            reason = f"{what}: {error}"
            await asyncio.to_thread(self._shops.record_failure, shop_id, reason)
            log.warning("shop_refused", shop_id=shop_id, reason=reason)
            raise ApplicationError(reason, type=SHOP_REFUSED, non_retryable=True) from error
        except RetryableError as error:
            raise _retry(error) from error
        finally:
            await store.client.aclose()
        if not store.shop.healthy:
            await asyncio.to_thread(self._shops.record_success, shop_id)
        return result


def _retry(error: RetryableError) -> ApplicationError:
    """Retryable, after the counterpart's Retry-After when it gave one."""
    delay = timedelta(seconds=error.retry_after) if error.retry_after else None
    return ApplicationError(str(error), type="ShopUnavailable", next_retry_delay=delay)
