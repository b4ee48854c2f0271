"""The README's status tables are the mapping code's: a change to one without the other fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.models import Channel
from integrations.channels.registry import CHANNELS, status_table_markdown

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("channel", list(CHANNELS))
def test_readme_table_is_the_mapping(channel: Channel) -> None:
    assert status_table_markdown(channel) in (ROOT / "README.md").read_text(), (
        f"README.md's {channel.value} table drifted from its mapping.py; paste status_table_markdown() output"
    )
