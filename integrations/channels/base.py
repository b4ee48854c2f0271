"""The small interface every store channel implements, so webhook routes and activities stay channel-blind.

A channel is a folder here (signature.py to verify and read headers, mapping.py from payload to
domain.channel_events, client.py for outbound calls) plus one line in registry.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.channel_events import ChannelEvent


@dataclass(frozen=True)
class Delivery:
    """What a verified delivery's headers say: its topic and the id that makes a redelivery a duplicate."""

    topic: str
    delivery_id: str
    event_id: str | None = None
    ping: bool = False  # WooCommerce's unsigned test delivery: answer 200, change nothing


@dataclass(frozen=True)
class ShopPolicy:
    """Per-shop choices that change what a payload means."""

    shop_id: str
    authorized_counts_as_paid: bool = False  # Shopify: a payment authorised (not yet captured) pays


class Verify(Protocol):
    def __call__(self, raw_body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> None: ...


class ReadDelivery(Protocol):
    def __call__(self, headers: Mapping[str, str], raw_body: bytes = b"") -> Delivery: ...


class MapEvent(Protocol):
    def __call__(self, topic: str, raw_body: bytes, shop: ShopPolicy) -> ChannelEvent: ...


@dataclass(frozen=True)
class ChannelAdapter:
    """One channel's inbound side: verify the raw bytes, read the headers, map the payload.
    `status_table` gives the README's status -> what orderflow does rows, straight from the mapping."""

    verify: Verify
    delivery: ReadDelivery
    map_event: MapEvent
    topics: frozenset[str]
    status_table: tuple[tuple[str, str, str], ...]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name whatever its case (HTTP header names are case-insensitive)."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


@dataclass(frozen=True)
class ParcelNotice:
    """What to tell a store when a parcel ships: one fulfilment per parcel, keyed by its tracking number.
    `lines` holds (channel line id, quantity); empty means everything still to fulfil."""

    tracking_company: str
    tracking_number: str
    tracking_url: str = ""
    lines: tuple[tuple[str, int], ...] = ()
    notify_customer: bool = True


@dataclass(frozen=True)
class Outcome:
    """What an idempotent outbound call did: `created` False when it was already done (a retry)."""

    id: str
    created: bool
