"""Settings: every knob of orderflow, read once from ORDERS_* environment variables."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.allocation import parse_rules
from domain.models import CurrencyCode
from domain.policy import MAX_PAYMENT_HOLD, MIN_PAYMENT_HOLD, OrderPolicy
from domain.priority import CAMPAIGN_TAGS, HIGH_VALUE, VERY_HIGH_VALUE, PriorityRules

_SHORT_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> Any:
    """Accept '5d', '48h', '30m', '90s' besides pydantic's ISO 8601 ('P5D') and plain seconds."""
    if isinstance(value, str):
        match = _SHORT_DURATION.match(value)
        if match:
            try:
                return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])
            except OverflowError:
                raise ValueError(f"duration {value!r} is too long") from None
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_rates(value: Any) -> Any:
    """'{\"EUR\": \"1.08\", \"JPY\": 0.0067}' -> Decimals, never through float."""
    if isinstance(value, str):
        try:
            return json.loads(value or "{}", parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            raise ValueError('exchange rates must be JSON: {"EUR": "1.08", "JPY": "0.0067"}') from None
    return value


def parse_tags(value: Any) -> Any:
    """'flash-sale, Launch' -> ('flash-sale', 'launch')."""
    if isinstance(value, str):
        value = value.split(",")
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(dict.fromkeys(str(tag).strip().lower() for tag in value if str(tag).strip()))
    return value


Rate = Annotated[Decimal, Field(gt=0)]
Rates = Annotated[dict[CurrencyCode, Rate], NoDecode, BeforeValidator(parse_rates)]
Tags = Annotated[tuple[str, ...], NoDecode, BeforeValidator(parse_tags)]


def parse_keys(value: Any) -> Any:
    """'key1, key2' -> ('key1', 'key2'): older secret keys, newest first."""
    if isinstance(value, str):
        return tuple(key.strip() for key in value.split(",") if key.strip())
    return value


SecretKeys = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(parse_keys)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    task_queue: str = "orders"
    temporal_ui_url: str = "http://localhost:8233"
    database_url: str = "sqlite:///.data/orderflow.db"

    payment_hold: Duration = Field(default=timedelta(days=5))
    ship_within: Duration = Field(default=timedelta(hours=48))
    confirm_window: Duration = Field(default=timedelta(days=7))
    restock_check_every: Duration = Field(default=timedelta(minutes=30))
    restock_check_max: Duration = Field(default=timedelta(hours=12))
    # A step failing for a reason a retry may fix keeps retrying this long, then goes to exception.
    step_patience: Duration = Field(default=timedelta(hours=24))
    # An order's workflow continues as new once its history has this many events.
    history_limit: int = Field(default=10_000, ge=100, le=40_000)
    payment_hold_rule: Literal["stock_pressure", "fixed"] = "stock_pressure"
    payment_hold_scarce: Duration = Field(default=timedelta(days=3))
    payment_hold_ample: Duration = Field(default=timedelta(days=7))
    reserve_unpaid_stock: bool = True
    allocation_rules: str = "same_region,capacity,cost,days"
    # Priority: value thresholds in one reporting currency; other currencies are converted with
    # fx_rates (1 unit = x reporting-currency units). An order in a currency without a rate gets no
    # points for its value (a warning is logged and shown in its priority reasons).
    reporting_currency: CurrencyCode = "USD"
    fx_rates: Rates = Field(default_factory=dict)
    priority_high_value: Decimal = Field(default=HIGH_VALUE, gt=0)
    priority_very_high_value: Decimal = Field(default=VERY_HIGH_VALUE, gt=0)
    campaign_tags: Tags = CAMPAIGN_TAGS

    bootstrap_api_key: SecretStr | None = None
    # Fernet key that encrypts shop credentials at rest (services/secrets.py); required by the API and
    # the worker. Older keys still decrypt (rotation); every start re-encrypts with the current one.
    secret_key: SecretStr | None = None
    secret_keys_previous: SecretKeys = ()
    # A rotated webhook secret stays valid this long, so deliveries signed with the old one still pass.
    webhook_secret_grace: Duration = Field(default=timedelta(hours=24))
    # A webhook is answered within this even when applying it takes longer (stores give up after a few
    # seconds and redeliver): the delivery is stored first, and its applying goes on after the answer.
    webhook_answer_within: Duration = Field(default=timedelta(seconds=2))
    # Where refunds are sent (Stripe's API; tests point it at a fake on 127.0.0.1). None: api.stripe.com.
    stripe_api_base: str | None = None

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    email_sender: str = "orders@orderflow.local"
    shop_name: str = "orderflow demo shop"
    pay_url_template: str = "https://shop.example/pay/{order_id}"
    # Outbox mail still unsent this long after it was written is given up (the mail dispatcher).
    mail_give_up_after: Duration = Field(default=timedelta(days=3))

    # host:port for Prometheus (/metrics); unset: no metrics endpoint. One per process.
    worker_metrics_address: str | None = None
    api_metrics_address: str | None = None
    shutdown_grace: Duration = Field(default=timedelta(seconds=30))

    # How long the API waits for an order's workflow (a query, an update, a placement) before it
    # answers from the read model or with 503; and the Retry-After it sends with a 503.
    workflow_answer_timeout: Duration = Field(default=timedelta(seconds=5))
    busy_retry_after: Duration = Field(default=timedelta(seconds=5))

    log_json: bool | None = None
    log_level: str = "INFO"

    @field_validator("allocation_rules")
    @classmethod
    def _known_rules(cls, value: str) -> str:
        parse_rules(value)  # raises naming the unknown rule
        return value

    @field_validator("payment_hold", "payment_hold_scarce", "payment_hold_ample")
    @classmethod
    def _hold_within_platform_rules(cls, value: timedelta) -> timedelta:
        if not MIN_PAYMENT_HOLD <= value <= MAX_PAYMENT_HOLD:
            raise ValueError(
                "a payment hold must be between 3 and 7 days "
                f"(got {value}); unpaid orders are auto-cancelled after this hold"
            )
        return value

    @field_validator(
        "ship_within",
        "confirm_window",
        "restock_check_every",
        "restock_check_max",
        "step_patience",
        "workflow_answer_timeout",
        "busy_retry_after",
        "mail_give_up_after",
        "webhook_secret_grace",
        "webhook_answer_within",
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration")
        return value

    def order_policy(self) -> OrderPolicy:
        """The timing policy copied into each new order."""
        return OrderPolicy(
            payment_hold=self.payment_hold,
            hold_rule=self.payment_hold_rule,
            hold_when_scarce=self.payment_hold_scarce,
            hold_when_ample=self.payment_hold_ample,
            reserve_stock=self.reserve_unpaid_stock,
            ship_within=self.ship_within,
            confirm_window=self.confirm_window,
            restock_check_every=self.restock_check_every,
            restock_check_max=max(self.restock_check_max, self.restock_check_every),
            step_patience=self.step_patience,
            history_limit=self.history_limit,
            priority=self.priority_rules(),
        )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.priority_very_high_value < self.priority_high_value:
            raise ValueError(
                f"ORDERS_PRIORITY_VERY_HIGH_VALUE ({self.priority_very_high_value}) must not be below "
                f"ORDERS_PRIORITY_HIGH_VALUE ({self.priority_high_value})"
            )
        return self

    def priority_rules(self) -> PriorityRules:
        return PriorityRules(
            reporting_currency=self.reporting_currency,
            fx_rates=self.fx_rates,
            high_value=self.priority_high_value,
            very_high_value=self.priority_very_high_value,
            campaign_tags=self.campaign_tags,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
