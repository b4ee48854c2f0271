"""Call an outbound client as a Temporal activity with retries would: again after a retryable error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from integrations.errors import RetryableError

T = TypeVar("T")


async def with_retries(call: Callable[[], Awaitable[T]], attempts: int = 6) -> tuple[T, list[RetryableError]]:
    """The result of the first attempt that does not fail retryably, and the retryable errors before it."""
    failures: list[RetryableError] = []
    for _ in range(attempts - 1):
        try:
            return await call(), failures
        except RetryableError as error:
            failures.append(error)
    return await call(), failures
