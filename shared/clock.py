"""The one source of time. Services read `app.state.clock`; tests freeze and move it.

Business time (`now`, `today`) is what every rule reads: due dates, ages, scans, leases,
retry times. `wall_now` is the time of the transport, which another party checks against its
own wall clock: the timestamp of a webhook signature. The two differ only under the test
clock (DESIGN.md §10), where business time has been moved forward and a receiver verifying a
signature with the Standard Webhooks libraries still reads the real time.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def today(self) -> date: ...

    def wall_now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    def wall_now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """`O2C_TEST_CLOCK` (DESIGN.md §10): wall time plus an offset that only grows.

    `shared.testclock` stores the offset in the service's database and applies it here; a
    jump wakes whatever waits on `jumped()` (the periodic workers), so a scan runs as of the
    new today at once rather than at its next interval.
    """

    __test__ = False  # not a pytest class

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._jumped: asyncio.Event | None = None

    @property
    def offset(self) -> timedelta:
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def today(self) -> date:
        return self.now().date()

    def wall_now(self) -> datetime:
        return datetime.now(UTC)

    def apply(self, offset: timedelta) -> bool:
        """Move to `offset` if it is ahead of the current one; whether the clock moved."""
        if offset <= self._offset:
            return False
        self._offset = offset
        if self._jumped is not None:
            self._jumped.set()
            self._jumped = None
        return True

    def jumped(self) -> asyncio.Event:
        """An event set at the next jump (a fresh one after each)."""
        if self._jumped is None:
            self._jumped = asyncio.Event()
        return self._jumped


async def pause(stop: asyncio.Event, seconds: float, clock: Clock | None = None) -> None:
    """Wait until `stop` is set, `seconds` pass, or a test clock jumps."""
    waits = [asyncio.ensure_future(stop.wait())]
    if isinstance(clock, TestClock):
        waits.append(asyncio.ensure_future(clock.jumped().wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


class FrozenClock:
    """A clock that only moves when told to; for tests and reproducible scans."""

    def __init__(self, at: datetime | None = None) -> None:
        self._now = (at or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)).astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.date()

    def wall_now(self) -> datetime:
        return self._now  # tests sign and verify in the frozen time

    def set(self, at: datetime) -> None:
        self._now = at.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def as_utc(value: datetime) -> datetime:
    """Treat naive datetimes (SQLite hands them back) as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
