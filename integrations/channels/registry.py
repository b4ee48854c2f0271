"""Every store channel orderflow connects, by name: a new channel is a folder plus one line here."""

from __future__ import annotations

from domain.models import Channel
from integrations.channels.base import ChannelAdapter
from integrations.channels.shopify import mapping as shopify_mapping
from integrations.channels.shopify import signature as shopify_signature
from integrations.channels.woocommerce import mapping as woocommerce_mapping
from integrations.channels.woocommerce import signature as woocommerce_signature

CHANNELS: dict[Channel, ChannelAdapter] = {
    Channel.SHOPIFY: ChannelAdapter(
        shopify_signature.verify,
        shopify_signature.delivery,
        shopify_mapping.map_event,
        shopify_mapping.TOPICS,
        shopify_mapping.status_table(),
    ),
    Channel.WOOCOMMERCE: ChannelAdapter(
        woocommerce_signature.verify,
        woocommerce_signature.delivery,
        woocommerce_mapping.map_event,
        woocommerce_mapping.TOPICS,
        woocommerce_mapping.status_table(),
    ),
}


def adapter(channel: Channel) -> ChannelAdapter:
    """The adapter for `channel`; a KeyError names a channel that has no webhook adapter yet."""
    try:
        return CHANNELS[channel]
    except KeyError:
        raise KeyError(f"no webhook adapter for channel {channel.value!r}") from None


def status_table_markdown(channel: Channel) -> str:
    """The README's mapping table for `channel`, from its mapping code (a test keeps README in step)."""
    rows = CHANNELS[channel].status_table
    lines = ["| status on the store | orderflow status | what orderflow does |", "|---|---|---|"]
    lines += [f"| `{name}` | {status} | {effect} |" for name, status, effect in rows]
    return "\n".join(lines)
