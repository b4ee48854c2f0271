"""Domain errors (app.errors), database and Temporal failures mapped to answers a caller can act on: 4xx
for the request, 503 with Retry-After when the order service or the database cannot answer now; never a
500 for either."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from app.errors import (
    TEMPORAL_NOT_NOW,
    Busy,
    CommandRefused,
    InvalidField,
    whole_seconds,
)
from app.errors import NotFound as NotFound  # re-exported: routes raise it from here
from services.inventory import StockConflict
from services.orders import BadCursor


class ErrorBody(BaseModel):
    detail: str


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError]


# What every endpoint may answer besides success, as documented in the OpenAPI schema.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body could not be read"},
    401: {"model": ErrorBody, "description": "Missing or invalid API key"},
    403: {"model": ErrorBody, "description": "The key's role may not do this"},
    413: {"model": ErrorBody, "description": "The body is over this route's size limit; `detail` names it"},
    404: {"model": ErrorBody, "description": "No such order, stock row or warehouse"},
    409: {"model": ErrorBody, "description": "Not allowed in the order's current state; `detail` says why"},
    422: {"model": ValidationErrorBody, "description": "Invalid input; `errors` names each field"},
    503: {
        "model": ErrorBody,
        "description": (
            "The order service or the database cannot answer now (a worker slow or down, the database "
            "unreachable); `detail` says what to do. Retry after the seconds in Retry-After: every "
            "order command is safe to repeat."
        ),
        "headers": {
            "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}
        },
    },
}

# The database cannot answer now (unreachable, restarting, locked, out of connections): retry later.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
)
DEFAULT_RETRY_AFTER = 5
UNAUTHORIZED_DETAIL = "missing or invalid API key; send Authorization: Bearer <key>"
log = structlog.get_logger(__name__)


# The name api/routes used before the use cases moved to app/: the same exception.
UnprocessableField = InvalidField


class Unauthorized(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, role: str, permission: str) -> None:
        super().__init__(f"{role} keys may not {permission}")
        self.role = role
        self.permission = permission


def _field(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


# A rule across fields (a model validator) says which field it is about as "lines[0].unit_price: ...".
_NAMED = re.compile(r"^(?P<field>[A-Za-z_][\w.\[\]]*): (?P<message>.+)$", re.DOTALL)
_NOT_AN_OBJECT = {"model_attributes_type", "model_type", "dict_type"}


def _body_media_type(request: Request) -> str:
    body = getattr(request.scope.get("route"), "body_field", None)
    return str(getattr(getattr(body, "field_info", None), "media_type", None) or "application/json")


def _send_instead(request: Request) -> str:
    media_type = _body_media_type(request)
    what = "a JSON object" if media_type == "application/json" else "the body"
    return f"send {what} with Content-Type: {media_type}"


def field_error(request: Request, error: Mapping[str, Any]) -> dict[str, str]:
    """One pydantic error as {field, message}: the field a person would fix, a message saying what to send."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "json_invalid":
        why = error.get("ctx", {}).get("error", "invalid JSON")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return {"field": "body", "message": f"the body is not JSON ({why}{at}); {_send_instead(request)}"}
    if loc == ("body",) and (kind in _NOT_AN_OBJECT or kind == "missing"):
        got = request.headers.get("content-type") or "no Content-Type"
        found = "no body" if kind == "missing" else f"a body sent as {got}"
        return {"field": "body", "message": f"found {found}; {_send_instead(request)}"}
    field = _field(loc)
    named = _NAMED.match(message)
    if named:
        inner = named["field"]
        field = inner if field == "body" else f"{field}{'' if inner.startswith('[') else '.'}{inner}"
        message = named["message"]
    return {"field": field, "message": message}


def retry_after_seconds(app: Any) -> int:
    """The Retry-After the app's settings ask for (before its lifespan ran: the default)."""
    settings = getattr(app.state, "settings", None)
    return whole_seconds(settings.busy_retry_after) if settings else DEFAULT_RETRY_AFTER


def database_unavailable_detail(retry: int) -> str:
    return f"the database is unavailable; retry in {retry} s"


def _retry_after(request: Request) -> int:
    return retry_after_seconds(request.app)


def _unavailable(detail: str, retry_after: int) -> JSONResponse:
    return JSONResponse(
        status_code=503, content={"detail": detail}, headers={"Retry-After": str(retry_after)}
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [field_error(request, e) for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(
            status_code=422,
            content=jsonable_encoder({"detail": summary, "errors": errors}),
        )

    @app.exception_handler(InvalidField)
    async def _unprocessable(_: Request, exc: InvalidField) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={"detail": str(exc), "errors": [{"field": exc.field, "message": exc.message}]},
        )

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            status_code=401,
            content={"detail": UNAUTHORIZED_DETAIL},
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse(
            status_code=403, content={"detail": f"this API key's role ({exc.role}) may not {exc.permission}"}
        )

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": exc.detail})

    @app.exception_handler(CommandRefused)
    async def _conflict(_: Request, exc: CommandRefused) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": exc.reason})

    @app.exception_handler(StockConflict)
    async def _stock_conflict(_: Request, exc: StockConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(Busy)
    async def _busy(_: Request, exc: Busy) -> JSONResponse:
        return _unavailable(exc.detail, exc.retry_after)

    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", path=request.url.path, error=type(exc).__name__)
        retry = _retry_after(request)
        return _unavailable(database_unavailable_detail(retry), retry)

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _temporal_timeout(request: Request, exc: RPCTimeoutOrCancelledError) -> JSONResponse:
        retry = _retry_after(request)
        return _unavailable(f"the order service did not answer in time; retry in {retry} s", retry)

    @app.exception_handler(RPCError)
    async def _temporal_unavailable(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status not in TEMPORAL_NOT_NOW:
            raise exc  # a bug, not a busy service: let it surface
        retry = _retry_after(request)
        log.warning("temporal_unavailable", path=request.url.path, status=exc.status.name)
        return _unavailable(f"the order service is unavailable; retry in {retry} s", retry)

    @app.exception_handler(BadCursor)
    async def _bad_cursor(_: Request, exc: BadCursor) -> JSONResponse:
        return JSONResponse(
            status_code=422,
            content={
                "detail": f"cursor: {exc}",
                "errors": [{"field": "cursor", "message": str(exc)}],
            },
        )
