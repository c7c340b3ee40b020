"""Working-day arithmetic for review deadlines: weekends and configured holidays are skipped."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta


def is_working_day(day: date, holidays: Collection[date] = ()) -> bool:
    """Monday to Friday, and not a holiday."""
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: datetime, days: int, holidays: Collection[date] = ()) -> datetime:
    """The same time of day, `days` working days after `start` (its calendar date in its zone).

    Days are counted from the day after `start`, so a Friday 09:00 plus 1 is the next Monday
    09:00 and a Saturday plus 1 is Monday too; `days` = 0 is `start` itself.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    at = start
    remaining = days
    while remaining:
        at += timedelta(days=1)
        if is_working_day(at.date(), holidays):
            remaining -= 1
    return at
