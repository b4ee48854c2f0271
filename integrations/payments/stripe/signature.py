"""Stripe webhook authenticity with the `stripe` package's own check, plus a limit on future timestamps.

Format: docs.stripe.com/webhooks#verify-events: `Stripe-Signature: t=<unix>,v1=<hex>`, HMAC-SHA256 of
f"{t}.{raw body}" with the endpoint's signing secret (whsec_...), 300 s tolerance. The package refuses
only old timestamps; a timestamp far in the future (a replay prepared ahead, or a badly wrong clock)
is refused here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import stripe

from integrations.channels.base import header
from integrations.errors import SignatureError

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300
FUTURE_LIMIT_SECONDS = 300


def signed_at(signature: str) -> int:
    """The `t=` timestamp of a Stripe-Signature header."""
    for part in signature.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            return int(value)
    raise SignatureError(f"{SIGNATURE_HEADER} has no timestamp")


def verify(
    raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str], *, now: float | None = None
) -> None:
    """Raise SignatureError unless one of the endpoint's secrets (current, or previous during a
    rotation) signed this body within the tolerance."""
    signature = header(headers, SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not secrets:
        raise SignatureError("no Stripe signing secret is set for this account")
    current = time.time() if now is None else now
    if signed_at(signature) > current + FUTURE_LIMIT_SECONDS:
        raise SignatureError(
            f"{SIGNATURE_HEADER} timestamp is more than {FUTURE_LIMIT_SECONDS} s in the future"
        )
    payload = raw_body.decode("utf-8", errors="replace")
    reasons = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            reasons.append(str(error.user_message or error))
        else:
            return
    # Stripe's messages name the problem (no matching signature, outside the tolerance), never the secret.
    raise SignatureError(f"{SIGNATURE_HEADER} refused: {reasons[-1]}")


def sign(raw_body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `raw_body`, as Stripe would send it (for tests and the simulator)."""
    header_value: str = stripe.WebhookSignature.generate_signature_header(
        raw_body.decode(), secret, timestamp=timestamp
    )
    return header_value
