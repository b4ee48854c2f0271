"""Shops: a seller's stores on a channel, what each is called, where it lives and which secrets it needs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

# Shop ids are defined beside the orders that name them (domain.models); re-exported for shops' callers.
from domain.models import SHOP_ID_MAX_LENGTH as SHOP_ID_MAX_LENGTH
from domain.models import SHOP_ID_PATTERN as SHOP_ID_PATTERN
from domain.models import Channel, CurrencyCode, Language, Model
from domain.models import ShopId as ShopId
from domain.models import default_shop_id as default_shop_id

SHOP_URL_MAX_LENGTH = 255
SECRET_MAX_LENGTH = 1000  # the longest credential accepted; its ciphertext goes in a TEXT column
STOCK_BUFFER_MAX = 1_000_000
STRIPE_ACCOUNT_PATTERN = r"^acct_[A-Za-z0-9]{1,100}$"

# The secrets each channel's shop may hold. Stripe is the shop's payment account, not a shop of its
# own: any shop may carry a Stripe secret key and webhook secret next to its channel's credentials.
STRIPE_SECRETS = ("stripe_secret_key", "stripe_webhook_secret")
CHANNEL_SECRETS: dict[Channel, tuple[str, ...]] = {
    Channel.SHOPIFY: ("client_secret", "access_token", *STRIPE_SECRETS),
    Channel.WOOCOMMERCE: ("consumer_key", "consumer_secret", "webhook_secret", *STRIPE_SECRETS),
}
# The secret that signs a channel's webhooks; rotating it keeps the previous one valid for a while.
WEBHOOK_SECRET: dict[Channel, str] = {
    Channel.SHOPIFY: "client_secret",
    Channel.WOOCOMMERCE: "webhook_secret",
}
WEBHOOK_SECRETS = frozenset({*WEBHOOK_SECRET.values(), "stripe_webhook_secret"})
SECRET_NAMES = tuple(dict.fromkeys(name for names in CHANNEL_SECRETS.values() for name in names))

_MYSHOPIFY = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com$")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Secret = Annotated[SecretStr, Field(min_length=1, max_length=SECRET_MAX_LENGTH)]


def shop_url(value: str, channel: Channel) -> str:
    """The shop's base URL: https (http only on this machine, for local test servers), no query or
    fragment; a Shopify shop is its myshop.myshopify.com domain, given bare or as a URL."""
    text = value.strip()
    if _MYSHOPIFY.match(text.lower()):
        text = f"https://{text.lower()}"
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    local = host in _LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise ValueError("give an https:// URL (http:// only for 127.0.0.1 or localhost)")
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("give the shop's base URL: https://host[/path], without user, query or fragment")
    if channel == Channel.SHOPIFY and not (local or _MYSHOPIFY.match(host)):
        raise ValueError("a Shopify shop is its myshop.myshopify.com domain (the Admin API's host)")
    if len(text) > SHOP_URL_MAX_LENGTH:
        raise ValueError(f"at most {SHOP_URL_MAX_LENGTH} characters (got {len(text)})")
    return text.rstrip("/")


class Credentials(Model):
    """Secrets sent with PUT /shops/{shop_id}: a name left out keeps its stored value, null removes it."""

    client_secret: Secret | None = Field(None, description="Shopify: the app's client secret (webhook HMAC)")
    access_token: Secret | None = Field(None, description="Shopify: Admin API access token")
    consumer_key: Secret | None = Field(None, description="WooCommerce: REST API consumer key (ck_...)")
    consumer_secret: Secret | None = Field(None, description="WooCommerce: REST API consumer secret (cs_...)")
    webhook_secret: Secret | None = Field(None, description="WooCommerce: the webhooks' secret")
    stripe_secret_key: Secret | None = Field(None, description="Stripe: secret key (sk_...) of the account")
    stripe_webhook_secret: Secret | None = Field(
        None, description="Stripe: webhook endpoint secret (whsec_...)"
    )

    @field_validator("*")
    @classmethod
    def _pasted_alone(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value() if value is not None else ""
        if text != text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise ValueError("has spaces, line breaks or control characters in it: paste the value alone")
        return value

    def changes(self) -> dict[str, str | None]:
        """The names sent: their new value, or None to remove it."""
        out: dict[str, str | None] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            out[name] = value.get_secret_value() if value is not None else None
        return out


class ShopIn(Model):
    """PUT /shops/{shop_id}: create or describe a shop."""

    channel: Channel
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    url: str = Field(description="https base URL, or for Shopify the myshop.myshopify.com domain")
    currency: CurrencyCode
    language: Language = "en"
    stripe_account_id: Annotated[str, StringConstraints(pattern=STRIPE_ACCOUNT_PATTERN)] | None = None
    authorized_counts_as_paid: bool = Field(
        False, description="Shopify: an authorized (not yet captured) payment counts as paid"
    )
    stock_buffer: Annotated[int, Field(ge=0, le=STOCK_BUFFER_MAX)] = Field(
        0, description="units listed on the shop fewer than are sellable, so it stops selling first"
    )
    credentials: Credentials = Field(default_factory=Credentials)

    @field_validator("url", mode="before")
    @classmethod
    def _url_is_text(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > 2 * SHOP_URL_MAX_LENGTH:
            raise ValueError(f"at most {SHOP_URL_MAX_LENGTH} characters (got {len(value)})")
        return value

    @model_validator(mode="after")
    def _fits_the_channel(self) -> ShopIn:
        if self.channel not in CHANNEL_SECRETS:
            supported = ", ".join(sorted(CHANNEL_SECRETS))
            raise ValueError(f"channel: shops can be connected for {supported} (got {self.channel.value})")
        try:
            object.__setattr__(self, "url", shop_url(self.url, self.channel))
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None
        allowed = CHANNEL_SECRETS[self.channel]
        for name in sorted(self.credentials.model_fields_set - set(allowed)):
            raise ValueError(
                f"credentials.{name}: a {self.channel.value} shop has no {name}; "
                f"it takes {', '.join(allowed)}"
            )
        return self


class SecretState(Model):
    """A secret as the API shows it: whether it is set and when it last changed, never its value."""

    set: bool
    changed_at: datetime | None = None
    previous_valid_until: datetime | None = Field(
        None, description="a rotated webhook secret: the previous one is still accepted until then"
    )


class ShopView(Model):
    shop_id: str
    channel: Channel
    name: str
    url: str | None
    currency: str | None
    language: str | None
    stripe_account_id: str | None
    authorized_counts_as_paid: bool
    stock_buffer: int
    credentials: dict[str, SecretState]
    healthy: bool
    last_error: str | None
    last_error_at: datetime | None
    # Calls (fulfilments, cancellations, stock pushes) it refused since it last became unhealthy; the
    # refused fulfilments and cancellations go out again by themselves once it is fixed.
    refused_calls: int = 0
    created_at: datetime
    updated_at: datetime
