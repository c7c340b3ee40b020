"""The delivery worker's concurrency: limits per endpoint and overall, a slow endpoint that
does not hold up the others, ingest waking the background loop, leases that bring back what a
killed process had claimed, and two workers never sending the same delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notifier.delivery import DeliveryWorker
from services.notifier.webhook_client import make_webhook_client
from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe

SLOW_URL = "http://slow.test"
PER_ENDPOINT = 2


@pytest.fixture
def system_overrides() -> dict[str, dict]:
    # a poll interval far longer than any test: only ingest's wake-up can explain a delivery
    return {"notifier": {"delivery_endpoint_concurrency": PER_ENDPOINT, "delivery_concurrency": 6,
                         "delivery_poll_seconds": 60, "delivery_lease_seconds": 60}}


class SlowReceiver:
    """A webhook receiver that holds every request until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.waiting = 0
        self.most_waiting = 0
        self.ids: list[str] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            await self.release.wait()
        finally:
            self.waiting -= 1
        self.ids.append(request.headers["webhook-id"])
        return Response(status_code=204)


@pytest.fixture
def slow(system) -> SlowReceiver:
    receiver = SlowReceiver()
    system.mounts[SLOW_URL] = httpx.ASGITransport(app=receiver.app)
    return receiver


async def _until(condition: Callable[[], bool | Awaitable[bool]], seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.02)


def _worker(system) -> DeliveryWorker:
    """Another delivery worker on the same database: a second replica of notifier."""
    state = system.state("notifier")
    return DeliveryWorker(db=state.db, clock=system.clock, settings=state.settings,
                          client=make_webhook_client(state.settings, state.http_mounts))


async def test_a_slow_endpoint_holds_only_its_own_senders(system, slow):
    stuck = await subscribe(system, "/stuck")
    stuck_id = stuck["id"]
    await system.client("notifier").patch(f"/v1/webhook-endpoints/{stuck_id}",
                                          json={"url": SLOW_URL + "/stuck"})
    fast = await subscribe(system, "/fast")
    worker = system.state("notifier").deliveries
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run(stop))
    try:
        events = [envelope(system) for _ in range(5)]
        for event in events:  # each ingest wakes the loop
            await ingest(system, event)
        await _until(lambda: len(system.receiver.requests) == 5)
        assert slow.waiting == PER_ENDPOINT  # the rest wait in the database, unleased

        async def fast_recorded() -> bool:
            got = await deliveries(system, endpoint_id=fast["id"])
            return [d["status"] for d in got] == ["succeeded"] * 5
        await _until(fast_recorded)
        held = await deliveries(system, endpoint_id=stuck_id)
        assert {d["status"] for d in held} == {"pending"} and slow.ids == []

        slow.release.set()
        await _until(lambda: len(slow.ids) == 5)

        async def all_recorded() -> bool:
            got = await deliveries(system, endpoint_id=stuck_id)
            return [d["status"] for d in got] == ["succeeded"] * 5
        await _until(all_recorded)
    finally:
        stop.set()
        await loop
    assert slow.most_waiting == PER_ENDPOINT
    assert sorted(slow.ids) == sorted(e["id"] for e in events)
    assert all(d["attempt_count"] == 1 for d in await deliveries(system))


async def test_one_pass_sends_no_more_than_the_limits(system):
    endpoints = [await subscribe(system, f"/e{i}") for i in range(4)]
    for _ in range(3):
        await ingest(system, envelope(system))
    worker = system.state("notifier").deliveries
    passes = []  # 12 due, 3 per endpoint: at most 2 per endpoint and 6 in all per pass
    while made := await worker.deliver_once():
        paths = [r["path"] for r in system.receiver.requests[sum(passes):]]
        assert made == len(paths) <= 6
        assert max(paths.count(p) for p in set(paths)) <= PER_ENDPOINT
        passes.append(made)
    assert sum(passes) == 12 and passes[0] >= 4
    for endpoint in endpoints:
        got = await deliveries(system, endpoint_id=endpoint["id"])
        assert [d["status"] for d in got] == ["succeeded"] * 3


async def test_what_a_killed_process_claimed_comes_back_after_its_lease(system, slow):
    endpoint = await subscribe(system, "/inbox")
    await system.client("notifier").patch(f"/v1/webhook-endpoints/{endpoint['id']}",
                                          json={"url": SLOW_URL + "/inbox"})
    for _ in range(2):
        await ingest(system, envelope(system))
    killed = _worker(system)
    attempt = asyncio.create_task(killed.deliver_once())
    await _until(lambda: slow.waiting == 2)
    attempt.cancel()  # the process dies mid-send: nothing recorded, the leases stay
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await killed.aclose()
    slow.release.set()

    worker = system.state("notifier").deliveries
    assert await worker.deliver_once() == 0  # still leased by the dead process
    system.clock.advance(seconds=59)
    assert await worker.deliver_once() == 0
    system.clock.advance(seconds=2)
    assert await worker.deliver_once() == 2
    got = await deliveries(system, endpoint_id=endpoint["id"])
    assert [(d["status"], d["attempt_count"]) for d in got] == [("succeeded", 1)] * 2


async def test_two_workers_never_send_the_same_delivery(system):
    for i in range(3):
        await subscribe(system, f"/e{i}")
    for _ in range(4):
        await ingest(system, envelope(system))
    other = _worker(system)
    try:
        sent = 0
        while True:
            made = await asyncio.gather(system.state("notifier").deliveries.deliver_once(),
                                        other.deliver_once())
            if sum(made) == 0:
                break
            sent += sum(made)
    finally:
        await other.aclose()
    assert sent == 12
    pairs = [(r["path"], r["headers"]["webhook-id"]) for r in system.receiver.requests]
    assert len(pairs) == len(set(pairs)) == 12
    assert all(d["attempt_count"] == 1 and len(d["attempts"]) == 1
               for d in await deliveries(system, limit=100))


async def test_outcomes_of_one_batch_are_recorded_per_delivery(system):
    """Successes and failures settled together: each delivery its own next step, the endpoint
    failing since its latest failure."""
    ok = await subscribe(system, "/ok")
    failing = await subscribe(system, "/failing")
    original = system.mounts["http://hooks.test"]

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/failing":
            return httpx.Response(500)
        return await original.handle_async_request(request)

    system.mounts["http://hooks.test"] = httpx.MockTransport(answer)
    for _ in range(2):
        await ingest(system, envelope(system))
    assert await system.state("notifier").deliveries.deliver_once() == 4
    good = await deliveries(system, endpoint_id=ok["id"])
    bad = await deliveries(system, endpoint_id=failing["id"])
    assert [d["status"] for d in good] == ["succeeded"] * 2
    assert [(d["status"], d["attempts"][0]["error"]) for d in bad] == [("pending", "HTTP 500")] * 2
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{failing['id']}")).json()
    assert got["failing_since"] is not None
    assert (await system.client("notifier").get(
        f"/v1/webhook-endpoints/{ok['id']}")).json()["failing_since"] is None
