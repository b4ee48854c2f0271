"""Stripe events -> domain.channel_events payment events, as pure functions.

Event and object fields from docs.stripe.com/api/events/object, /api/payment_intents/object and
/api/charges/object: amounts are integers in the currency's minor units (JPY whole yen), currency codes
are lowercase. Which order a payment is for comes from the PaymentIntent's metadata (decided here,
documented in the README): `orderflow_order_id` names the orderflow order; otherwise `shop_id` plus
`channel_order_id` name the store order, and WooCommerce's Stripe gateway's `order_id` counts as the
channel order id (UNSURE: the gateway's metadata keys are not in its public docs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.channel_events import (
    ChargeRefunded,
    PaymentFailed,
    PaymentReference,
    PaymentSucceeded,
    from_minor_units,
)
from domain.codes import CURRENCY_EXPONENTS
from integrations.errors import PayloadError, UnsupportedTopic
from integrations.payloads import build, load_json, need, text

EVENT_TYPES = frozenset({"payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"})


def reference(metadata: dict[str, Any] | None, where: str) -> PaymentReference:
    """The order a payment names through its metadata (see the module docstring for the keys)."""
    metadata = metadata or {}
    return build(
        PaymentReference,
        f"{where}metadata.",
        order_id=text(metadata.get("orderflow_order_id")) or None,
        shop_id=text(metadata.get("shop_id")) or None,
        channel_order_id=text(metadata.get("channel_order_id") or metadata.get("order_id")) or None,
    )


def minor_amount(value: Any, currency: str, field: str) -> Decimal:
    """A minor-unit integer as an exact Decimal by the currency's ISO 4217 exponent."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(field, "must be a whole number of minor units")
    return from_minor_units(value, currency)


def map_event(raw_body: bytes) -> PaymentSucceeded | PaymentFailed | ChargeRefunded:
    """The payment event a verified Stripe delivery stands for; other event types raise UnsupportedTopic."""
    event = load_json(raw_body)
    event_type = text(need(event, "type"))
    if event_type not in EVENT_TYPES:
        raise UnsupportedTopic(f"Stripe event {event_type!r} is not one orderflow acts on")
    event_id = text(need(event, "id"))
    created = need(event, "created")
    if not isinstance(created, int):
        raise PayloadError("created", "must be a Unix time")
    occurred_at = datetime.fromtimestamp(created, UTC)
    obj = need(need(event, "data"), "object", "data.")
    where = "data.object."
    currency = text(need(obj, "currency", where)).upper()
    if currency not in CURRENCY_EXPONENTS:
        raise PayloadError(
            f"{where}currency", f"{currency!r} is not an ISO 4217 currency orderflow prices in"
        )
    if event_type == "payment_intent.succeeded":
        received = obj.get("amount_received", obj.get("amount"))
        return build(
            PaymentSucceeded,
            where,
            event_id=event_id,
            payment_intent_id=text(need(obj, "id", where)),
            reference=reference(obj.get("metadata"), where),
            amount=minor_amount(received, currency, f"{where}amount_received"),
            currency=currency,
            occurred_at=occurred_at,
        )
    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        return build(
            PaymentFailed,
            where,
            event_id=event_id,
            payment_intent_id=text(need(obj, "id", where)),
            reference=reference(obj.get("metadata"), where),
            code=text(error.get("decline_code") or error.get("code"))[:64],
            message=text(error.get("message"))[:500],
            occurred_at=occurred_at,
        )
    refunds = (obj.get("refunds") or {}).get("data") or []  # only present when expanded (newer API versions)
    metadata = obj.get("metadata") or {}
    return build(
        ChargeRefunded,
        where,
        event_id=event_id,
        charge_id=text(need(obj, "id", where)),
        payment_intent_id=text(obj.get("payment_intent")) or None,
        reference=reference(metadata, where) if _names_order(metadata) else None,
        refunded_total=minor_amount(need(obj, "amount_refunded", where), currency, f"{where}amount_refunded"),
        currency=currency,
        refund_ids=tuple(text(item.get("id")) for item in refunds if item.get("id")),
        orderflow_refund_ids=tuple(
            text((item.get("metadata") or {}).get("orderflow_refund_id"))
            for item in refunds
            if (item.get("metadata") or {}).get("orderflow_refund_id")
        ),
        occurred_at=occurred_at,
    )


def _names_order(metadata: dict[str, Any]) -> bool:
    return any(metadata.get(key) for key in ("orderflow_order_id", "channel_order_id", "order_id"))
