"""Which activity failures a retry can fix: errors no retry can fix become non-retryable.

Every activity runs through `ClassifyFailures` (a worker interceptor), so a new activity is covered
without thinking about it. A value too long for its column, a broken constraint or a validation error
fails the same way on every attempt: retried, it would keep the order waiting forever (TEMPORAL.md
pitfall 8). Raised as a non-retryable `ApplicationError(type="PermanentFailure")`, it reaches the
workflow at once, which puts the order in exception with the reason. A lost connection, a lock
timeout or anything unknown stays retryable: the workflow waits and shows that it waits.
"""

from __future__ import annotations

from typing import Any

import pydantic
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError, StatementError
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

PERMANENT = "PermanentFailure"

# DBAPI errors of these kinds mean the statement itself is wrong for the data: same result every time.
_PERMANENT_DB_ERRORS = (DataError, IntegrityError, ProgrammingError)


def permanent_reason(exc: BaseException) -> str | None:
    """A short reason when `exc` cannot be fixed by retrying, else None."""
    if isinstance(exc, _PERMANENT_DB_ERRORS):
        original = getattr(exc, "orig", None) or exc
        first_line = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
        return f"the database refused the data: {first_line}"
    if isinstance(exc, StatementError) and isinstance(exc.orig, (ValueError, TypeError)):
        return f"a value could not be stored: {exc.orig}"
    if isinstance(exc, pydantic.ValidationError):
        return f"invalid data: {exc.errors(include_url=False)[0].get('msg', str(exc))}"
    return None


class _Classify(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError:
            raise
        except Exception as exc:
            reason = permanent_reason(exc)
            if reason is None:
                raise
            raise ApplicationError(reason, type=PERMANENT, non_retryable=True) from exc


class ClassifyFailures(Interceptor):
    """Worker interceptor: permanent failures of any activity become non-retryable."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Classify(next)
