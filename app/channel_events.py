"""Inbound webhooks: verify a delivery, store it in the inbox, and apply what it means to the order (or
the shop) it is about through OrderGateway. Used by the webhook routes, the operator's replay and the
inbox sweeper; a delivery Temporal could not take now stays `received` and the sweeper applies it."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

import structlog
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from app.errors import Busy, CommandRefused, InvalidField, NotFound
from app.orders import OrderGateway
from core.metrics import WEBHOOKS_REJECTED
from domain.channel_events import (
    ChannelCancelled,
    ChannelOrder,
    ChannelPaid,
    ChannelRefunded,
    ChannelStatus,
    ChargeRefunded,
    PaymentFailed,
    PaymentReference,
    PaymentSucceeded,
    ShopUninstalled,
)
from domain.models import (
    Address,
    CancelOrder,
    Channel,
    ConfirmPayment,
    Customer,
    Discount,
    OrderLine,
    OrderStatus,
    PlaceOrder,
)
from domain.operator import Action, ActionParams, OperatorAction
from integrations.channels.base import ShopPolicy
from integrations.channels.registry import adapter
from integrations.errors import PayloadError, SignatureError, UnsupportedTopic
from integrations.payments.stripe import mapping as stripe_mapping
from integrations.payments.stripe import signature as stripe_signature
from services.inbox import InboxEntry, InboxService, InboxStatus
from services.shops import ShopService
from services.tables import utcnow

log = structlog.get_logger(__name__)
T = TypeVar("T")

DELIVERY_ID_MAX = 255  # inbox.delivery_id
TOPIC_MAX = 64  # inbox.topic
PAYMENT_ID_MAX = 100  # payments.payment_id, ConfirmPayment.payment_id
# Headers kept with a stored delivery: what says where it came from, never a signature or a credential.
KEPT_HEADERS = ("content-type", "user-agent", "x-shopify-", "x-wc-webhook-", "stripe-")
DROPPED_HEADERS = frozenset({"x-shopify-hmac-sha256", "x-wc-webhook-signature", "stripe-signature"})
# Orders a refund or a cancellation on the store can still cancel: nothing has left the warehouse.
BEFORE_SHIPMENT = frozenset(
    {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.STOCK_LOCKED, OrderStatus.EXCEPTION}
)
TITLES = {Channel.SHOPIFY: "Shopify", Channel.WOOCOMMERCE: "WooCommerce"}
STRIPE_METHOD = "Stripe"  # ConfirmPayment.method of payments Stripe took (workflows/shop_calls.py reads it)
# How long a payment waits for the order it names (the sweeper retries it) before it is `failed`.
ORDER_WAIT = timedelta(hours=24)
ORDER_WAIT_WORDS = "24 hours"
STALE = "older than the store's update already applied: changed nothing"


class Source(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    STRIPE = "stripe"


class DeliveryNotFound(NotFound):
    def __init__(self, inbox_id: int) -> None:
        super().__init__(f"delivery {inbox_id}")


class WaitingForOrder(Exception):
    """A payment for an order the store has not sent yet: the delivery stays `received` for the sweeper."""


@dataclass(frozen=True)
class Outcome:
    status: InboxStatus
    reason: str | None = None
    order_id: str | None = None
    channel_order_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """What the webhook answers: the stored delivery (None for WooCommerce's ping) and if it was new."""

    entry: InboxEntry | None
    new: bool


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value[:500]
        for name, value in headers.items()
        if name.lower().startswith(KEPT_HEADERS) and name.lower() not in DROPPED_HEADERS
    }


