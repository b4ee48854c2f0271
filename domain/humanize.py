"""Durations and times as people write them ("2 h 5 min", "2026-12-04 05:56 UTC"): pure and
deterministic, so workflow code (timeline text) can use them and replays write the same words.

babel's format_timedelta was considered: it rounds to one unit ("2 hours" for 2 h 5 min) and is
locale data the workflow sandbox would have to load; timeline text needs the two largest units.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_UNITS: tuple[tuple[str, str, int], ...] = (
    ("day", "days", 86_400),
    ("h", "h", 3_600),
    ("min", "min", 60),
    ("s", "s", 1),
)


def duration(delta: timedelta, *, parts: int = 2) -> str:
    """The largest unit and the next `parts - 1` below it, rounded down: "3 days 4 h", "2 h 5 min",
    "45 s", "1 day" (for 1 day 0 h 3 min). Under a second reads "0 s" (a timeline never needs
    microseconds); a negative delta gets a leading "-"."""
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    counts: list[tuple[int, str]] = []
    rest = abs(seconds)
    for singular, plural, size in _UNITS:
        count, rest = divmod(rest, size)
        counts.append((count, singular if count == 1 else plural))
    first = next((i for i, (count, _) in enumerate(counts) if count), None)
    if first is None:
        return "0 s"
    # The largest unit and the ones right below it: "1 day 3 min" would hide the zero hours.
    words = [f"{count} {unit}" for count, unit in counts[first : first + parts] if count]
    return sign + " ".join(words)


def moment(at: datetime) -> str:
    """A point in time to the minute, in UTC and saying so: "2026-12-04 05:56 UTC".

    A naive datetime is taken as UTC (the database hands some back that way)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M UTC")
