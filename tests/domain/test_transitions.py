"""The state machine table: every refusal has a reason, and the docs draw exactly this table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from domain.models import OrderStatus
from domain.transitions import TRANSITIONS, Command, Refused, mermaid_diagram, next_status, refusal

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("command", list(Command))
@pytest.mark.parametrize("status", list(OrderStatus))
def test_every_status_and_command_either_moves_or_says_why_not(status: OrderStatus, command: Command) -> None:
    reason = refusal(status, command)
    if status in TRANSITIONS[command]:
        assert reason is None
        assert next_status(status, command) == TRANSITIONS[command][status]
    else:
        assert reason
        assert reason[0].islower()
        assert len(reason) > 10
        with pytest.raises(Refused, match=re.escape(reason)):
            next_status(status, command)


def test_closed_orders_accept_nothing() -> None:
    for status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        assert all(refusal(status, command) for command in Command)


def test_cancel_after_shipment_points_to_a_return() -> None:
    for status in (OrderStatus.SHIPPED, OrderStatus.IN_TRANSIT, OrderStatus.DELIVERED):
        reason = refusal(status, Command.CANCEL)
        assert reason is not None
        assert "return" in reason


@pytest.mark.parametrize("doc", ["docs/ARCHITECTURE.md", "README.md"])
def test_the_documented_diagram_is_the_table(doc: str) -> None:
    text = (ROOT / doc).read_text()
    blocks = re.findall(r"```mermaid\n(stateDiagram-v2.*?)\n```", text, re.S)
    assert blocks, f"{doc} has no state diagram"
    assert blocks[0].strip() == mermaid_diagram().strip(), (
        f"{doc} drifted from domain/transitions.py; paste mermaid_diagram() output"
    )
