"""The test clock (DESIGN.md §10): business time moved forward on request, for integrators.

With `O2C_TEST_CLOCK=true` a service's `app.state.clock` is a `TestClock` and it serves
`GET /v1/test-clock` (any key) and `PUT /v1/test-clock {"now": ts}` (admin): the clock jumps to
`now` and runs on from there; an earlier `now` is 409 `conflict`. Without the setting neither
path exists (404) and the clock is the system's.

The offset is a row of the service's own database, so it survives a restart and every
process of a service (replicas) runs on the same time: each reads it at start and every
`test_clock_sync_seconds`, and a jump wakes that process's periodic workers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, select

from shared.auth import CurrentPrincipal, require
from shared.clock import TestClock, pause
from shared.dates import AwareTimestamp
from shared.db import Database, SessionDep, UTCDateTime, after_commit, dialect_insert
from shared.errors import Conflict, problem_responses
from shared.polling import SchemaWait
from shared.schemas import RequestModel

log = logging.getLogger("o2c.testclock")

TABLE = "test_clock"
_ROW = 1  # the one row


def clock_table(metadata: MetaData) -> Table:
    """The test clock's offset from wall time, in microseconds; no row means none."""
    return Table(
        TABLE, metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("offset_us", BigInteger, nullable=False),
        Column("set_at", UTCDateTime, nullable=False),  # wall time of the last jump
    )


def create_table(op: Any) -> None:
    """The migration of each service that adds the table (alembic `op`)."""
    import sqlalchemy as sa

    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offset_us", sa.BigInteger(), nullable=False),
        sa.Column("set_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


_DURATION = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """`31d`, `12h`, `1d6h`, `90m`, `2w`: a positive duration (`o2c clock advance`)."""
    value = text.strip().lower()
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"{text!r} is not a duration such as 31d, 12h, 1d6h or 90m")
    delta = sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
    if delta <= timedelta(0):
        raise ValueError("the duration must be more than zero")
    return delta


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time (`Z` or an offset; without one it is UTC) or a date (its midnight UTC)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time such as 2027-01-05T09:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


async def stored_offset(db: Database, table: Table) -> timedelta:
    async with db.session(read_only=True) as session:
        value = (await session.execute(
            select(table.c.offset_us).where(table.c.id == _ROW))).scalar_one_or_none()
    return timedelta(microseconds=value or 0)


async def keep_in_step(app: FastAPI, stop: asyncio.Event) -> None:
    """Worker: apply the stored offset (another process's jump, or one from before a restart)."""
    clock: TestClock = app.state.clock
    table: Table = app.state.test_clock_table
    waiting = SchemaWait(log, "test clock")
    while not stop.is_set():
        try:
            if clock.apply(await stored_offset(app.state.db, table)):
                log.warning("test clock: now %s", clock.now().isoformat())
        except Exception as exc:
            if not waiting.failed(exc):
                log.exception("test clock: could not read the stored offset")
        else:
            waiting.succeeded()
        await pause(stop, app.state.settings.test_clock_sync_seconds)


class TestClockSet(RequestModel):
    __test__ = False

    now: AwareTimestamp


class TestClockPublic(BaseModel):
    __test__ = False

    now: datetime


def router(table: Table) -> APIRouter:
    routes = APIRouter(tags=["test clock"])

    @routes.get("/v1/test-clock", response_model=TestClockPublic)
    async def get_test_clock(request: Request, principal: CurrentPrincipal) -> TestClockPublic:
        """This service's business time (DESIGN.md §10: integration testing only)."""
        return TestClockPublic(now=request.app.state.clock.now())

    @routes.put("/v1/test-clock", response_model=TestClockPublic,
                dependencies=[require()], responses=problem_responses(409))
    async def put_test_clock(body: TestClockSet, request: Request, session: SessionDep,
                             principal: CurrentPrincipal) -> TestClockPublic:
        """Move this service's business time forward to `now`; it runs on from there.

        Every time-based rule reads the new time: scans without `as_of` run as of the new
        today, and the periodic scans run at once. Only forward: an earlier `now` is 409
        `conflict`. `o2c clock set|advance` moves all four services."""
        clock: TestClock = request.app.state.clock
        stored = (await session.execute(select(table.c.offset_us).where(
            table.c.id == _ROW).with_for_update())).scalar_one_or_none()
        wall = clock.wall_now()
        current = wall + max(clock.offset, timedelta(microseconds=stored or 0))
        if body.now < current:
            raise Conflict(f"The test clock only moves forward; it is {current.isoformat()} "
                           f"here, later than {body.now.isoformat()}.")
        offset = body.now - wall
        insert = dialect_insert(session)(table).values(
            id=_ROW, offset_us=_micros(offset), set_at=wall)
        await session.execute(insert.on_conflict_do_update(
            index_elements=[table.c.id], set_={"offset_us": _micros(offset), "set_at": wall}))
        # This process jumps once the row is committed: the workers it wakes, and replicas,
        # read the same time.
        after_commit(session, lambda: clock.apply(offset))
        log.warning("test clock moved to %s by %s", body.now.isoformat(), principal.name)
        return TestClockPublic(now=body.now)

    return routes
