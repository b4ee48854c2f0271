"""Database migrations (Alembic), applied at start-up: services.db.create_schema calls upgrade().

upgrade(engine) brings the database to the newest revision in migrations/versions/ ("head"). Alembic
is configured in code, so no alembic.ini is read at run time; the scripts are found next to this
package (``<project>/migrations``). It is idempotent: alembic_version records the revision, and at
head nothing runs.

Two processes starting at once (the API and the worker) migrate one after the other (threads of one
process too: Alembic keeps its migration context in module globals, so a thread lock comes first):

- PostgreSQL: the migrating connection holds the advisory lock ``pg_advisory_lock(MIGRATION_LOCK)``
  for the whole upgrade; the other waits for it and then finds the database at head. The upgrade is
  one transaction (PostgreSQL DDL is transactional): a failure leaves nothing half-done.
- SQLite: engines from services.db.make_engine begin every transaction with BEGIN IMMEDIATE, so the
  upgrade holds the database's write lock and the other process waits on busy_timeout.

In that same transaction, before migrating:

- No alembic_version, but every table of the baseline revision 0001_initial exists: a database made
  by ``SQLModel.metadata.create_all`` before migrations existed. 0001_initial creates exactly what
  create_all created (same types and the same unnamed constraints, hence the same generated names on
  PostgreSQL), so the database is *stamped* at 0001_initial (recorded as applied, nothing run) and
  upgraded from there. Stamping was chosen over failing, which would make every existing installation
  run ``alembic stamp`` by hand, and over running 0001_initial, which fails on the existing tables.
  When only some of those tables exist the schema is an older, unknown one and upgrade() refuses
  (MigrationError) instead of stamping over what is missing.
- alembic_version holds a revision but none of our tables exist: they were dropped behind Alembic's
  back (``SQLModel.metadata.drop_all``, as the test fixtures do, leaves alembic_version). Nothing of
  ours is left, so the stale revision is cleared and the migrations run from the start.
- alembic_version holds a revision this code does not know (a newer orderflow migrated the database):
  refused with MigrationError.

After upgrading, every table and column of the models must exist, else MigrationError names what is
missing and the transaction rolls back: alembic_version at head with a table dropped by hand, or a
model changed without a revision. Start-up checks presence only, which is cheap;
tests/services/test_migrations.py compares types, nullability, keys, constraints and indexes in full.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlmodel import SQLModel

from services import tables  # noqa: F401  (registers every table on SQLModel.metadata)

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

BASELINE = "0001_initial"
# The tables BASELINE creates: what create_all made before migrations existed. Fixed for good, like
# the revision itself (a test checks the two agree).
BASELINE_TABLES = frozenset(
    {
        "api_keys",
        "audit_log",
        "low_stock_events",
        "notifications",
        "order_events",
        "order_keys",
        "orders",
        "payments",
        "refunds",
        "shipment_requests",
        "stock",
        "stock_allocations",
        "stock_moves",
        "warehouses",
    }
)

# Alembic's `context` and `op` are module globals: threads of one process take turns (then the
# advisory lock or BEGIN IMMEDIATE serialises processes).
_IN_PROCESS = threading.Lock()

# Key of the PostgreSQL advisory lock taken around an upgrade: "orderflo" in ASCII, as a bigint.
MIGRATION_LOCK = 0x6F72646572666C6F


class MigrationError(RuntimeError):
    """The database cannot be brought to the schema this code expects."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; env.py migrates ``connection`` when one is given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise MigrationError(f"no revisions in {MIGRATIONS_DIR}")
    return revision


def current(engine: Engine) -> tuple[str, ...]:
    """The revision(s) alembic_version records; () for a database never migrated."""
    with engine.connect() as connection:
        return tuple(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: Engine, models: MetaData | None = None) -> None:
    """Migrate the database to head, then check that every table and column of ``models`` (default:
    SQLModel.metadata, every table in services/tables.py) is there. See the module docstring."""
    models = models if models is not None else SQLModel.metadata
    with _IN_PROCESS, engine.connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        with _advisory_lock(connection) if postgresql else nullcontext():
            _upgrade(connection, models)


@contextmanager
def _advisory_lock(connection: Connection) -> Iterator[None]:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
    connection.commit()
    try:
        yield
    finally:
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        except Exception:
            # The session is broken; closing it for good is what releases the lock then.
            log.warning("migration lock not released, closing the connection", exc_info=True)
            connection.invalidate()


def _upgrade(connection: Connection, models: MetaData) -> None:
    config = alembic_config(connection)
    with connection.begin():  # BEGIN IMMEDIATE on SQLite (services.db.make_engine)
        before = _prepare(connection, config)
        command.upgrade(config, "head")
        after = tuple(MigrationContext.configure(connection).get_current_heads())
        _check_models(connection, models, after)
    if after != before:
        log.info("database migrated", dialect=connection.dialect.name, previous=before, revision=after)


def _prepare(connection: Connection, config: Config) -> tuple[str, ...]:
    """Stamp a database made by create_all, clear a revision whose tables are gone (module docstring).
    Returns the revision(s) the database is at now."""
    revisions = tuple(MigrationContext.configure(connection).get_current_heads())
    present = set(inspect(connection).get_table_names())
    ours = present & (BASELINE_TABLES | set(SQLModel.metadata.tables))

    if revisions:
        script = ScriptDirectory.from_config(config)
        for revision in revisions:
            try:
                script.get_revision(revision)
            except CommandError as exc:
                raise MigrationError(
                    f"the database is at revision {revision!r}, which this version of orderflow does not "
                    f"know (its newest is {script.get_current_head()!r}): a newer version migrated it"
                ) from exc
        if ours:
            return revisions
        log.warning("alembic_version without any of its tables: migrating from the start", stale=revisions)
        command.stamp(config, "base", purge=True)
        return ()

    if not ours:
        return ()  # an empty database (or only tables that are not ours)
    missing = sorted(BASELINE_TABLES - present)
    if missing:
        raise MigrationError(
            "the database has some of orderflow's tables but no alembic_version, and lacks "
            f"{', '.join(missing)}: it is not the schema revision {BASELINE} describes, so it cannot be "
            "stamped; migrate or recreate it by hand"
        )
    log.warning("database made before migrations: stamping it", revision=BASELINE)
    command.stamp(config, BASELINE)
    return (BASELINE,)


def _check_models(connection: Connection, models: MetaData, revisions: tuple[str, ...]) -> None:
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    missing = sorted(name for name in models.tables if name not in present)
    found = inspector.get_multi_columns(filter_names=[name for name in models.tables if name in present])
    columns = {table: {column["name"] for column in cols} for (_schema, table), cols in found.items()}
    missing += [
        f"{table.name}.{column.name}"
        for table in models.tables.values()
        if table.name in columns
        for column in table.columns
        if column.name not in columns[table.name]
    ]
    if missing:
        raise MigrationError(
            f"the database at revision {', '.join(revisions) or '(none)'} lacks {', '.join(missing)}: "
            "a model changed without a migration (add one to migrations/versions), or tables were "
            "dropped by hand (drop alembic_version too to recreate everything)"
        )
