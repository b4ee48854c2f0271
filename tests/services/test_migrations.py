"""Alembic migrations (services.migrate), on SQLite and PostgreSQL, each test on a database of its own.

The schema the migrations build must be the models' schema exactly: Alembic's compare_metadata (types
included) finds no difference, and primary keys and CHECK constraints, which it does not compare, are
checked here. Upgrading is idempotent and safe when processes start together; a database made by
create_all before migrations existed is stamped; and the comparison is shown to catch drift.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    CheckConstraint,
    Column,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    text,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from domain.effects import RecordRefund
from services import migrate
from services.db import create_schema, make_engine, transaction
from services.payments import PaymentService, refund_id
from services.tables import ApiKey, Notification, Stock, utcnow


# -------------------------------------------------------------- helpers
def differences(engine: Engine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata))


def flat(diffs: list[Any]) -> set[tuple[str, str]]:
    """(kind, "table" or "table.column") for each difference; modify_* come as lists of tuples."""
    out: set[tuple[str, str]] = set()
    for diff in diffs:
        for item in diff if isinstance(diff, list) else [diff]:
            kind = item[0]
            if kind in ("add_table", "remove_table"):
                out.add((kind, item[1].name))
            elif kind in ("add_column", "remove_column"):
                out.add((kind, f"{item[2]}.{item[3].name}"))
            elif kind.startswith("modify_"):
                out.add((kind, f"{item[2]}.{item[3]}"))
            elif kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
                out.add((kind, f"{item[1].table.name}.{item[1].name}"))
            else:
                out.add((kind, repr(item)))
    return out


def sql_tokens(sql: str) -> str:
    """A CHECK's condition without parentheses, spaces or case: PostgreSQL reflects
    `locked >= 0 AND reserved >= 0` as `((locked >= 0) AND (reserved >= 0))`."""
    return re.sub(r"[\s()]", "", sql).lower()


def assert_keys_and_checks_match_the_models(engine: Engine) -> None:
    """What compare_metadata leaves out: primary keys (columns and order) and CHECK constraints."""
    inspector = sa_inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert pk == [column.name for column in table.primary_key.columns], table.name
        expected = {
            str(c.name): sql_tokens(str(c.sqltext))
            for c in table.constraints
            if isinstance(c, CheckConstraint)
        }
        found = {
            str(c["name"]): sql_tokens(c["sqltext"]) for c in inspector.get_check_constraints(table.name)
        }
        assert found == expected, table.name


def table_names(engine: Engine) -> set[str]:
    return set(sa_inspect(engine).get_table_names())


def add_key(engine: Engine, key_id: str) -> None:
    with transaction(engine) as session:
        session.add(ApiKey(key_id=key_id, name="ops", role="admin", secret_sha256="0" * 64))


def key_ids(engine: Engine) -> list[str]:
    with transaction(engine) as session:
        return list(session.exec(select(ApiKey.key_id)).all())


# -------------------------------------------------------------- the revisions
def test_one_linear_history_starting_at_the_baseline() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_base() == migrate.BASELINE
    assert migrate.head() == script.get_current_head()


def test_the_baseline_creates_exactly_its_tables(fresh: Engine) -> None:
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), migrate.BASELINE)
    assert table_names(fresh) == migrate.BASELINE_TABLES | {"alembic_version"}


def test_every_revision_downgrades_and_upgrades_again(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    add_key(fresh, "k1")
    with fresh.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    assert table_names(fresh) == {"alembic_version"}
    assert migrate.current(fresh) == ()

    migrate.upgrade(fresh)
    assert differences(fresh) == []
    assert key_ids(fresh) == []


# -------------------------------------------------------------- the schema they build
def test_an_empty_database_upgrades_to_exactly_the_models(fresh: Engine) -> None:
    migrate.upgrade(fresh)

    assert migrate.current(fresh) == (migrate.head(),)
    assert differences(fresh) == []
    assert_keys_and_checks_match_the_models(fresh)
    assert table_names(fresh) == set(SQLModel.metadata.tables) | {"alembic_version"}


def test_the_schema_enforces_what_the_models_declare(fresh: Engine) -> None:
    create_schema(fresh)
    with pytest.raises(IntegrityError), transaction(fresh) as session:
        session.add(Stock(warehouse="WH-FRA", sku="MUG", on_hand=1, locked=2))  # ck_stock_no_oversell
    add_key(fresh, "k1")
    with pytest.raises(IntegrityError):
        add_key(fresh, "k1")  # primary key


def test_upgrading_again_changes_nothing(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    add_key(fresh, "k1")

    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(fresh, "before_cursor_execute", record)
    try:
        migrate.upgrade(fresh)
        create_schema(fresh)
    finally:
        event.remove(fresh, "before_cursor_execute", record)

    writes = [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", s, re.I)]
    assert statements
    assert writes == []
    assert migrate.current(fresh) == (migrate.head(),)
    assert key_ids(fresh) == ["k1"]


def test_threads_starting_together_all_migrate(fresh_url: str) -> None:
    """Four threads, an engine each, upgrade the same empty database at once (the API and the worker
    in one process, as in tests)."""
    engines = [make_engine(fresh_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            start.wait()
            migrate.upgrade(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert not any(thread.is_alive() for thread in threads)
        assert migrate.current(engines[0]) == (migrate.head(),)
        assert differences(engines[0]) == []
    finally:
        for engine in engines:
            engine.dispose()


def upgrade_in_a_process(url: str, start: Any) -> None:
    engine = make_engine(url)
    try:
        start.wait(timeout=60)
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_processes_starting_together_both_migrate_across_processes(fresh_url: str) -> None:
    """The same with real processes, as the API and the worker start: without the advisory lock most
    of them fail on PostgreSQL (duplicate key in pg_type: CREATE TABLE raced)."""
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(4)
    processes = [spawn.Process(target=upgrade_in_a_process, args=(fresh_url, start)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    engine = make_engine(fresh_url)
    try:
        assert migrate.current(engine) == (migrate.head(),)
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_an_upgrade_waits_for_the_migration_lock(fresh: Engine, fresh_url: str) -> None:
    if fresh.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serialises on BEGIN IMMEDIATE")
    holder = create_engine(fresh_url)
    done = threading.Event()
    try:
        with holder.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": migrate.MIGRATION_LOCK})

            def upgrade() -> None:
                migrate.upgrade(fresh)
                done.set()

            thread = threading.Thread(target=upgrade)
            thread.start()
            time.sleep(0.5)
            assert not done.is_set()
            assert migrate.current(fresh) == ()
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": migrate.MIGRATION_LOCK})
            conn.commit()
        thread.join(timeout=30)
        assert done.is_set()
        assert migrate.current(fresh) == (migrate.head(),)
    finally:
        holder.dispose()


# -------------------------------------------------------------- databases from before migrations
def test_a_database_made_by_create_all_is_stamped_and_usable(fresh: Engine) -> None:
    SQLModel.metadata.create_all(fresh)
    add_key(fresh, "before")
    assert "alembic_version" not in table_names(fresh)

    create_schema(fresh)

    assert migrate.current(fresh) == (migrate.head(),)
    assert differences(fresh) == []
    assert_keys_and_checks_match_the_models(fresh)
    add_key(fresh, "after")
    assert sorted(key_ids(fresh)) == ["after", "before"]


def test_a_database_made_by_older_models_is_stamped_and_gets_the_later_revisions(fresh: Engine) -> None:
    """The realistic case: create_all ran with the models of revision BASELINE (which creates exactly
    the same schema), then orderflow is upgraded."""
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), migrate.BASELINE)
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text(
                "INSERT INTO notifications"
                " (order_id, kind, recipient, language, subject, body_text, created_at)"
                " VALUES ('o-1', 'payment_reminder', 'a@example.com', 'en', 'Pay', 'Please pay', :at)"
            ),
            {"at": utcnow()},
        )

    create_schema(fresh)

    assert migrate.current(fresh) == (migrate.head(),)
    assert differences(fresh) == []
    with transaction(fresh) as session:
        session.add(
            Notification(
                order_id="o-1",
                kind="order_shipped:" + "W" * 60,  # longer than BASELINE's 40
                recipient="a@example.com",
                language="en",
                subject="Shipped",
                body_text="On its way",
            )
        )
    with transaction(fresh) as session:
        kinds = session.exec(select(Notification.kind).order_by(col(Notification.kind))).all()
    assert kinds == ["order_shipped:" + "W" * 60, "payment_reminder"]


def test_a_refund_recorded_before_the_wider_columns_is_still_found_by_a_retry(fresh: Engine) -> None:
    """0003 widens refunds (and orders) in place: a refund recorded just before the upgrade keeps its
    id, so the retry of that record_refund after the upgrade owes it once, not twice."""
    refund = RecordRefund(
        order_id="ord_1", payment_id="pay_1", amount=Decimal("59.80"), currency="USD", reason="cancelled"
    )
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0002_wider_kind_and_warehouse")
    recorded = PaymentService(fresh).record_refund(refund)

    create_schema(fresh)

    assert differences(fresh) == []
    longer = refund.model_copy(update={"payment_id": "p" * 100, "reason": "r" * 500})
    assert PaymentService(fresh).record_refund(refund) == recorded
    assert PaymentService(fresh).record_refund(longer) == refund_id("ord_1", "p" * 100)
    rows = PaymentService(fresh).refunds_for("ord_1")
    assert sorted((r.refund_id, r.reason) for r in rows) == [
        (recorded, "cancelled"),
        (refund_id("ord_1", "p" * 100), "r" * 500),
    ]


def test_some_tables_without_alembic_version_are_refused(fresh: Engine) -> None:
    SQLModel.metadata.create_all(fresh)
    with fresh.begin() as conn:
        conn.execute(text("DROP TABLE api_keys"))

    with pytest.raises(migrate.MigrationError, match="lacks api_keys"):
        migrate.upgrade(fresh)
    assert migrate.current(fresh) == ()  # nothing stamped: the transaction rolled back


# -------------------------------------------------------------- tables dropped behind Alembic's back
def test_drop_all_then_create_schema_recreates_everything(fresh: Engine) -> None:
    """What the tests' `engine` fixture does: drop_all leaves alembic_version at head."""
    create_schema(fresh)
    add_key(fresh, "old")
    SQLModel.metadata.drop_all(fresh)
    assert table_names(fresh) == {"alembic_version"}
    assert migrate.current(fresh) == (migrate.head(),)

    create_schema(fresh)

    assert migrate.current(fresh) == (migrate.head(),)
    assert differences(fresh) == []
    assert key_ids(fresh) == []


