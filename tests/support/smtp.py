"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives, for mail tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support.processes import free_port


@dataclass
class Inbox:
    """aiosmtpd handler that keeps what arrives; refuses recipients listed in `refuse`."""

    refuse: set[str] = field(default_factory=set)
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class Arrival:
    """One message the server accepted, and when (just before it answered 250)."""

    recipients: tuple[str, ...]
    message: EmailMessage
    at: datetime

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])


@dataclass(frozen=True)
class Pause:
    """What the server held when a pause took hold: sessions waiting to name a recipient (their
    message not begun) and sessions waiting for the answer to QUIT (their message accepted)."""

    before_data: int
    after_acceptance: int


@dataclass
class Mailroom(Inbox):
    """An Inbox a test can pause around a crash of the sending process.

    A sender that records a delivery when the server accepts it (the 250 after DATA) and only then
    says QUIT is, during a pause, never between the acceptance and its record: `pause()` holds
    every QUIT, stops new messages before DATA (at RCPT), and returns once no session is between
    the two. Killing the sender then can only lose a message not yet begun (its retry must send it)
    or interrupt one accepted and recorded (its retry must not). `release()` lets everything go on.
    The handler runs on the server's thread, the test calls in from its own: state sits behind a lock.
    """

    arrivals: list[Arrival] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _hold_rcpt: bool = field(default=False, init=False)
    _hold_quit: bool = field(default=False, init=False)
    # sessions by id(): past RCPT and not yet at QUIT, waiting at RCPT, waiting at QUIT
    _in_flight: set[int] = field(default_factory=set, init=False)
    _at_rcpt: set[int] = field(default_factory=set, init=False)
    _at_quit: set[int] = field(default_factory=set, init=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        key = id(session)
        while True:
            with self._lock:
                if not self._hold_rcpt:
                    self._at_rcpt.discard(key)
                    self._in_flight.add(key)
                    break
                self._at_rcpt.add(key)
            await asyncio.sleep(0.01)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), message))
            self.arrivals.append(Arrival(tuple(envelope.rcpt_tos), message, datetime.now(UTC)))
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        key = id(session)
        while True:
            with self._lock:
                self._in_flight.discard(key)
                if not self._hold_quit:
                    self._at_quit.discard(key)
                    break
                self._at_quit.add(key)
            await asyncio.sleep(0.01)
        return "221 Bye"

    def connection_lost(self, session: Any) -> None:
        key = id(session)
        with self._lock:
            self._in_flight.discard(key)
            self._at_rcpt.discard(key)
            self._at_quit.discard(key)

    async def pause(self, *, catch_within: float, drain_within: float = 10.0) -> Pause:
        """Hold every QUIT, waiting up to `catch_within` for one to be held; then hold new messages
        at RCPT, waiting up to `catch_within` for one to be held there too and (up to
        `drain_within`) for no session to be between RCPT and QUIT."""
        with self._lock:
            self._hold_quit = True
        caught_by = time.monotonic() + catch_within
        while time.monotonic() < caught_by:
            with self._lock:
                if self._at_quit:
                    break
            await asyncio.sleep(0.01)
        with self._lock:
            self._hold_rcpt = True
        caught_by = time.monotonic() + catch_within
        drained_by = time.monotonic() + drain_within
        while True:
            with self._lock:
                drained = not self._in_flight
                if drained and (self._at_rcpt or time.monotonic() >= caught_by):
                    return Pause(before_data=len(self._at_rcpt), after_acceptance=len(self._at_quit))
            if not drained and time.monotonic() > drained_by:
                raise AssertionError("SMTP sessions still between RCPT and QUIT")
            await asyncio.sleep(0.01)

    def release(self) -> None:
        with self._lock:
            self._hold_rcpt = self._hold_quit = False

    async def wait_for(self, count: int) -> None:
        """Until `count` messages have arrived."""
        while True:
            with self._lock:
                if len(self.arrivals) >= count:
                    return
            await asyncio.sleep(0.05)

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)


class _ReportingSMTP(SMTP):
    """aiosmtpd's server that also tells its handler when a client's connection ends."""

    def connection_lost(self, error: Exception | None) -> None:
        session = self.session
        super().connection_lost(error)
        lost = getattr(self.event_handler, "connection_lost", None)
        if lost is not None:
            lost(session)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _ReportingSMTP(self.handler, **self.SMTP_kwargs)


@contextmanager
def serving(handler: Inbox) -> Iterator[int]:
    """`handler` behind a real SMTP server on 127.0.0.1, on its own thread; yields the port."""
    port = free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class SmtpServer:
    inbox: Inbox
    port: int
