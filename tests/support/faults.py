"""Real database faults for failure tests: a table that refuses writes, for good or for a while.

No mock: the database itself refuses, so the error travels the real path (SQLAlchemy, the activity's
failure classification, Temporal's retries, the workflow). "For good" raises what a retry never
fixes (a constraint violation); "for a while" raises what a retry may fix (PostgreSQL: a
serialization failure; SQLite: the table is missing, as during a botched restore).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

PERMANENT_CODE = "23514"  # check_violation -> IntegrityError: never fixed by retrying
TRANSIENT_CODE = "40001"  # serialization_failure -> OperationalError: retrying may work


@contextmanager
def refusing_writes(engine: Engine, table: str, *, permanent: bool) -> Iterator[None]:
    """While inside, every INSERT, UPDATE and DELETE on `table` fails."""
    undo = _refuse(engine, table, permanent)
    try:
        yield
    finally:
        with engine.begin() as conn:
            for statement in undo:
                conn.execute(text(statement))


def refuse_writes(engine: Engine, table: str, *, permanent: bool) -> list[str]:
    """Start refusing; returns the statements that stop it (for faults that outlive a block)."""
    return _refuse(engine, table, permanent)


def restore(engine: Engine, undo: list[str]) -> None:
    with engine.begin() as conn:
        for statement in undo:
            conn.execute(text(statement))


def _refuse(engine: Engine, table: str, permanent: bool) -> list[str]:
    name = f"test_fault_{table}"
    if engine.dialect.name == "postgresql":
        code = PERMANENT_CODE if permanent else TRANSIENT_CODE
        statements = [
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION 'test fault: {table} refuses writes' USING ERRCODE = '{code}'; END $$ "
            "LANGUAGE plpgsql",
            f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}()",
        ]
        undo = [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
    elif permanent:
        statements = [
            f"CREATE TRIGGER {name}_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'test fault: {table} refuses writes'); END"
            for op in ("INSERT", "UPDATE", "DELETE")
        ]
        undo = [f"DROP TRIGGER {name}_{op.lower()}" for op in ("INSERT", "UPDATE", "DELETE")]
    else:
        statements = [f"ALTER TABLE {table} RENAME TO {table}_offline"]
        undo = [f"ALTER TABLE {table}_offline RENAME TO {table}"]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    return undo
