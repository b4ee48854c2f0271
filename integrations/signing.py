"""HMAC checks on the raw bytes of a delivery, in constant time, against every secret still valid."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from integrations.errors import SignatureError


def base64_hmac_sha256(secret: str, raw_body: bytes) -> str:
    """base64(HMAC-SHA256(secret, body)): the scheme Shopify and WooCommerce (and AfterShip) sign with."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_base64_hmac(raw_body: bytes, signature: str | None, secrets: Sequence[str], header: str) -> None:
    """Raise SignatureError unless `signature` is the base64 HMAC of the body under one of `secrets`
    (the current secret and, during a rotation's grace period, the previous one). Every secret is
    compared with hmac.compare_digest, so timing tells nothing about which bytes matched."""
    if not signature:
        raise SignatureError(f"missing {header} header")
    if not secrets:
        raise SignatureError("no webhook secret is set for this shop")
    given = signature.strip().encode()
    matched = False
    for secret in secrets:
        # No early exit: the work done does not depend on which secret (if any) matched.
        matched |= hmac.compare_digest(base64_hmac_sha256(secret, raw_body).encode(), given)
    if not matched:
        raise SignatureError(f"{header} does not match the body signed with the shop's secret")
