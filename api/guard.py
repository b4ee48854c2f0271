"""The API's door: the API key is checked before any request body is read, and bodies have a size limit.

FastAPI reads (and parses) a body before it solves a route's dependencies, so a key checked by a
dependency alone lets anyone make the API hold any body in memory. `ApiKeyGuard` answers a missing or
unknown key with 401 before the route runs; the body limits are FastAPI's own `max_body_size`, enforced
while the body streams in (with or without Content-Length), so a body over the limit is never held whole.
"""

from __future__ import annotations

import json
from typing import Final

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import (
    DATABASE_UNAVAILABLE,
    UNAUTHORIZED_DETAIL,
    database_unavailable_detail,
    retry_after_seconds,
)
from domain.access import Caller
from services.auth import ApiKeyService

MIB: Final = 1024 * 1024
JSON_BODY_LIMIT: Final = 1 * MIB  # orders, payments, actions: a 100-line order is a few kB
CSV_BODY_LIMIT: Final = 16 * MIB  # a stock CSV: some 400 000 rows
CALLER_SCOPE_KEY: Final = "orderflow.caller"

# Open without a key: liveness, and the API's own documentation (its pages, schema and assets).
PUBLIC_PATHS: Final = frozenset({"/healthz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DOCS_ASSETS: Final = "/static/docs"  # Swagger UI's and ReDoc's scripts and styles
# Webhooks carry no API key: their signature, checked on the raw body, is the authentication.
WEBHOOK_PREFIXES: Final = ("/webhooks/shopify/", "/webhooks/woocommerce/", "/webhooks/stripe/")
PUBLIC_PREFIXES: Final = (f"{DOCS_ASSETS}/", *WEBHOOK_PREFIXES)

log = structlog.get_logger(__name__)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def human_size(size: int) -> str:
    """A byte count as people write it: 1 MiB, 512 KiB, 300 bytes."""
    for unit, factor in (("MiB", MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def presented_key(headers: Headers) -> str | None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


class ApiKeyGuard:
    """Pure ASGI middleware: a request to a non-public path needs a valid API key before anything else
    happens; the caller it identifies is left in the scope for the routes' role checks. A 413 from the
    body limit (Starlette's plain "Content Too Large") is answered in JSON naming the route's limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            caller = await self._verify(scope)
        except DATABASE_UNAVAILABLE as exc:  # keys live in the database: 503 as for any route, never a 500
            log.warning("database_unavailable", path=scope["path"], error=type(exc).__name__)
            retry = retry_after_seconds(scope["app"])
            retry_header = (b"retry-after", str(retry).encode())
            await _answer(send, 503, database_unavailable_detail(retry), retry_header)
            return
        if caller is None:
            await _unauthorized(send)  # the body is never read: the client may stop sending it
            return
        scope[CALLER_SCOPE_KEY] = caller
        await self.app(scope, receive, _explaining_413(scope, send))

    @staticmethod
    async def _verify(scope: Scope) -> Caller | None:
        key = presented_key(Headers(scope=scope))
        if key is None:
            return None
        keys: ApiKeyService = scope["app"].state.keys
        return await run_in_threadpool(keys.verify, key)


def _explaining_413(scope: Scope, send: Send) -> Send:
    replaced = False

    async def sending(message: Message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 413:
            replaced = True
            limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)  # set by the limiter while it answers
            over = (
                f"over this route's limit of {human_size(limit)}" if isinstance(limit, int) else "too large"
            )
            detail = f"the request body is {over}; send a smaller one (a stock CSV can be imported in parts)"
            await _answer(send, 413, detail)
        elif not (replaced and message["type"] == "http.response.body"):
            await send(message)

    return sending


async def _unauthorized(send: Send) -> None:
    await _answer(send, 401, UNAUTHORIZED_DETAIL, (b"www-authenticate", b"Bearer"))


async def _answer(send: Send, status: int, detail: str, *extra: tuple[bytes, bytes]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # a body left unread must not be taken for the next request
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
