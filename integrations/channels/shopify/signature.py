"""Shopify webhook authenticity: X-Shopify-Hmac-Sha256 over the raw body, and the delivery's headers.

Format: shopify.dev/docs/apps/build/webhooks/subscribe/https ("Verify the webhook"): the header is the
base64-encoded HMAC-SHA256 digest of the raw request body, keyed with the app's client secret.
The dedupe id is UNSURE (the docs name both X-Shopify-Webhook-Id and X-Shopify-Event-Id): both are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from integrations.channels.base import Delivery, header
from integrations.errors import PayloadError
from integrations.signing import verify_base64_hmac

SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"


def verify(raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raise SignatureError unless the body was signed with one of the shop's client secrets."""
    verify_base64_hmac(raw_body, header(headers, SIGNATURE_HEADER), secrets, SIGNATURE_HEADER)


def delivery(headers: Mapping[str, str], raw_body: bytes = b"") -> Delivery:
    """Topic and ids of a verified delivery; a missing topic or webhook id names the header."""
    topic = header(headers, "X-Shopify-Topic")
    webhook_id = header(headers, "X-Shopify-Webhook-Id") or header(headers, "X-Shopify-Event-Id")
    if not topic:
        raise PayloadError("X-Shopify-Topic", "missing header")
    if not webhook_id:
        raise PayloadError("X-Shopify-Webhook-Id", "missing header")
    return Delivery(
        topic=topic,
        delivery_id=webhook_id,
        event_id=header(headers, "X-Shopify-Event-Id"),
        ping=False,
    )
