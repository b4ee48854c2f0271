"""One HTTP call to a counterpart with httpx, its failures sorted into retryable and permanent errors."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from integrations.errors import PermanentError, RetryableError

TIMEOUT = httpx.Timeout(20.0, connect=5.0)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds ("2", "1.5") or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Turn a failed response into the typed error its status calls for; 2xx and 3xx pass."""
    status = response.status_code
    if status < 400:
        return
    detail = f"{what}: HTTP {status} {response.reason_phrase}"
    if status == 429 or status >= 500 or status == 408:
        raise RetryableError(
            detail, status=status, retry_after=retry_after(response.headers.get("Retry-After"))
        )
    if status in (401, 403):
        raise PermanentError(f"{detail}: the credentials are wrong or were revoked", status=status)
    if status == 404:
        raise PermanentError(
            f"{detail}: not found (wrong shop address or the record was deleted)", status=status
        )
    raise PermanentError(f"{detail}: {response.text[:300]}", status=status)


async def send(client: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any) -> httpx.Response:
    """client.request with timeouts and connection failures as RetryableError and statuses classified."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as error:
        raise RetryableError(f"{what}: timed out ({type(error).__name__})") from error
    except httpx.TransportError as error:
        raise RetryableError(f"{what}: could not connect ({type(error).__name__})") from error
    raise_for_status(response, what)
    return response
