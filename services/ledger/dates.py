"""Business days as instants: where a `date` of a report or a filter starts and ends (UTC)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` (UTC): entries posted before it count as of `day`."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
