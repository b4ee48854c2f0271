"""Throwaway PostgreSQL databases for tests, with a SQLite file when PostgreSQL is not there."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("ORDERFLOW_REQUIRE_POSTGRES") == "1"


def _url_of(name: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def create_database(name: str, *, replace: bool = False) -> str | None:
    """Create database `name` and return its URL; None when PostgreSQL is not there (a failure
    instead when ORDERFLOW_REQUIRE_POSTGRES=1, as in CI)."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if replace:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (ORDERFLOW_REQUIRE_POSTGRES=1) but: {exc}")
        return None
    return _url_of(name)


def drop_database(url: str) -> None:
    """Drop the database at `url`, closing whatever connections are still open to it."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def session_database() -> str | None:
    """One throwaway database for this test session (the `postgres_url` fixture)."""
    return create_database(f"orderflow_test_{os.getpid()}", replace=True)


@contextmanager
def empty_database(db_url: str, label: str) -> Iterator[str]:
    """An empty database beside a test's `db_url`: a new SQLite file next to its file, or a throwaway
    PostgreSQL database (not the session's shared one, which the other tests use), dropped after."""
    if db_url.startswith("sqlite"):
        yield db_url.replace("orderflow.db", f"{label}.db")
        return
    url = create_database(f"orderflow_{label}_{uuid.uuid4().hex[:12]}")
    assert url is not None  # db_url is on this PostgreSQL server, so it answers
    try:
        yield url
    finally:
        drop_database(url)


@contextmanager
def throwaway_database(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (dropped after it); a SQLite file when PostgreSQL is
    not there (a failure instead when ORDERFLOW_REQUIRE_POSTGRES=1, as in CI)."""
    url = create_database(f"orderflow_rel_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    if url is None:
        yield f"sqlite:///{tmp_path}/orderflow.db"
        return
    try:
        yield url
    finally:
        drop_database(url)
