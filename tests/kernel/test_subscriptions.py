"""A service receiving events through notifier (shared.subscriptions), end to end in-process."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from typing import ClassVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.engine import make_url

from shared import webhooks
from shared.app import ServiceSpec, create_service_app
from shared.db import service_metadata
from shared.errors import DependencyUnavailable
from shared.idempotency import idempotency_table
from shared.settings import BaseServiceSettings
from shared.subscriptions import (
    Subscriber,
    TwoPhase,
    handlers_of,
    inbox_table,
    subscription_table,
)
from tests.harness import SERVICE_KEY, RoutingTransport, external_endpoints, sqlite_write_locked


class ProbeSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "probe"
    probe_database_url: str | None = None
    probe_url: str = "http://probe.test"


@asynccontextmanager
async def probe_service(system, tmp_path, handlers):
    """A small service `probe` at http://probe.test subscribed with `handlers`."""
    metadata = service_metadata()
    subscriber = Subscriber(service="probe", handlers=handlers,
                            subscriptions=subscription_table(metadata),
                            inbox=inbox_table(metadata))
    spec = ServiceSpec(name="probe", title="probe", description="", metadata=metadata,
                       idempotency=idempotency_table(metadata), routers=[],
                       subscriber=subscriber)
    settings = ProbeSettings(
        probe_database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}",
        service_key=SERVICE_KEY, workers_enabled=False, http_retries=1,
        notifier_url="http://notifier.test")
    app = create_service_app(spec, settings, clock=system.clock,
                             http_mounts={"all://": RoutingTransport(system.mounts)})
    system.mounts["http://probe.test"] = httpx.ASGITransport(app=app)
    async with LifespanManager(app):
        async with app.state.db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        yield app, subscriber


@pytest.fixture
async def probe(system, tmp_path):
    handled: list[str] = []

    async def on_order_created(session, app, event):
        handled.append(event.data["order_id"])

    async with probe_service(system, tmp_path, {"order.created": on_order_created}) as (app, sub):
        yield app, sub, handled


def _envelope(system, event_id: str, order_id: str, type_: str = "order.created") -> dict:
    return {"id": event_id, "type": type_, "occurred_at": system.clock.now().isoformat(),
            "source": "orders", "subject": order_id, "data": {"order_id": order_id}}


async def _publish(system, event_id: str, order_id: str, type_: str = "order.created") -> None:
    r = await system.client("notifier", "service").post(
        "/v1/events", json=_envelope(system, event_id, order_id, type_))
    assert r.status_code == 201, r.text


async def test_subscribe_receive_once_and_refuse_forgeries(system, probe):
    app, subscriber, handled = probe
    await subscriber.register(app)
    await subscriber.register(app)  # idempotent: one endpoint at notifier
    endpoints = external_endpoints(
        (await system.client("notifier").get("/v1/webhook-endpoints")).json()["items"])
    assert [e["url"] for e in endpoints] == ["http://probe.test/v1/inbox"]
    assert endpoints[0]["event_types"] == ["order.created"]

    event_id = "3f2b8e64-9a0c-4d7e-8f51-6c2d1e0b9a11"
    await _publish(system, event_id, "order-1")
    await system.pump()
    assert handled == ["order-1"]

    deliveries = (await system.client("notifier").get(
        "/v1/deliveries", params={"event_id": event_id})).json()["items"]
    retried = await system.client("notifier").post(f"/v1/deliveries/{deliveries[0]['id']}/retry")
    assert retried.status_code == 200, retried.text
    await system.pump()
    assert handled == ["order-1"], "a redelivery must be acknowledged, not handled again"
    async with app.state.db.session() as session:
        rows = (await session.execute(select(subscriber.inbox))).all()
    assert [r.event_id for r in rows] == [event_id]

    forged = await httpx.AsyncClient(transport=system.mounts["http://probe.test"],
                                     base_url="http://probe.test").post(
        "/v1/inbox", content=b'{"id": "x"}',
        headers={"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"})
    assert forged.status_code == 401 and forged.json()["code"] == "unauthorized"


async def test_registration_waits_for_notifier(system, probe):
    app, subscriber, _ = probe
    healthy = system.mounts["http://notifier.test"]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    system.mounts["http://notifier.test"] = httpx.MockTransport(down)
    with pytest.raises(DependencyUnavailable):
        await subscriber.register(app)
    assert not await subscriber.registered(app)
    system.mounts["http://notifier.test"] = healthy
    await subscriber.register(app)
    assert await subscriber.registered(app)


def test_handlers_of_keeps_every_part_s_handler_in_order():
    async def refresh(session, app, event): ...

    async def recheck(session, app, event): ...

    async def place(session, app, event): ...

    joined = handlers_of({"payment.received": refresh, "invoice.issued": refresh},
                         {"payment.received": recheck, "invoice.overdue": place})
    assert joined == {"payment.received": [refresh, recheck], "invoice.issued": [refresh],
                      "invoice.overdue": [place]}
    metadata = service_metadata()
    subscriber = Subscriber(service="probe", handlers=joined,
                            subscriptions=subscription_table(metadata), inbox=inbox_table(metadata))
    assert subscriber.handlers["payment.received"] == (refresh, recheck)
    assert subscriber.event_types == ["invoice.issued", "invoice.overdue", "payment.received"]
    single = Subscriber(service="probe", handlers={"invoice.paid": place},
                        subscriptions=subscription_table(service_metadata()),
                        inbox=inbox_table(service_metadata()))
    assert single.handlers == {"invoice.paid": (place,)}


