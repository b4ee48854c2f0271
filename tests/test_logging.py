"""The one logging setup: stdlib records (temporalio, uvicorn) keep their structured `extra=` fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from core.logging import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_extra_fields_of_a_stdlib_record_are_in_the_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    # What temporalio's workflow.logger does: the message, plus the workflow's ids in `extra`.
    logging.getLogger("temporalio.workflow").warning(
        "restock sweep failed",
        extra={"temporal_workflow": {"workflow_id": "restock-dispatcher-orders"}, "order_id": "ord_1"},
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "restock sweep failed"
    assert line["order_id"] == "ord_1"
    assert line["temporal_workflow"] == {"workflow_id": "restock-dispatcher-orders"}
    assert line["level"] == "warning"


@pytest.mark.usefixtures("restore_logging")
def test_extra_fields_show_in_the_console_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=False)
    logging.getLogger("temporalio.activity").info("lock_stock retried", extra={"order_id": "ord_2"})
    assert "order_id=ord_2" in capsys.readouterr().err
