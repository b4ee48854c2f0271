"""What a use case can answer besides success, as domain errors: each edge (HTTP, CLI, webhook) says it
its own way; api/errors.py maps them to 404, 409, 422 and 503 with Retry-After."""

from __future__ import annotations

import math
from datetime import timedelta

from temporalio.service import RPCStatusCode

# Temporal answers that mean "not now" (no worker took it in time, the server is unreachable or
# overloaded), as opposed to "no such workflow" or a bug.
TEMPORAL_NOT_NOW = (
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
)


def whole_seconds(duration: timedelta) -> int:
    """A duration as the whole seconds a person (or a Retry-After header) reads: at least 1."""
    return max(1, math.ceil(duration.total_seconds()))


class NotFound(Exception):
    """No such thing; `what` names it ("order ord_1", "warehouse WH-SZ"), `hint` says what to do."""

    def __init__(self, what: str, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint

    @property
    def detail(self) -> str:
        return f"{self.what} not found" + (f": {self.hint}" if self.hint else "")


class OrderNotFound(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id}")
        self.order_id = order_id


class CommandRefused(Exception):
    """The order's current state does not allow the command; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidField(Exception):
    """Input that is well-formed but not acceptable for what was asked; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Busy(Exception):
    """Nothing can answer in time (the order's worker is slow or down): try again in `retry_after` s."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
