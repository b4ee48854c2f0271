"""WooCommerce webhook authenticity: X-WC-Webhook-Signature over the raw body, and the unsigned ping.

Format from WooCommerce's source (includes/class-wc-webhook.php, generate_signature and
deliver_ping): the header is base64(HMAC-SHA256(webhook secret, raw body)). When a webhook is
created WooCommerce posts an unsigned form body `webhook_id=<n>` that must get 200 and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from integrations.channels.base import Delivery, header
from integrations.errors import PayloadError
from integrations.signing import verify_base64_hmac

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
_PING = re.compile(rb"webhook_id=[0-9]{1,20}")


def is_ping(raw_body: bytes, headers: Mapping[str, str]) -> bool:
    """The creation ping: an unsigned `webhook_id=N` form body. Anything else must be signed."""
    return header(headers, SIGNATURE_HEADER) is None and _PING.fullmatch(raw_body.strip()) is not None


def verify(raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    """Raise SignatureError unless the body is the ping or was signed with one of the webhook secrets."""
    if is_ping(raw_body, headers):
        return
    verify_base64_hmac(raw_body, header(headers, SIGNATURE_HEADER), secrets, SIGNATURE_HEADER)


def delivery(headers: Mapping[str, str], raw_body: bytes = b"") -> Delivery:
    """Topic (order.created ...) and delivery id of a verified delivery, or the ping."""
    if is_ping(raw_body, headers):
        webhook_id = raw_body.strip().split(b"=", 1)[1].decode()
        return Delivery(topic="ping", delivery_id=f"ping:{webhook_id}", ping=True)
    topic = header(headers, "X-WC-Webhook-Topic")
    delivery_id = header(headers, "X-WC-Webhook-Delivery-ID")
    if not topic:
        raise PayloadError("X-WC-Webhook-Topic", "missing header")
    if not delivery_id:
        raise PayloadError("X-WC-Webhook-Delivery-ID", "missing header")
    return Delivery(topic=topic, delivery_id=delivery_id, event_id=header(headers, "X-WC-Webhook-ID"))
