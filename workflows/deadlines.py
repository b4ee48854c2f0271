"""The order's named deadlines: armed from workflow.now(), fired in order, paused and shifted by a hold.

A deadline is a kind (`Deadline`) plus, for payment reminders, the reminder's number: typed data,
never a name parsed back. The names (`payment_reminder_2`, `ship_by`...) exist only where state
crosses continue-as-new (OrderState.timers keeps the shape running orders carry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.policy import OrderPolicy

    from workflows.presentation import REMINDER_NAMES, hours


class Deadline(StrEnum):
    PAYMENT_REMINDER = "payment_reminder"
    PAYMENT_TIMEOUT = "payment_timeout"
    SHIP_BY = "ship_by"
    CONFIRM_BY = "confirm_by"
    RESTOCK_CHECK = "restock_check"
    PROJECT = "project"  # write the view to the read model again after a failed write


PAYMENT_DEADLINES = (Deadline.PAYMENT_REMINDER, Deadline.PAYMENT_TIMEOUT)

_LABELS = {
    Deadline.PAYMENT_TIMEOUT: "auto-cancel unpaid order",
    Deadline.SHIP_BY: "ship-by deadline",
    Deadline.CONFIRM_BY: "auto-complete after confirmation window",
    Deadline.RESTOCK_CHECK: "check for restocked stock",
    Deadline.PROJECT: "write the order to the read model again",
}


@dataclass(frozen=True)
class Timer:
    """One armed deadline: its kind and, for a payment reminder, which one (1-based)."""

    kind: Deadline
    number: int = 0

    @classmethod
    def reminder(cls, number: int) -> Timer:
        return cls(Deadline.PAYMENT_REMINDER, number)

    @property
    def name(self) -> str:
        """The name carried across continue-as-new."""
        return f"{self.kind.value}_{self.number}" if self.number else self.kind.value

    @classmethod
    def from_name(cls, name: str) -> Timer:
        """Only for state carried by an earlier run, which names its deadlines."""
        if name.startswith(f"{Deadline.PAYMENT_REMINDER.value}_"):
            return cls.reminder(int(name.rsplit("_", 1)[1]))
        return cls(Deadline(name))

    def label(self, policy: OrderPolicy) -> str:
        """What the deadline does, for timer summaries and the Web UI."""
        if self.kind != Deadline.PAYMENT_REMINDER:
            return _LABELS[self.kind]
        offset = policy.reminder_offsets[self.number - 1]
        total = len(policy.reminder_offsets)
        return (
            f"payment reminder {self.number} of {total} ({hours(offset)}): {REMINDER_NAMES[self.number - 1]}"
        )


def _timer(which: Timer | Deadline) -> Timer:
    return which if isinstance(which, Timer) else Timer(which)


class Deadlines:
    """The armed deadlines, in the order they were first armed (ties fire in that order)."""

    def __init__(self, carried: dict[str, datetime] | None = None) -> None:
        self._due: dict[Timer, datetime] = {
            Timer.from_name(name): due for name, due in (carried or {}).items()
        }

    def carried(self) -> dict[str, datetime]:
        return {timer.name: due for timer, due in self._due.items()}

    def __bool__(self) -> bool:
        return bool(self._due)

    def __contains__(self, which: Timer | Deadline) -> bool:
        return _timer(which) in self._due

    def arm(self, which: Timer | Deadline, due: datetime) -> datetime:
        """Set (or move) a deadline; returns `due`."""
        self._due[_timer(which)] = due
        return due

    def disarm(self, *which: Timer | Deadline) -> None:
        for one in which:
            self._due.pop(_timer(one), None)

    def disarm_kinds(self, *kinds: Deadline) -> None:
        for timer in [t for t in self._due if t.kind in kinds]:
            del self._due[timer]

    def clear(self) -> None:
        self._due.clear()

    def due_at(self, which: Timer | Deadline) -> datetime | None:
        return self._due.get(_timer(which))

    def next(self) -> tuple[Timer, datetime] | None:
        """The deadline that falls due first (the first armed among equals)."""
        return min(self._due.items(), key=lambda item: item[1]) if self._due else None

    def due_by(self, now: datetime) -> list[tuple[Timer, datetime]]:
        """The deadlines due at `now`, earliest first. A snapshot: firing one may disarm others, so
        check `timer in deadlines` before firing each."""
        return [(t, due) for t, due in sorted(self._due.items(), key=lambda item: item[1]) if due <= now]

    def release_hold(self, held: timedelta, now: datetime, *, payment_limit: datetime) -> None:
        """A hold paused every deadline: the payment and confirmation deadlines move on by the time
        held (the payment one no later than `payment_limit`); of the reminders that fell due meanwhile
        one catch-up is kept, none when the payment deadline has passed too (it cancels at once)."""
        missed = sorted(
            ((due, t) for t, due in self._due.items() if t.kind == Deadline.PAYMENT_REMINDER and due <= now),
            key=lambda item: (item[0], item[1].name),
        )
        payment_due = self._due.get(Timer(Deadline.PAYMENT_TIMEOUT))
        if payment_due is not None:
            payment_due = self.arm(Deadline.PAYMENT_TIMEOUT, min(payment_due + held, payment_limit))
        cancelled_now = payment_due is not None and payment_due <= now
        for _, timer in missed if cancelled_now else missed[:-1]:
            del self._due[timer]
        confirm_by = self._due.get(Timer(Deadline.CONFIRM_BY))
        if confirm_by is not None:
            self.arm(Deadline.CONFIRM_BY, confirm_by + held)
