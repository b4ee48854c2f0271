"""Run a Starlette app on 127.0.0.1:<free port> with uvicorn inside the test's event loop, and the
bookkeeping every fake shares: what it received, and failures it serves on purpose."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from tests.support.processes import free_port


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Faults:
    """Failures a fake serves on purpose: the first `fail_first` requests get `status` (500 or 429 with
    Retry-After) before anything happens; the next `lose_responses` writes take effect but answer 500,
    as when the connection drops after the counterpart committed."""

    fail_first: int = 0
    status: int = 500
    retry_after: str | None = None
    lose_responses: int = 0

    def before(self) -> Response | None:
        if self.fail_first <= 0:
            return None
        self.fail_first -= 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return JSONResponse({"errors": "failing on purpose"}, status_code=self.status, headers=headers)

    def after_write(self) -> Response | None:
        if self.lose_responses <= 0:
            return None
        self.lose_responses -= 1
        return JSONResponse({"errors": "response lost on purpose"}, status_code=500)


class ShapeError(Exception):
    """A request without the shape the vendor documents: answered 400, kept in the journal."""


def expect(condition: object, problem: str) -> None:
    if not condition:
        raise ShapeError(problem)


@dataclass
class Journal:
    """What a fake received, in order, and every request whose shape it refused."""

    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def refuse(self, error: ShapeError) -> Response:
        self.problems.append(str(error))
        return JSONResponse({"errors": f"bad request shape: {error}"}, status_code=400)

    async def record(self, request: Request, status: int) -> None:
        self.received.append(
            Received(request.method, request.url.path, dict(request.headers), await request.body(), status)
        )

    def count(self, method: str, path_part: str = "") -> int:
        return sum(1 for item in self.received if item.method == method and path_part in item.path)


def json_error(status: int, body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` on a free port of 127.0.0.1 for the block; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
