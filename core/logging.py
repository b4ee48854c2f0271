"""The one structlog setup: contextvars, ISO UTC timestamps, JSON off a TTY, stdlib logs alike."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

MASK = "***"
# A field named like one of these carries a secret (a word of its snake_case, kebab-case or camelCase
# name: client_secret, accessToken, X-Shopify-Access-Token, stripe_secret_key, password, credentials).
SECRET_WORDS = frozenset(
    {"secret", "secrets", "token", "tokens", "password", "passwd", "key", "keys"}
    | {"credential", "credentials", "authorization", "cookie", "signature", "hmac"}
)
# ...except names of identifiers that merely mention one: key_id, token_type, secret_name.
NOT_SECRET_ENDINGS = ("id", "ids", "name", "names", "type", "count", "set")
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_field(name: str) -> bool:
    words = [word.lower() for word in _WORDS.findall(str(name))]
    return bool(words) and words[-1] not in NOT_SECRET_ENDINGS and not SECRET_WORDS.isdisjoint(words)


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {k: MASK if is_secret_field(k) else _masked(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(item, depth + 1) for item in value)
    return value


def mask_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace the value of every field named like a secret (SECRET_WORDS), also inside dicts and lists
    (headers, a shop's credentials), so a log line never carries one."""
    return {
        key: (MASK if key != "event" and is_secret_field(key) else _masked(value))
        for key, value in event_dict.items()
    }


def configure_logging(level: str = "INFO", json: bool | None = None) -> None:
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # ExtraAdder: a stdlib record's `extra=` fields (temporalio's workflow.logger and activity.logger
        # put the workflow and activity ids there) become key-values like structlog's own.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_secrets,  # last before rendering: stdlib records' `extra=` fields are masked too
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "temporalio"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    # Alembic narrates every start-up ("Context impl ...", "Will assume ..."); services.migrate logs
    # one `database migrated` line when a migration actually ran.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
