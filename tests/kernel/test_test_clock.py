"""The test clock (DESIGN.md §10): forward only, admin only, off by default, kept across a
restart and between processes, and a jump runs the periodic workers at once.

The walk an integrator does with it (overdue, dunning, hold, broken promise, payment) runs
over real processes in tests/e2e/test_test_clock.py.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from services.credit.app import create_app
from shared.app import run_periodically
from shared.clock import TestClock, pause
from shared.testclock import parse_duration, parse_instant
from tests.harness import SERVICE_KEY, settings_for


@asynccontextmanager
async def credit(database_urls, keys_file, **overrides):
    settings = settings_for("credit", credit_database_url=database_urls["credit"],
                            api_keys_file=keys_file, service_key=SERVICE_KEY,
                            workers_enabled=False, log_json=False, **overrides)
    app = create_app(settings)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://credit.test") as client:
            yield app, client


def auth(keys, who="admin"):
    return {"Authorization": f"Bearer {keys[who]}"}


async def test_off_by_default_no_paths_and_ready_says_so(database_urls, keys_file, keys):
    async with credit(database_urls, keys_file) as (_, client):
        assert (await client.get("/v1/test-clock", headers=auth(keys))).status_code == 404
        put = await client.put("/v1/test-clock", headers=auth(keys),
                               json={"now": "2099-01-01T00:00:00Z"})
        assert put.status_code in (404, 405)
        assert (await client.get("/ready")).json()["test_clock"] is False
        assert "/v1/test-clock" not in (await client.get("/openapi.json")).json()["paths"]


async def test_forward_only_admin_only_and_every_rule_reads_it(database_urls, keys_file, keys):
    async with credit(database_urls, keys_file, test_clock=True) as (app, client):
        assert (await client.get("/ready")).json()["test_clock"] is True
        before = datetime.fromisoformat((await client.get("/v1/test-clock",
                                                          headers=auth(keys, "sales"))).json()["now"])
        assert abs(before - datetime.now(UTC)) < timedelta(seconds=5)
        target = before + timedelta(days=31)

        refused = await client.put("/v1/test-clock", headers=auth(keys, "finance"),
                                   json={"now": target.isoformat()})
        assert refused.status_code == 403
        moved = await client.put("/v1/test-clock", headers=auth(keys),
                                 json={"now": target.isoformat()})
        assert moved.status_code == 200, moved.text
        assert datetime.fromisoformat(moved.json()["now"]) == target
        assert app.state.clock.now() >= target
        assert app.state.clock.today() == target.date()
        assert abs(app.state.clock.wall_now() - datetime.now(UTC)) < timedelta(seconds=5)

        back = await client.put("/v1/test-clock", headers=auth(keys),
                                json={"now": (target - timedelta(hours=1)).isoformat()})
        assert back.status_code == 409
        assert back.json()["code"] == "conflict"
        assert "only moves forward" in back.json()["detail"]
        bad = await client.put("/v1/test-clock", headers=auth(keys), json={"now": "tomorrow"})
        assert bad.status_code == 422
        naive = await client.put("/v1/test-clock", headers=auth(keys),
                                 json={"now": "2099-01-01T00:00:00"})
        assert naive.status_code == 422  # a time without its zone is ambiguous


async def test_a_restart_and_a_second_process_run_on_the_stored_time(database_urls, keys_file,
                                                                     keys):
    target = datetime.now(UTC) + timedelta(days=40)
    async with credit(database_urls, keys_file, test_clock=True) as (_, client):
        moved = await client.put("/v1/test-clock", headers=auth(keys),
                                 json={"now": target.isoformat()})
        assert moved.status_code == 200
        async with credit(database_urls, keys_file, test_clock=True) as (replica, _):
            assert replica.state.clock.now() >= target  # read at start
    async with credit(database_urls, keys_file, test_clock=True) as (restarted, client):
        assert restarted.state.clock.now() >= target
        now = datetime.fromisoformat((await client.get("/v1/test-clock",
                                                       headers=auth(keys))).json()["now"])
        assert now >= target


async def test_a_jump_runs_the_periodic_step_at_once():
    clock, stop = TestClock(), asyncio.Event()
    steps: list[datetime] = []
    ran = asyncio.Event()

    async def step() -> None:
        steps.append(clock.now())
        ran.set()

    task = asyncio.create_task(run_periodically(stop, 3600, step, "test", clock))
    await asyncio.wait_for(ran.wait(), timeout=5)
    ran.clear()
    assert clock.apply(timedelta(days=31))
    await asyncio.wait_for(ran.wait(), timeout=5)  # not an hour later
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert len(steps) == 2 and steps[1] - steps[0] >= timedelta(days=31)


async def test_the_clock_never_goes_back_and_a_pause_ends_on_stop():
    clock = TestClock()
    assert clock.apply(timedelta(hours=2))
    assert not clock.apply(timedelta(hours=1))
    assert not clock.apply(timedelta(hours=2))
    assert clock.offset == timedelta(hours=2)
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(pause(stop, 3600, clock), timeout=5)


@pytest.mark.parametrize("text, expected", [
    ("31d", timedelta(days=31)), ("12h", timedelta(hours=12)), ("1d6h", timedelta(days=1, hours=6)),
    ("90m", timedelta(minutes=90)), ("2w", timedelta(weeks=2)), ("45s", timedelta(seconds=45))])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "31", "d", "-1d", "0d", "1x", "1d 2h", "1.5d"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_instants():
    assert parse_instant("2027-01-05T09:00:00Z") == datetime(2027, 1, 5, 9, tzinfo=UTC)
    assert parse_instant("2027-01-05T17:00:00+08:00") == datetime(2027, 1, 5, 9, tzinfo=UTC)
    assert parse_instant("2027-01-05") == datetime(2027, 1, 5, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_instant("next week")