def test_a_table_missing_at_head_is_a_clear_error(fresh: Engine) -> None:
    create_schema(fresh)
    with fresh.begin() as conn:
        conn.execute(text("DROP TABLE orders"))

    with pytest.raises(migrate.MigrationError, match=r"lacks orders\b"):
        create_schema(fresh)


def test_a_revision_this_code_does_not_know_is_a_clear_error(fresh: Engine) -> None:
    create_schema(fresh)
    with fresh.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))

    with pytest.raises(migrate.MigrationError, match="9999_from_the_future"):
        create_schema(fresh)


# -------------------------------------------------------------- drift is caught
def drifted_models() -> MetaData:
    """The models plus what a developer might add without writing a migration."""
    models = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(models)
    orders = models.tables["orders"]
    orders.append_column(Column("notes", String(200), nullable=True))
    Index("ix_orders_warehouse", orders.c.warehouse)
    models.tables["api_keys"].c.role.type = String(32)  # was 16
    Table("coupons", models, Column("code", String(20), primary_key=True))
    return models


def test_compare_metadata_reports_model_changes_without_a_migration(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    copy = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(copy)
    assert differences(fresh, copy) == []  # the copy alone is no drift

    assert flat(differences(fresh, drifted_models())) == {
        ("add_column", "orders.notes"),
        ("add_index", "orders.ix_orders_warehouse"),
        ("modify_type", "api_keys.role"),
        ("add_table", "coupons"),
    }


def test_start_up_refuses_models_the_database_lacks(fresh: Engine) -> None:
    migrate.upgrade(fresh)
    with pytest.raises(migrate.MigrationError, match=r"lacks coupons, orders\.notes"):
        migrate.upgrade(fresh, drifted_models())
