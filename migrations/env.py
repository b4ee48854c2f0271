"""Alembic environment for orderflow: the target is SQLModel.metadata, every table in services/tables.py.

At start-up services.migrate.upgrade() runs the migrations through this file on a connection it
passes in ``config.attributes["connection"]``, already inside the transaction (and, on PostgreSQL, the
advisory lock) it holds; nothing here commits.

From the command line (alembic.ini at the project root) this file is used to author revisions:

    alembic -x url=sqlite:///.data/scratch.db upgrade head
    alembic -x url=sqlite:///.data/scratch.db revision --autogenerate --rev-id 0002_<what> -m "<what>"

The database is ``-x url=...``, else ORDERS_DATABASE_URL (core.config.Settings). Deployments do not
run the CLI: the API and the worker migrate at start-up (services.db.create_schema).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from services.db import make_engine  # importing services.db registers every table on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata

if config.config_file_name is not None:  # the command line: log as alembic.ini says
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes SQLModel's AutoString as plain sa.String: revisions need not import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def configure_options() -> dict[str, Any]:
    return {
        "target_metadata": target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead ("move and copy").
        "render_as_batch": True,
        "compare_type": True,
        "render_item": render_item,
    }


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, **configure_options())
    # Inside services.migrate's transaction this begins nothing (alembic sees the external transaction).
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from core.config import Settings  # only the command line needs the settings

    return Settings().database_url


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(url=database_url(), literal_binds=True, **configure_options())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
