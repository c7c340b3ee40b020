"""A service receiving events through notifier (shared.subscriptions), end to end in-process."""

from __future__ import annotations

from typing import ClassVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from shared.app import ServiceSpec, create_service_app
from shared.db import service_metadata
from shared.errors import DependencyUnavailable
from shared.idempotency import idempotency_table
from shared.settings import BaseServiceSettings
from shared.subscriptions import Subscriber, handlers_of, inbox_table, subscription_table
from tests.harness import SERVICE_KEY, RoutingTransport, external_endpoints


class ProbeSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "probe"
    probe_database_url: str | None = None
    probe_url: str = "http://probe.test"


@pytest.fixture
async def probe(system, tmp_path):
    metadata = service_metadata()
    handled: list[str] = []

    async def on_order_created(session, app, event):
        handled.append(event.data["order_id"])

    subscriber = Subscriber(service="probe", handlers={"order.created": on_order_created},
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
        yield app, subscriber, handled


async def _publish(system, event_id: str, order_id: str) -> None:
    r = await system.client("notifier", "service").post("/v1/events", json={
        "id": event_id, "type": "order.created", "occurred_at": system.clock.now().isoformat(),
        "source": "orders", "subject": order_id, "data": {"order_id": order_id}})
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
