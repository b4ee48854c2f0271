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
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.effects import (
    SHOP_CALL_ATTEMPTS,
    CancelOnShop,
    CreateFulfilment,
    PushStock,
    RefundPayment,
    ShopCall,
    ShopCheck,
    StockSweep,
    StockSwept,
)
from domain.models import Channel
from domain.shops import ShopView
from integrations.channels.base import Outcome, ParcelNotice
from integrations.channels.shopify.client import ShopifyClient
from integrations.channels.woocommerce.client import WooCommerceClient
from integrations.errors import PermanentError, RetryableError
from integrations.payments.stripe.client import StripePayments
from services.inventory import InventoryService
from services.payments import PaymentService
from services.shops import ShopService
from services.tables import utcnow

log = structlog.get_logger(__name__)

SHOP_REFUSED = "ShopRefused"  # the store refused for good: the shop is marked unhealthy
SHOP_NOT_FIXED = "ShopNotFixed"  # shop_fixed: not yet, ask again later
STRIPE_REFUSED = "StripeRefused"
STRIPE_UNAVAILABLE = "StripeUnavailable"  # Stripe kept failing until the last attempt
T = TypeVar("T")

# Stripe's refund statuses as orderflow's refund record keeps them; others stay pending (charge.refunded
# settles them later).
REFUND_STATUS = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}
# Stock changes are read from a little before the last one pushed: a change whose transaction
# committed late (its updated_at older than one already seen) is still found. The SKUs read again
# that way keep the figure last pushed (StockSweep.figures): an unchanged one is not sent again.
LOOKBACK = timedelta(seconds=5)
# An unhealthy shop is tried again once it was changed (PUT /shops, e.g. a new token) or after this.
RECHECK_UNHEALTHY = timedelta(hours=1)


@dataclass(frozen=True)
class _Store:
    shop: ShopView
    client: ShopifyClient | WooCommerceClient