# ---------------------------------------------------------------- two-phase handlers


def _db_file(app) -> str:
    return str(make_url(app.state.db.url).database)


async def _deliveries(system, event_id: str) -> list[dict]:
    r = await system.client("notifier").get("/v1/deliveries", params={"event_id": event_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # only the probe subscribes to order.created


async def test_two_phase_prepares_before_the_write_transaction_and_applies_in_it(system, tmp_path):
    """prepare runs with the database unlocked and may fail with 503 (redelivered later, nothing
    recorded); apply runs in the inbox's write transaction with prepare's facts; a plain
    handler of the same event runs there too, in order; a redelivery prepares nothing."""
    log: list[tuple] = []
    ledger_up = False

    async def prepare(app, event):
        log.append(("prepare", sqlite_write_locked(_db_file(app))))
        if not ledger_up:
            raise DependencyUnavailable("ledger is down", dependency="ledger")
        return {"seen": event.data["order_id"]}

    async def apply(session, app, event, facts):
        inbox = app.state.subscriber.inbox
        recorded = (await session.execute(select(inbox.c.event_id))).scalars().all()
        log.append(("apply", facts, recorded, sqlite_write_locked(_db_file(app))))

    async def plain(session, app, event):
        log.append(("plain",))

    handlers = handlers_of({"order.created": TwoPhase(prepare, apply)}, {"order.created": plain})
    async with probe_service(system, tmp_path, handlers) as (app, subscriber):
        await subscriber.register(app)
        event_id = str(uuid.uuid4())
        await _publish(system, event_id, "order-7")
        await system.pump()
        assert log == [("prepare", False)]  # 503: nothing applied, nothing recorded
        [delivery] = await _deliveries(system, event_id)
        assert delivery["status"] == "pending" and delivery["attempts"][0]["response_status"] == 503
        async with app.state.db.session(read_only=True) as session:
            assert (await session.execute(select(subscriber.inbox))).all() == []

        ledger_up = True
        log.clear()
        r = await system.client("notifier").post(f"/v1/deliveries/{delivery['id']}/retry")
        assert r.status_code == 200, r.text
        await system.pump()
        assert log == [("prepare", False), ("apply", {"seen": "order-7"}, [event_id], True),
                       ("plain",)]

        log.clear()
        r = await system.client("notifier").post(f"/v1/deliveries/{delivery['id']}/retry")
        assert r.status_code == 200, r.text
        await system.pump()
        assert log == [], "a redelivery is acknowledged without preparing"


async def test_two_deliveries_of_one_event_at_once_apply_once(system, tmp_path):
    """Both pass the duplicate check and prepare; the inbox insert lets one apply."""
    prepared, applied = [], []
    both_prepared = asyncio.Event()

    async def prepare(app, event):
        prepared.append(event.id)
        if len(prepared) == 2:
            both_prepared.set()
        await asyncio.wait_for(both_prepared.wait(), timeout=5)

    async def apply(session, app, event, facts):
        applied.append(event.id)

    async with probe_service(system, tmp_path,
                             {"order.created": TwoPhase(prepare, apply)}) as (app, subscriber):
        await subscriber.register(app)
        event_id = str(uuid.uuid4())
        body = json.dumps(_envelope(system, event_id, "order-8")).encode()
        headers = webhooks.signed_headers(app.state.subscription_secret, event_id,
                                          int(system.clock.now().timestamp()), body)
        inbox = httpx.AsyncClient(transport=system.mounts["http://probe.test"],
                                  base_url="http://probe.test")
        first, second = await asyncio.gather(inbox.post("/v1/inbox", content=body, headers=headers),
                                             inbox.post("/v1/inbox", content=body, headers=headers))
        await inbox.aclose()
    assert sorted([first.json()["status"], second.json()["status"]]) == ["duplicate", "handled"]
    assert len(prepared) == 2 and len(applied) == 1


def test_handlers_of_joins_plain_and_two_phase_handlers():
    async def refresh_prepare(app, event): ...

    async def refresh_apply(session, app, event, facts): ...

    async def close(session, app, event): ...

    refresh = TwoPhase(refresh_prepare, refresh_apply)
    joined = handlers_of({"invoice.paid": refresh}, {"invoice.paid": close})
    assert joined == {"invoice.paid": [refresh, close]}
    metadata = service_metadata()
    subscriber = Subscriber(service="probe", handlers=joined,
                            subscriptions=subscription_table(metadata), inbox=inbox_table(metadata))
    assert subscriber.handlers["invoice.paid"] == (refresh, close)
    single = Subscriber(service="probe", handlers={"invoice.paid": refresh},
                        subscriptions=subscription_table(service_metadata()),
                        inbox=inbox_table(service_metadata()))
    assert single.handlers == {"invoice.paid": (refresh,)}
