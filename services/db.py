"""Database engines and sessions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from services import tables  # noqa: F401  (registers every table on SQLModel.metadata)


def normalize_url(url: str) -> str:
    """postgresql:// URLs use psycopg 3, the driver this project ships."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    # A database that drops packets instead of refusing them must fail fast (the API answers 503,
    # activities retry) rather than hang: connect and TCP timeouts, keepalives on idle connections.
    timeouts = {
        "connect_timeout": 5,
        "tcp_user_timeout": 10_000,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    connect_args = {**timeouts, **kwargs.pop("connect_args", {})}
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, connect_args=connect_args, **kwargs
    )


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=10, **kwargs
    )

    # SQLite allows one writer. A deferred transaction that reads and then writes can fail at
    # once with "database is locked" when two upgrade together; BEGIN IMMEDIATE takes the write
    # lock up front so concurrent writers queue on the busy timeout instead.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any) -> None:
    """Switching a new database file to WAL needs a moment alone with it, and SQLite answers "database
    is locked" at once, without its busy handler, while another process is in the middle of that same
    switch (processes starting together on a fresh file): wait for it, up to the busy timeout."""
    for _ in range(300):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.1)
    cursor.execute("PRAGMA journal_mode=WAL")


def create_schema(engine: Engine) -> None:
    """Migrate the database to the newest Alembic revision and check it has every table and column of
    the models (services.migrate: safe when processes start together, stamps a create_all database)."""
    from services.migrate import upgrade  # Alembic loads only where the schema is migrated

    upgrade(engine, SQLModel.metadata)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