class Inbound:
    def __init__(
        self,
        gateway: OrderGateway,
        inbox: InboxService,
        shops: ShopService,
        runtime: Runtime | None = None,
        answer_within: timedelta = timedelta(seconds=2),
    ) -> None:
        self._gateway = gateway
        self._answer_within = answer_within
        self._applying: set[asyncio.Task[InboxEntry]] = set()  # held until done: asyncio keeps weak refs
        self._inbox = inbox
        self._shops = shops
        self._rejected = (
            runtime.metric_meter.create_counter(WEBHOOKS_REJECTED, "Webhooks refused for their signature")
            if runtime
            else None
        )

    @property
    def inbox(self) -> InboxService:
        return self._inbox

    # ------------------------------------------------------------------ receiving
    async def receive(
        self, source: Source, key: str, headers: Mapping[str, str], body: bytes, now: datetime | None = None
    ) -> Receipt:
        """Verify, store and try to apply one delivery. `key` is the shop id (the Stripe account id for
        Stripe). SignatureError: refused, nothing stored. NotFound: no such shop. InvalidField: a
        signed delivery whose headers or body cannot be stored."""
        now = now or utcnow()
        shop_ids = await run_in_threadpool(self._shop_ids, source, key)
        shop_id = shop_ids[0]
        secret_name = "stripe_webhook_secret" if source is Source.STRIPE else None
        secrets = [
            secret
            for candidate in shop_ids
            for secret in await run_in_threadpool(self._shops.webhook_secrets, candidate, now, secret_name)
        ]
        try:
            if source is Source.STRIPE:
                stripe_signature.verify(body, headers, secrets, now=now.timestamp())
            else:
                adapter(Channel(source.value)).verify(body, headers, secrets)
        except SignatureError as refused:
            await run_in_threadpool(self._inbox.record_rejection, shop_id, str(refused), now)
            if self._rejected is not None:
                self._rejected.add(1, {"source": source.value})
            log.warning("webhook_signature_refused", source=source.value, shop_id=shop_id, why=str(refused))
            raise
        topic, delivery_id, event_id, ping = self._delivery(source, headers, body)
        if source is Source.STRIPE and len(shop_ids) > 1:
            shop_id = _stripe_shop(body, shop_ids)
        if ping:
            log.info("webhook_ping", source=source.value, shop_id=shop_id)
            return Receipt(None, new=False)
        text = _text(body)
        entry, new = await run_in_threadpool(
            lambda: self._inbox.store(
                source=source.value,
                shop_id=shop_id,
                delivery_id=delivery_id,
                event_id=event_id,
                topic=topic,
                headers=kept_headers(headers),
                body=text,
                now=now,
            )
        )
        if not new:
            log.info("webhook_duplicate", source=source.value, shop_id=shop_id, delivery_id=delivery_id)
            return Receipt(entry, new=False)
        return Receipt(await self._apply_within_bound(entry), new=True)

    async def _apply_within_bound(self, entry: InboxEntry) -> InboxEntry:
        """Apply now, but answer within `answer_within`: past it the delivery (stored already) is
        reported `received` while its applying goes on; the sweeper covers a crash meanwhile."""
        task = asyncio.create_task(self.apply(entry.id))
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._answer_within.total_seconds())
        except TimeoutError:
            log.info("webhook_applying_after_answer", inbox_id=entry.id, source=entry.source)
            reason = "being applied: the order service is slow to answer; it completes without a redelivery"
            return entry.model_copy(update={"status": InboxStatus.APPLYING, "reason": reason})

    async def drain(self) -> None:
        """Let deliveries still being applied finish (API shutdown)."""
        if self._applying:
            await asyncio.gather(*self._applying, return_exceptions=True)

    def _shop_ids(self, source: Source, key: str) -> list[str]:
        """The shop a delivery is for; for Stripe every shop on the account (which one: `_stripe_shop`)."""
        if source is Source.STRIPE:
            found = self._inbox.shops_for_stripe_account(key)
            if not found:
                raise NotFound(f"shop with Stripe account {key}")
            return found
        shop = self._shops.get(key)
        if shop is None or shop.channel.value != source.value:
            raise NotFound(f"{source.value} shop {key}")
        return [key]

    @staticmethod
    def _delivery(
        source: Source, headers: Mapping[str, str], body: bytes
    ) -> tuple[str, str, str | None, bool]:
        if source is Source.STRIPE:
            try:
                event = json.loads(body)
                stripe_id, stripe_type = str(event["id"]), str(event["type"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidField("body", "a Stripe event needs `id` and `type`") from exc
            found: tuple[str, str, str | None, bool] = (stripe_type, stripe_id, stripe_id, False)
        else:
            try:
                read = _mapped(lambda: adapter(Channel(source.value)).delivery(headers, body))
            except PayloadError as exc:
                raise InvalidField(exc.field, exc.problem) from exc
            found = (read.topic, read.delivery_id, read.event_id, read.ping)
        topic, delivery_id, event_id, ping = found
        if len(delivery_id) > DELIVERY_ID_MAX:
            raise InvalidField("delivery id", f"is longer than {DELIVERY_ID_MAX} characters")
        if len(topic) > TOPIC_MAX:
            raise InvalidField("topic", f"is longer than {TOPIC_MAX} characters")
        return topic, delivery_id, (event_id or "")[:DELIVERY_ID_MAX] or None, ping

    # ------------------------------------------------------------------ applying
    async def replay(self, inbox_id: int) -> InboxEntry:
        """An operator applies a failed delivery again (after fixing what its reason named)."""
        stored = await run_in_threadpool(self._inbox.get, inbox_id)
        if stored is None:
            raise DeliveryNotFound(inbox_id)
        if not await run_in_threadpool(self._inbox.reopen, inbox_id):
            raise CommandRefused(
                f"delivery {inbox_id} is {stored.entry.status}: only a failed delivery is replayed"
            )
        return await self.apply(inbox_id)

    async def sweep(
        self, received_before: datetime, limit: int = 50, progress: Callable[[], None] | None = None
    ) -> tuple[int, int]:
        """Apply deliveries still `received` (Temporal could not take them at the time): (tried, left).
        `progress` is called before each (the sweeper's activity heartbeats)."""
        ids = await run_in_threadpool(self._inbox.unapplied, received_before, limit)
        left = 0
        for inbox_id in ids:
            if progress is not None:
                progress()
            try:
                entry = await self.apply(inbox_id)
            except Exception:  # e.g. the database blinked: the next rows still get their turn
                log.exception("webhook_sweep_error", inbox_id=inbox_id)
                left += 1
                continue
            left += entry.status is InboxStatus.RECEIVED
        return len(ids), left

    async def apply(self, inbox_id: int) -> InboxEntry:
        """Apply a stored delivery once; its outcome is written on its row. Temporal not answering in
        time leaves it `received` for the sweeper."""
        if not await run_in_threadpool(self._inbox.claim, inbox_id):
            # Applied, or being applied by the request or the sweeper right now: one applies it.
            current = await run_in_threadpool(self._inbox.get, inbox_id)
            if current is None:
                raise DeliveryNotFound(inbox_id)
            return current.entry
        stored = await run_in_threadpool(self._inbox.get, inbox_id)
        assert stored is not None  # claimed just now; rows are never deleted
        entry = stored.entry
        try:
            outcome = await self._apply(entry, stored.body.encode())
        except (Busy, RPCError) as exc:
            reason = f"the order service did not take it yet ({exc}); it is retried automatically"
            outcome = Outcome(InboxStatus.RECEIVED, reason)
        except WaitingForOrder as exc:
            outcome = Outcome(InboxStatus.RECEIVED, str(exc))
        except UnsupportedTopic as exc:
            outcome = Outcome(InboxStatus.IGNORED, str(exc))
        except PayloadError as exc:
            outcome = Outcome(InboxStatus.FAILED, f"{exc.field}: {exc.problem}")
        except InvalidField as exc:
            outcome = Outcome(InboxStatus.FAILED, f"{exc.field}: {exc.message}")
        except (CommandRefused, NotFound) as exc:
            outcome = Outcome(InboxStatus.FAILED, str(exc))
        except ValidationError as exc:
            outcome = Outcome(InboxStatus.FAILED, _validation_reason(exc))
        except Exception as exc:  # one delivery orderflow cannot apply must not block those after it
            log.exception("webhook_apply_error", inbox_id=inbox_id, source=entry.source, topic=entry.topic)
            why = f"could not be applied ({type(exc).__name__}: {exc}): fix the cause, then replay it"
            outcome = Outcome(InboxStatus.FAILED, why)
        log.info(
            "webhook_applied",
            inbox_id=inbox_id,
            source=entry.source,
            topic=entry.topic,
            status=outcome.status.value,
            reason=outcome.reason,
        )
        await run_in_threadpool(
            lambda: self._inbox.finish(
                inbox_id,
                outcome.status,
                outcome.reason,
                order_id=outcome.order_id,
                channel_order_id=outcome.channel_order_id,
            )
        )
        done = await run_in_threadpool(self._inbox.get, inbox_id)
        assert done is not None
        return done.entry

    async def _apply(self, entry: InboxEntry, body: bytes) -> Outcome:
        shop = await run_in_threadpool(self._shops.get, entry.shop_id)
        if shop is None:
            return Outcome(InboxStatus.FAILED, f"shop {entry.shop_id} no longer exists")
        if entry.source == Source.STRIPE.value:
            payment = _mapped(lambda: stripe_mapping.map_event(body))
            return await self._payment(payment, shop.channel, entry.shop_id, entry.received_at)
        policy = ShopPolicy(entry.shop_id, authorized_counts_as_paid=shop.authorized_counts_as_paid)
        event = _mapped(lambda: adapter(shop.channel).map_event(entry.topic, body, policy))
        if isinstance(event, ShopUninstalled):
            why = "the app was uninstalled from the store: reinstall it and PUT /shops with the new token"
            await run_in_threadpool(self._shops.record_failure, entry.shop_id, why)
            return Outcome(InboxStatus.APPLIED, "shop marked unhealthy: the app was uninstalled")
        if isinstance(event, ChannelPaid):
            return await self._order(event.order, shop.channel)
        if isinstance(event, ChannelOrder):
            return await self._order(event, shop.channel)
        if isinstance(event, ChannelCancelled):
            coid = event.channel_order_id
            if event.updated_at is not None and await self._stale(event.shop_id, coid, event.updated_at):
                return Outcome(InboxStatus.STALE, STALE, channel_order_id=coid)
            outcome = await self._cancel(event.shop_id, shop.channel, coid, event.reason)
            if event.updated_at is not None and outcome.status is InboxStatus.APPLIED:
                await run_in_threadpool(self._inbox.advance, event.shop_id, coid, event.updated_at)
            return outcome
        if isinstance(event, ChannelRefunded):
            return await self._refund(event, shop.channel)
        raise UnsupportedTopic(f"{entry.topic} carries nothing orderflow acts on")  # pragma: no cover

    async def _stale(self, shop_id: str, channel_order_id: str, updated_at: datetime) -> bool:
        stale: bool = await run_in_threadpool(self._inbox.is_stale, shop_id, channel_order_id, updated_at)
        return stale

    async def _order(self, order: ChannelOrder, channel: Channel) -> Outcome:
        """Place, pay, note or cancel as the store's status says; older than what was applied: stale."""
        coid = order.channel_order_id
        if await self._stale(order.shop_id, coid, order.updated_at):
            return Outcome(InboxStatus.STALE, STALE, channel_order_id=coid)
        title = TITLES.get(channel, channel.value)
        if order.status in (ChannelStatus.CANCELLED, ChannelStatus.REFUNDED):
            outcome = await self._cancel(order.shop_id, channel, coid, f"{order.status.value} on {title}")
        elif order.status is ChannelStatus.FULFILLED:
            order_id = await run_in_threadpool(self._inbox.order_for, order.shop_id, channel.value, coid)
            if order_id is None:
                return Outcome(
                    InboxStatus.IGNORED,
                    f"fulfilled on {title} before orderflow saw it: nothing for orderflow to ship",
                    channel_order_id=coid,
                )
            await self._note(order_id, title.lower(), f"{title} says the store shipped order {coid} itself")
            outcome = Outcome(InboxStatus.APPLIED, "noted: the store shipped it itself", order_id, coid)
        else:
            answer = await self._gateway.place_order(to_place_order(order, channel))
            order_id = answer.view.order_id
            reason = None if answer.created else "the order was placed already"
            if order.status is ChannelStatus.PAID:
                reason = await self._pay_in_full(order_id, order, title)
            elif order.status is ChannelStatus.PAYMENT_FAILED:
                # The store re-sends the same update under new delivery ids: one note per store update.
                at = order.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
                text = f"a payment for {title} order {coid} failed (the store's update of {at})"
                if any(text in item.detail for item in answer.view.timeline):
                    return Outcome(
                        InboxStatus.DUPLICATE, "this failed payment is noted already", order_id, coid
                    )
                await self._note(order_id, title.lower(), text)
                reason = "payment failed on the store: noted, the order still waits for payment"
            outcome = Outcome(InboxStatus.APPLIED, reason, order_id, coid)
        if outcome.status is InboxStatus.APPLIED:
            await run_in_threadpool(self._inbox.advance, order.shop_id, coid, order.updated_at)
        return outcome

    async def _pay_in_full(self, order_id: str, order: ChannelOrder, title: str) -> str | None:
        """Pay the order its total once: the payment id is the shop's channel order's, so repeats are one;
        when the store took the money through Stripe it is the PaymentIntent (a cancel refunds it there,
        and Stripe's own payment_intent.succeeded is then the same payment)."""
        view = (await self._gateway.get(order_id)).view
        if view.payment is not None:
            return "the order was paid already"
        if order.stripe_payment_intent_id is not None:
            payment_id, method = order.stripe_payment_intent_id, STRIPE_METHOD
        else:
            payment_id, method = channel_payment_id(order.shop_id, order.channel_order_id), title
        payment = ConfirmPayment(
            payment_id=payment_id, amount=view.total, currency=view.currency, method=method
        )
        await self._gateway.pay(order_id, payment)
        return None

    async def _cancel(self, shop_id: str, channel: Channel, coid: str, reason: str) -> Outcome:
        order_id = await run_in_threadpool(self._inbox.order_for, shop_id, channel.value, coid)
        if order_id is None:
            return Outcome(
                InboxStatus.IGNORED, "the order was never placed in orderflow: nothing to cancel", None, coid
            )
        view = (await self._gateway.get(order_id)).view
        if view.status is OrderStatus.CANCELLED:
            return Outcome(InboxStatus.DUPLICATE, "the order is cancelled already", order_id, coid)
        if view.status not in BEFORE_SHIPMENT:
            return Outcome(
                InboxStatus.FAILED,
                f"{reason}, but the order is {view.status.value} already: arrange the return with the buyer",
                order_id,
                coid,
            )
        await self._gateway.cancel(order_id, CancelOrder(reason=reason[:200], origin="channel"))
        return Outcome(InboxStatus.APPLIED, None, order_id, coid)

    async def _refund(self, event: ChannelRefunded, channel: Channel) -> Outcome:
        """A refund made on the store: of the whole total before shipment it cancels the order (the store
        refunded the buyer already: nothing goes back to it); a partial one, or one after shipment, is a
        timeline note, once per refund id."""
        title = TITLES.get(channel, channel.value)
        coid = event.channel_order_id
        order_id = await run_in_threadpool(self._inbox.order_for, event.shop_id, channel.value, coid)
        if order_id is None:
            return Outcome(
                InboxStatus.IGNORED, "the order was never placed in orderflow: nothing to refund", None, coid
            )
        view = (await self._gateway.get(order_id)).view
        marker = f"(refund {event.channel_refund_id})"
        if view.status is OrderStatus.CANCELLED:
            return Outcome(InboxStatus.DUPLICATE, "the order is cancelled already", order_id, coid)
        if any(marker in item.detail for item in view.timeline):
            return Outcome(
                InboxStatus.DUPLICATE, f"refund {event.channel_refund_id} is noted already", order_id, coid
            )
        refunded = f"{event.amount} {event.currency} refunded on {title} {marker}"
        whole = event.currency == view.currency and event.amount >= view.total
        if whole and view.status in BEFORE_SHIPMENT:
            reason = f"refunded in full on {title} {marker}"
            await self._gateway.cancel(order_id, CancelOrder(reason=reason[:200], origin="channel"))
            return Outcome(InboxStatus.APPLIED, "refunded in full before shipment: cancelled", order_id, coid)
        if view.status in BEFORE_SHIPMENT:
            await self._note(
                order_id, title.lower(), f"{refunded}: a partial refund, the order stays as it is"
            )
            return Outcome(
                InboxStatus.APPLIED, "partial refund: noted on the order's timeline", order_id, coid
            )
        await self._note(
            order_id, title.lower(), f"{refunded} after shipment: arrange the return with the buyer"
        )
        return Outcome(
            InboxStatus.APPLIED, "refunded after shipment: noted, arrange the return", order_id, coid
        )

    async def _note(self, order_id: str, actor: str, text: str) -> None:
        action = OperatorAction(
            action=Action.NOTE, actor=actor, reason=text[:200], params=ActionParams(text=text[:2000])
        )
        await self._gateway.operate(order_id, action)

    async def _payment(
        self,
        event: PaymentSucceeded | PaymentFailed | ChargeRefunded,
        channel: Channel,
        shop_id: str,
        received_at: datetime,
    ) -> Outcome:
        if isinstance(event, ChargeRefunded):
            if not event.orderflow_refund_ids:
                why = "names no orderflow refund (refund metadata orderflow_refund_id): nothing to settle"
                return Outcome(InboxStatus.IGNORED, f"charge {event.charge_id} refunded; {why}")
            settled, unknown = await run_in_threadpool(
                self._inbox.settle_refunds, list(event.orderflow_refund_ids)
            )
            if not settled:
                return Outcome(InboxStatus.FAILED, f"no orderflow refund {', '.join(unknown)}")
            return Outcome(InboxStatus.APPLIED, f"refund settled: {', '.join(settled)}")
        order_id = await self._paid_order(event.reference, channel, shop_id, received_at)
        if isinstance(event, PaymentSucceeded):
            already = (await self._gateway.get(order_id)).view.payment
            if (
                already is not None
                and already.payment_id != event.payment_intent_id
                and (already.amount, already.currency) == (event.amount, event.currency)
                and already.method != STRIPE_METHOD
            ):
                # WooCommerce with Stripe: the store's `processing` paid the order first. The same money,
                # not a second payment: keep the PaymentIntent on the timeline for a refund to find.
                pi = event.payment_intent_id
                await self._note(
                    order_id,
                    "stripe",
                    f"Stripe payment {pi} is the payment {already.payment_id} the store reported",
                )
                return Outcome(
                    InboxStatus.DUPLICATE, f"already paid via the store; Stripe payment {pi} noted", order_id
                )
            payment = ConfirmPayment(
                payment_id=event.payment_intent_id,
                amount=event.amount,
                currency=event.currency,
                method=STRIPE_METHOD,
            )
            answer = await self._gateway.pay(order_id, payment)
            paid = answer.view.payment
            if paid is not None and paid.payment_id != event.payment_intent_id:
                return Outcome(
                    InboxStatus.DUPLICATE, f"the order was paid already ({paid.payment_id})", order_id
                )
            return Outcome(InboxStatus.APPLIED, None, order_id)
        detail = f"Stripe payment {event.payment_intent_id} failed: {event.code} {event.message}".strip()
        await self._note(order_id, "stripe", detail)
        return Outcome(InboxStatus.APPLIED, "noted on the order's timeline", order_id)

    async def _paid_order(
        self, reference: PaymentReference, channel: Channel, shop_id: str, received_at: datetime
    ) -> str:
        if reference.order_id is not None:
            return reference.order_id
        assert reference.channel_order_id is not None  # PaymentReference names one or the other
        shop = reference.shop_id or shop_id
        coid = reference.channel_order_id
        found = await run_in_threadpool(self._inbox.order_for, shop, channel.value, coid)
        if found is None:
            # Stripe often tells before the store does: wait for the order, within reason.
            title = TITLES.get(channel, channel.value)
            if utcnow() - received_at < ORDER_WAIT:
                raise WaitingForOrder(
                    f"waiting for {title} order {coid} of shop {shop}; retried automatically"
                )
            raise NotFound(
                f"{title} order {coid} of shop {shop} did not arrive within {ORDER_WAIT_WORDS}: check the "
                "store's webhooks, then replay this delivery"
            )
        return found


def channel_payment_id(shop_id: str, channel_order_id: str) -> str:
    """The payment id of an order the store says is paid: unique per shop (two shops both have an order
    #1001), within payments.payment_id's 100 characters (a long store id is hashed)."""
    payment_id = f"{shop_id}:{channel_order_id}"
    if len(payment_id) <= PAYMENT_ID_MAX:
        return payment_id
    return f"{shop_id}:{hashlib.sha256(channel_order_id.encode()).hexdigest()[:32]}"


def to_place_order(order: ChannelOrder, channel: Channel) -> PlaceOrder:
    """The PlaceOrder a store's order stands for; InvalidField names what the store did not send."""
    if order.address is None:
        raise InvalidField("shipping_address", "the store sent no shipping address: nothing to ship to")
    if not order.customer.email:
        raise InvalidField("customer.email", "the store sent no email address for the buyer")
    if not order.lines:
        raise InvalidField("lines", "the order has no lines")
    for index, line in enumerate(order.lines):
        if not line.sku:
            raise InvalidField(f"lines[{index}].sku", f"'{line.title}' has no SKU on the store: give it one")
    locale = order.customer.locale.replace("_", "-")
    language = locale.split("-")[0].lower()
    address = order.address
    money = order.money
    return PlaceOrder(
        channel=channel,
        channel_order_id=order.channel_order_id,
        shop_id=order.shop_id,
        customer=Customer(
            name=order.customer.name or address.recipient,
            email=order.customer.email,
            language=language if len(language) == 2 and language.isalpha() else "en",
            channel_customer_id=order.customer.channel_customer_id,
            locale=locale or None,
        ),
        shipping_address=Address(
            country=address.country,
            city=address.city,
            postal_code=address.postal_code,
            line1=address.line1,
            line2=address.line2,
            recipient=address.recipient,
            company=address.company,
            province=address.province_code,
            phone=address.phone,
        ),
        lines=[
            OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
                discounted_unit_price=line.price_after_discount,
                channel_line_id=line.channel_line_id,
                title=line.title,
                variant=line.variant,
            )
            for line in order.lines
        ],
        currency=money.currency,
        discounts=_order_discounts(order),
        shipping=money.shipping,
        tax=money.tax,
        taxes_included=money.taxes_included,
        total=money.total,
    )


def _order_discounts(order: ChannelOrder) -> list[Discount]:
    """The store's discounts as order-level ones, unless the lines' prices already include them (Shopify
    allocates a code's discount to the lines): then they were taken off once and are not again."""
    money = order.money
    lines = sum((line.price_after_discount * line.quantity for line in order.lines), Decimal(0))
    off = sum((item.amount for item in money.discounts), Decimal(0))
    tax = Decimal(0) if money.taxes_included else money.tax
    if off and lines + money.shipping + tax == money.total:
        return []
    return [Discount(code=item.code, amount=item.amount) for item in money.discounts]


def _mapped(read: Callable[[], T]) -> T:
    """A vendor mapping's result; anything it raises on a payload it did not expect (a list where an
    object belongs, a time past year 9999) is a PayloadError: the delivery fails with the reason."""
    try:
        return read()
    except (PayloadError, UnsupportedTopic, ValidationError):
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError, OSError) as exc:
        raise PayloadError("body", f"cannot be read ({type(exc).__name__}: {exc})") from exc


def _stripe_shop(body: bytes, shop_ids: list[str]) -> str:
    """Of the shops sharing a Stripe account, the one the (verified) event's metadata `shop_id` names;
    the first when it names none of them (the payment then finds its order by `orderflow_order_id`)."""
    try:
        named = json.loads(body)["data"]["object"]["metadata"]["shop_id"]
    except (ValueError, KeyError, TypeError):
        return shop_ids[0]
    return named if named in shop_ids else shop_ids[0]


def _text(body: bytes) -> str:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidField("body", "is not UTF-8 text") from exc
    if "\x00" in text:
        raise InvalidField("body", "contains a NUL character")
    return text


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"[:500]