class ChannelActivities:
    def __init__(
        self,
        shops: ShopService,
        payments: PaymentService,
        inventory: InventoryService,
        *,
        stripe_api_base: str | None = None,
    ) -> None:
        self._shops = shops
        self._payments = payments
        self._inventory = inventory
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

        async def call() -> Outcome | None:
            try:
                if isinstance(client, ShopifyClient):
                    return await client.cancel_order(request.channel_order_id, refund=request.refund)
                return await client.cancel_order(request.channel_order_id)
            except PermanentError as error:
                # The store no longer has the order (deleted there, which is often why it was
                # cancelled): nothing to cancel, and no fault of the shop's.
                if error.status == 404 or "not found" in str(error):
                    return None
                raise

        outcome = await self._guard(store, "cancel the order", call)
        if outcome is None:
            return ShopCall(done=True, detail="the store no longer has the order: nothing to cancel there")
        log.info("shop_order_cancelled", order_id=request.order_id, created=outcome.created)
        if not outcome.created:
            return ShopCall(done=True, detail="was cancelled or refunded on the store already: left as it is")
        return ShopCall(done=True, detail="cancelled")

    @activity.defn
    async def shop_fixed(self, request: ShopCheck) -> ShopCall:
        """Done once the shop that refused a call is healthy again (its next call succeeded) or was
        changed since it failed (PUT /shops, e.g. a new token). Not yet: a retryable failure, so the
        order asks again through its retry policy, adding nothing to its history meanwhile."""
        shop = await asyncio.to_thread(self._shops.get, request.shop_id)
        if shop is None:
            return ShopCall(done=False, detail=f"no shop {request.shop_id}")
        failed_at = shop.last_error_at
        if shop.healthy or failed_at is None:
            return ShopCall(done=True, detail="healthy again")
        if shop.updated_at > failed_at:
            return ShopCall(done=True, detail="changed since it failed")
        raise ApplicationError(f"shop {request.shop_id} is still unhealthy", type=SHOP_NOT_FIXED)

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
            if _last_attempt():  # no retry follows: the record must not stay pending for ever
                await asyncio.to_thread(self._payments.settle_refund, request.refund_id, "failed")
                raise ApplicationError(str(error), type=STRIPE_UNAVAILABLE, non_retryable=True) from error
            raise _retry(error) from error
        finally:
            await stripe.close()
        status = REFUND_STATUS.get(result.status)
        if status is not None:
            await asyncio.to_thread(self._payments.settle_refund, request.refund_id, status)
        log.info("refund_sent", refund_id=request.refund_id, stripe_refund=result.refund_id)
        return ShopCall(done=True, detail=f"Stripe refund {result.refund_id}: {result.status}")

    @activity.defn
    async def push_stock(self, request: PushStock) -> ShopCall:
        """Set one SKU on one shop to max(0, sellable - the shop's stock buffer)."""
        store = await self._store(request.shop_id)
        if isinstance(store, str):
            return ShopCall(done=False, detail=store)
        quantity = max(0, request.sellable - store.shop.stock_buffer)
        written = await self._guard(
            store, f"set the stock of {request.sku}", lambda: _set(store, request.sku, quantity)
        )
        return ShopCall(done=True, detail=f"{request.sku}: {quantity}" + ("" if written else " (unchanged)"))

    @activity.defn
    async def push_stock_changes(self, sweep: StockSweep) -> StockSwept:
        """One round of the stock push: to every shop, each SKU changed since its cursor, once, with
        the figure it has now (so a burst of changes between rounds is one push). A shop that refuses
        for good is marked unhealthy and keeps its cursor: its pending pushes resume once it is fixed."""
        now = utcnow()
        cursors, figures = dict(sweep.cursors), dict(sweep.figures)
        total, notes = 0, []
        sellable: dict[str, int] | None = None
        for shop in await asyncio.to_thread(self._shops.all):
            since = cursors.get(shop.shop_id, shop.created_at)
            changed = await asyncio.to_thread(self._inventory.changed_since, since - LOOKBACK)
            if not changed or not _due(shop, now):
                continue
            if sellable is None:
                sellable = await asyncio.to_thread(self._inventory.sellable)
            listed = dict(figures.get(shop.shop_id, {}))
            wanted = {sku: max(0, sellable.get(sku, 0) - shop.stock_buffer) for sku in changed}
            due = {sku: quantity for sku, quantity in wanted.items() if listed.get(sku) != quantity}
            done = True
            if due:  # otherwise only changes pushed already were read again: nothing to call
                store = await self._store(shop.shop_id)
                if isinstance(store, str):  # nothing to call: the changes are not kept for it
                    cursors[shop.shop_id] = max(since, *changed.values())
                    continue
                pushed, said, done = await self._push_changes(store, due, listed)
                total += pushed
                notes += said
            cursor = max(since, *changed.values()) if done else since
            if done:
                cursors[shop.shop_id] = cursor
            # Only the SKUs the next round reads again need their figure kept.
            figures[shop.shop_id] = {
                sku: quantity
                for sku, quantity in listed.items()
                if sku in changed and changed[sku] > cursor - LOOKBACK
            }
        return StockSwept(cursors=cursors, pushed=total, notes=notes, figures=figures)

    async def _push_changes(
        self, store: _Store, due: dict[str, int], listed: dict[str, int]
    ) -> tuple[int, list[str], bool]:
        """Send each SKU's quantity; `listed` learns what the shop lists now (or that it does not list
        the SKU: the same figure is not tried again). (SKUs written, notes, whether all were dealt with.)"""
        shop = store.shop
        pushed, notes = 0, []
        try:
            for sku, quantity in sorted(due.items()):
                activity.heartbeat(shop.shop_id, sku)
                try:
                    pushed += await _set(store, sku, quantity)
                except PermanentError as error:
                    if error.status is not None:
                        raise  # the shop itself refuses (401, 403, 404): not this SKU's fault
                    notes.append(f"{shop.shop_id}: {sku} not pushed: {error}")
                listed[sku] = quantity
        except PermanentError as error:
            reason = f"push stock: {error}"
            await asyncio.to_thread(self._shops.record_failure, shop.shop_id, reason)
            log.warning("shop_refused", shop_id=shop.shop_id, reason=reason)
            return pushed, [*notes, f"{shop.shop_id}: {reason}; pushes wait until the shop is fixed"], False
        except RetryableError as error:
            return pushed, [*notes, f"{shop.shop_id}: {error}; pushed again next round"], False
        finally:
            await store.client.aclose()
        if not shop.healthy:
            await asyncio.to_thread(self._shops.record_success, shop.shop_id)
        log.info("stock_pushed", shop_id=shop.shop_id, skus=len(due), written=pushed)
        return pushed, notes, True

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


async def _set(store: _Store, sku: str, quantity: int) -> bool:
    """Set what the shop lists for `sku`; False when it already listed that many. A shop that does
    not list the SKU raises PermanentError without a status."""
    client = store.client
    if isinstance(client, WooCommerceClient):
        return (await client.set_stock(sku, quantity)).created
    found = await client.stock_by_sku(sku)
    if found is None:
        raise PermanentError(f"no Shopify variant has the SKU {sku!r}")
    item, location, available = found
    if available == quantity:
        return False
    await client.set_available(item, location, quantity, available, f"{store.shop.shop_id}/{sku}")
    return True


def _due(shop: ShopView, now: datetime) -> bool:
    """An unhealthy shop is pushed to again once it was changed since it failed, or after a while."""
    failed_at = shop.last_error_at
    if shop.healthy or failed_at is None:
        return True
    return shop.updated_at > failed_at or now - failed_at > RECHECK_UNHEALTHY


def _last_attempt() -> bool:
    """This attempt is the activity's last: its retry policy allows no other."""
    info = activity.info()
    # The task carries its retry policy on a real server (not on the time-skipping test server).
    most = info.retry_policy.maximum_attempts if info.retry_policy else SHOP_CALL_ATTEMPTS
    return most > 0 and info.attempt >= most


def _retry(error: RetryableError) -> ApplicationError:
    """Retryable, after the counterpart's Retry-After when it gave one."""
    delay = timedelta(seconds=error.retry_after) if error.retry_after else None
    return ApplicationError(str(error), type="ShopUnavailable", next_retry_delay=delay)
