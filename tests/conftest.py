"""Shared fixtures: real SQLite and PostgreSQL databases, real Temporal servers, an in-process worker."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from services.db import create_schema, make_engine
from tests.support.databases import drop_database, empty_database, session_database
from tests.support.smtp import Inbox, SmtpServer, serving
from tests.support.temporal import temporal_binary
from workflows import search_attributes

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
@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    url = session_database()
    yield url
    if url:
        drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any, postgres_url: str | None) -> str:
    """Each database test runs twice: on a SQLite file and on PostgreSQL (skipped when absent)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/orderflow.db"
    if postgres_url is None:
        pytest.skip("PostgreSQL is not reachable (set ORDERFLOW_REQUIRE_POSTGRES=1 to fail instead)")
    return postgres_url


@pytest.fixture
def fresh_url(db_url: str) -> Iterator[str]:
    """An empty database of the test's own, for migrations run from nothing (no schema in it)."""
    with empty_database(db_url, "fresh") as url:
        yield url


@pytest.fixture
def fresh(fresh_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


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


# -------------------------------------------------------------- mail
@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that keeps what it receives."""
    inbox = Inbox()
    with serving(inbox) as port:
        yield SmtpServer(inbox=inbox, port=port)
