"""The errors every integration raises, so activities and webhook routes treat all counterparts alike."""

from __future__ import annotations


class SignatureError(Exception):
    """The delivery is not from the counterpart: wrong, missing or stale signature, or an altered body.
    Answer 401 and store nothing. The message never contains a secret."""


class PayloadError(ValueError):
    """A signed delivery orderflow cannot read: names the field (`field`) so the delivery list can say why."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnsupportedTopic(Exception):
    """A topic orderflow does not act on: answer 200 and record it as ignored, never retried."""


class PermanentError(Exception):
    """A call a retry cannot fix (401, 403, 404, a refused request): the shop needs the seller's attention.
    `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(Exception):
    """A call that may work later (429, 5xx, timeout, connection refused). `retry_after` is the number of
    seconds the counterpart asked us to wait, when it said."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
