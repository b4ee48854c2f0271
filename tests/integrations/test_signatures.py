"""Webhook signatures are checked on the raw bytes: right, wrong, missing, altered, stale, rotated."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from integrations.channels.registry import CHANNELS
from integrations.channels.shopify import signature as shopify
from integrations.channels.woocommerce import signature as woocommerce
from integrations.errors import SignatureError
from integrations.payments.stripe import signature as stripe_signature
from integrations.signing import base64_hmac_sha256

PAYLOADS = Path(__file__).parent / "payloads"
BODY = (PAYLOADS / "shopify" / "orders_create.json").read_bytes()
CURRENT, PREVIOUS = "shpss_current_secret", "shpss_previous_secret"

Verify = Callable[[bytes, Mapping[str, str], Sequence[str]], None]
BASE64_SCHEMES = [
    pytest.param(shopify.verify, shopify.SIGNATURE_HEADER, id="shopify"),
    pytest.param(woocommerce.verify, woocommerce.SIGNATURE_HEADER, id="woocommerce"),
]


@pytest.mark.parametrize(("verify", "header"), BASE64_SCHEMES)
def test_body_signed_with_the_current_secret_passes(verify: Verify, header: str) -> None:
    verify(BODY, {header: base64_hmac_sha256(CURRENT, BODY)}, [CURRENT])


@pytest.mark.parametrize(("verify", "header"), BASE64_SCHEMES)
def test_previous_secret_still_passes_during_rotation(verify: Verify, header: str) -> None:
    verify(BODY, {header.lower(): base64_hmac_sha256(PREVIOUS, BODY)}, [CURRENT, PREVIOUS])


@pytest.mark.parametrize(("verify", "header"), BASE64_SCHEMES)
@pytest.mark.parametrize(
    ("headers", "secrets", "says"),
    [
        pytest.param(
            lambda h: {h: base64_hmac_sha256("someone-else", BODY)}, [CURRENT], "does not match", id="wrong"
        ),
        pytest.param(lambda h: {}, [CURRENT], "missing", id="missing"),
        pytest.param(lambda h: {h: ""}, [CURRENT], "missing", id="empty"),
        pytest.param(
            lambda h: {h: base64_hmac_sha256(PREVIOUS, BODY)}, [CURRENT], "does not", id="rotated-out"
        ),
        pytest.param(
            lambda h: {h: base64_hmac_sha256(CURRENT, BODY)}, [], "no webhook secret", id="no-secret"
        ),
    ],
)
def test_refused(
    verify: Verify, header: str, headers: Callable[[str], dict[str, str]], secrets: list[str], says: str
) -> None:
    with pytest.raises(SignatureError, match=says) as refused:
        verify(BODY, headers(header), secrets)
    assert CURRENT not in str(refused.value)


def test_body_altered_after_signing_is_refused() -> None:
    signature = base64_hmac_sha256(CURRENT, BODY)
    altered = BODY.replace(b'"total_price": "429.94"', b'"total_price": "0.01"')
    assert altered != BODY
    for verify, header in (
        (shopify.verify, shopify.SIGNATURE_HEADER),
        (woocommerce.verify, woocommerce.SIGNATURE_HEADER),
    ):
        with pytest.raises(SignatureError):
            verify(altered, {header: signature}, [CURRENT])


def test_woocommerce_ping_is_recognised_and_needs_no_signature() -> None:
    woocommerce.verify(b"webhook_id=15", {"Content-Type": "application/x-www-form-urlencoded"}, [CURRENT])
    delivery = woocommerce.delivery({}, b"webhook_id=15")
    assert delivery.ping
    assert delivery.delivery_id == "ping:15"


@pytest.mark.parametrize("body", [b"webhook_id=15&status=completed", b'{"webhook_id": 15}', b"webhook_id="])
def test_anything_else_unsigned_is_not_a_ping(body: bytes) -> None:
    assert not woocommerce.is_ping(body, {})
    with pytest.raises(SignatureError, match="missing"):
        woocommerce.verify(body, {}, [CURRENT])


def test_delivery_headers_name_topic_and_dedupe_id() -> None:
    shopify_delivery = CHANNELS[next(iter(CHANNELS))].delivery(
        {
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Webhook-Id": "b54557e4",
            "X-Shopify-Event-Id": "98880550",
        }
    )
    assert (shopify_delivery.topic, shopify_delivery.delivery_id, shopify_delivery.event_id) == (
        "orders/paid",
        "b54557e4",
        "98880550",
    )
    woo = woocommerce.delivery(
        {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Delivery-ID": "a1b2"}, b"{}"
    )
    assert (woo.topic, woo.delivery_id, woo.ping) == ("order.updated", "a1b2", False)


STRIPE_SECRET, STRIPE_OLD = "whsec_current", "whsec_previous"
EVENT = (PAYLOADS / "stripe" / "payment_intent_succeeded.json").read_bytes()


def test_stripe_signature_from_the_current_or_previous_secret_passes() -> None:
    stripe_signature.verify(
        EVENT, {"Stripe-Signature": stripe_signature.sign(EVENT, STRIPE_SECRET)}, [STRIPE_SECRET]
    )
    stripe_signature.verify(
        EVENT, {"stripe-signature": stripe_signature.sign(EVENT, STRIPE_OLD)}, [STRIPE_SECRET, STRIPE_OLD]
    )


@pytest.mark.parametrize(
    ("make_header", "says"),
    [
        pytest.param(lambda: stripe_signature.sign(EVENT, "whsec_other"), "No signatures found", id="wrong"),
        pytest.param(
            lambda: stripe_signature.sign(EVENT + b" ", STRIPE_SECRET), "No signatures found", id="altered"
        ),
        pytest.param(
            lambda: stripe_signature.sign(EVENT, STRIPE_SECRET, int(time.time()) - 301),
            "tolerance",
            id="stale",
        ),
        pytest.param(
            lambda: stripe_signature.sign(EVENT, STRIPE_SECRET, int(time.time()) + 3600),
            "future",
            id="future",
        ),
        pytest.param(lambda: "v1=abc", "no timestamp", id="no-timestamp"),
    ],
)
def test_stripe_refuses(make_header: Callable[[], str], says: str) -> None:
    with pytest.raises(SignatureError, match=says) as refused:
        stripe_signature.verify(EVENT, {"Stripe-Signature": make_header()}, [STRIPE_SECRET])
    assert STRIPE_SECRET not in str(refused.value)


def test_stripe_missing_header_is_refused() -> None:
    with pytest.raises(SignatureError, match="missing Stripe-Signature"):
        stripe_signature.verify(EVENT, {}, [STRIPE_SECRET])


def test_stripe_within_clock_skew_passes() -> None:
    header = stripe_signature.sign(EVENT, STRIPE_SECRET, int(time.time()) + 30)
    stripe_signature.verify(EVENT, {"Stripe-Signature": header}, [STRIPE_SECRET])
