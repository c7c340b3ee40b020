"""DESIGN.md §9 "No lock across the network", pinned with the harness's lock probe.

Every test here runs with `LockProbe` on: each request an app sends to another service is
checked against the sender's own database, and one sent while the sending call chain holds a
write transaction (SQLite: the database-wide write lock; PostgreSQL: row locks) fails the
test. First the probe itself (it catches what it must and nothing else), then credit's paths
that call ledger: its inbox handlers, evaluations and hold rechecks.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import ClassVar

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from shared.app import ServiceSpec, create_service_app
from shared.db import service_metadata
from shared.idempotency import idempotency_table
from shared.settings import BaseServiceSettings
from shared.subscriptions import Subscriber, TwoPhase, inbox_table, subscription_table
from tests.fixtures.credit import new_customer, profile, reserve, set_limit, yuan
from tests.fixtures.ledger import issue, pay, scan
from tests.harness import SERVICE_KEY, RoutingTransport, running_system

LEDGER = "http://ledger.test"


@pytest.fixture
async def system(database_urls, keys_file, keys, clock, tmp_path, system_overrides):
    async with running_system(database_urls=database_urls, keys_file=keys_file, keys=keys,
                              clock=clock, data_dir=tmp_path, lock_probe=True,
                              **system_overrides) as running:
        yield running


def _sqlite(system, service: str) -> bool:
    return system.state(service).db.sqlite


class LedgerDown(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("ledger is down", request=request)


# ---------------------------------------------------------------- the probe


class TestTheProbe:
    async def test_a_call_inside_a_write_transaction_is_caught_with_caller_url_and_stack(
            self, system):
        credit, probe = system.state("credit"), system.lock_probe
        async with credit.db.session() as session, session.begin():
            await session.execute(text("UPDATE customers SET version = version WHERE 1 = 0"))
            await credit.http.call("ledger", "GET", "/health")
        [violation] = probe.take()
        assert (violation.caller, violation.method, violation.url) == (
            "credit", "GET", "http://ledger.test/health")
        assert violation.held == ("SQLite: database is locked" if _sqlite(system, "credit")
                                  else "PostgreSQL: RowExclusiveLock on customers")
        assert any("test_a_call_inside_a_write_transaction" in frame
                   for frame in violation.stack), violation.stack
        assert any(frame.startswith("shared/http.py") for frame in violation.stack)
        assert "credit sent GET http://ledger.test/health while holding" in str(violation)

    async def test_reads_and_committed_work_are_not_caught(self, system):
        credit, probe = system.state("credit"), system.lock_probe
        before = probe.checks["credit"]
        async with credit.db.session(read_only=True) as session:
            await session.execute(text("SELECT count(*) FROM customers"))
            await credit.http.call("ledger", "GET", "/health")
        async with credit.db.session() as session:
            async with session.begin():
                await session.execute(text("UPDATE customers SET version = version WHERE 1 = 0"))
            await credit.http.call("ledger", "GET", "/health")  # committed: nothing held
        assert probe.take() == []
        assert probe.checks["credit"] == before + 2

    async def test_a_write_session_that_only_read_holds_the_lock_on_sqlite_only(self, system):
        """SQLite begins a write session with BEGIN IMMEDIATE, which locks the whole database
        at its first statement, even a SELECT; a PostgreSQL transaction that only read holds
        no row lock."""
        credit, probe = system.state("credit"), system.lock_probe
        async with credit.db.session() as session, session.begin():
            await session.execute(text("SELECT count(*) FROM customers"))
            await credit.http.call("ledger", "GET", "/health")
        caught = probe.take()
        assert len(caught) == (1 if _sqlite(system, "credit") else 0)

    async def test_row_locks_are_caught_on_postgresql(self, system):
        credit, probe = system.state("credit"), system.lock_probe
        customer_id = await new_customer(system)
        async with credit.db.session() as session, session.begin():
            await session.execute(text("SELECT id FROM customers WHERE id = :id FOR UPDATE")
                                  if not _sqlite(system, "credit") else
                                  text("SELECT id FROM customers WHERE id = :id"),
                                  {"id": customer_id})
            await credit.http.call("ledger", "GET", "/health")
        [violation] = probe.take()
        if not _sqlite(system, "credit"):
            assert "RowShareLock on customers" in violation.held

    async def test_another_task_s_transaction_is_not_the_caller_s(self, system):
        """A concurrent request holding the lock is not blamed on this one's call; a task the
        transaction's holder starts inside it is."""
        credit, probe = system.state("credit"), system.lock_probe
        holding, done = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with credit.db.session() as session, session.begin():
                await session.execute(text("UPDATE customers SET version = version WHERE 1 = 0"))
                holding.set()
                await done.wait()

        task = asyncio.create_task(writer())
        await holding.wait()
        await credit.http.call("ledger", "GET", "/health")
        done.set()
        await task
        assert probe.take() == []

        async with credit.db.session() as session, session.begin():
            await session.execute(text("UPDATE customers SET version = version WHERE 1 = 0"))
            await asyncio.create_task(credit.http.call("ledger", "GET", "/health"))
        assert [v.caller for v in probe.take()] == ["credit"]


class ProbeSettings(BaseServiceSettings):
    service_name: ClassVar[str] = "probe"
    probe_database_url: str | None = None
    probe_url: str = "http://probe.test"


async def test_an_inbox_handler_calling_out_in_the_write_transaction_is_caught(system, tmp_path):
    """A plain handler runs inside the inbox's write transaction: a call there is caught. The
    same call in a two-phase handler's prepare is not, and its apply gets what it found."""
    metadata = service_metadata()
    seen: list[tuple[str, int]] = []

    async def plain(session, app, event):
        await app.state.http.call("ledger", "GET", "/health")
        seen.append(("plain", 0))

    async def ask(app, event):
        return (await app.state.http.call("ledger", "GET", "/health")).status_code

    async def write(session, app, event, status):
        seen.append(("two-phase", status))

    subscriber = Subscriber(service="probe", subscriptions=subscription_table(metadata),
                            inbox=inbox_table(metadata),
                            handlers={"order.review_overdue": plain,
                                      "order.exception_overdue": TwoPhase(ask, write)})
    spec = ServiceSpec(name="probe", title="probe", description="", metadata=metadata,
                       idempotency=idempotency_table(metadata), routers=[], subscriber=subscriber)
    settings = ProbeSettings(
        probe_database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}", service_key=SERVICE_KEY,
        workers_enabled=False, http_retries=1, ledger_url=LEDGER,
        notifier_url="http://notifier.test")
    routing = RoutingTransport(system.mounts, caller="probe", probe=system.lock_probe)
    app = create_service_app(spec, settings, clock=system.clock, http_mounts={"all://": routing})
    system.mounts["http://probe.test"] = httpx.ASGITransport(app=app)
    async with LifespanManager(app):
        async with app.state.db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        system.lock_probe.watch("probe", app)
        await subscriber.register(app)
        for type_ in ("order.exception_overdue", "order.review_overdue"):
            r = await system.client("notifier", "service").post("/v1/events", json={
                "id": str(uuid.uuid4()), "type": type_, "source": "orders", "subject": "x",
                "occurred_at": system.clock.now().isoformat(), "data": {}})
            assert r.status_code == 201, r.text
            await system.pump()
    assert seen == [("two-phase", 200), ("plain", 0)]
    [violation] = system.lock_probe.take()
    assert (violation.caller, violation.url) == ("probe", "http://ledger.test/health")
    assert any("in plain" in frame for frame in violation.stack), violation.stack


# ---------------------------------------------------------------- credit's paths


async def _credit_hears_nothing(system) -> None:
    endpoints = (await system.client("notifier").get("/v1/webhook-endpoints")).json()["items"]
    [credit] = [e for e in endpoints if e["url"] == "http://credit.test/v1/inbox"]
    r = await system.client("notifier").patch(f"/v1/webhook-endpoints/{credit['id']}",
                                              json={"enabled": False})
    assert r.status_code == 200, r.text


async def _holds(system, customer_id: str) -> list[dict]:
    return (await profile(system, customer_id))["holds"]


class TestCredit:
    async def test_ledger_events_are_handled_asking_ledger_before_writing(self, system):
        """invoice.issued (reservation converted), invoice.overdue (hold), payment.received and
        invoice.paid (released), payment.reversed (held again), credit_note.issued (released)."""
        probe = system.lock_probe
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(600_000))
        order_id = str(uuid.uuid4())
        assert (await reserve(system, customer_id, yuan(40_000), order_id=order_id)).status_code == 201
        invoice = await issue(system, amount=yuan(40_000), customer=customer_id, order_id=order_id,
                              due_in_days=0)
        await system.pump()
        got = await profile(system, customer_id)
        assert got["exposure"]["open_receivables_minor"] == yuan(40_000)
        assert got["exposure"]["reserved_minor"] == 0

        system.clock.advance(timedelta(days=30))
        await scan(system)  # invoice.overdue at 1, 15 and 30 days
        await system.pump()
        assert [h["source_ref"] for h in await _holds(system, customer_id)] == [invoice["id"]]

        payment = await pay(system, yuan(40_000), customer=customer_id, allocations=[
            {"invoice_id": invoice["id"], "amount_minor": yuan(40_000)}])
        await system.pump()
        assert await _holds(system, customer_id) == []

        r = await system.client("ledger", "finance").post(
            f"/v1/payments/{payment['id']}/reverse", json={"reason": "cheque bounced"})
        assert r.status_code == 200, r.text
        await system.pump()
        assert [h["source_ref"] for h in await _holds(system, customer_id)] == [invoice["id"]]

        r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
            "invoice_id": invoice["id"], "amount_minor": yuan(40_000), "reason": "returned"})
        assert r.status_code == 201, r.text
        await system.pump()
        got = await profile(system, customer_id)
        assert got["holds"] == [] and got["exposure"]["open_receivables_minor"] == 0
        assert probe.checks["credit"] >= 12  # credit did ask ledger, each time checked

    async def test_ledger_down_while_an_overdue_event_is_handled(self, system):
        customer_id = await new_customer(system)
        invoice = await issue(system, amount=yuan(1_000), customer=customer_id, due_in_days=0)
        await system.pump()
        healthy, before = system.mounts[LEDGER], system.lock_probe.checks["credit"]
        system.mounts[LEDGER] = LedgerDown()
        try:
            system.clock.advance(timedelta(days=30))
            r = await system.client("notifier", "service").post("/v1/events", json={
                "id": str(uuid.uuid4()), "type": "invoice.overdue", "source": "ledger",
                "subject": invoice["id"], "occurred_at": system.clock.now().isoformat(),
                "data": {"invoice_id": invoice["id"], "invoice_number": invoice["number"],
                         "customer_id": customer_id, "days_overdue": 30, "level": 30,
                         "currency": "CNY"}})
            assert r.status_code == 201, r.text
            await system.pump()
        finally:
            system.mounts[LEDGER] = healthy
        assert len(await _holds(system, customer_id)) == 1  # placed anyway: fail closed
        assert system.lock_probe.checks["credit"] > before

    async def test_an_evaluation_asks_ledger_before_writing(self, system):
        customer_id = await new_customer(system)
        await issue(system, amount=yuan(1_000), customer=customer_id)
        manager = system.client("credit", "credit_manager")
        body = {"financials": {
            "revenue_minor": yuan(50_000_000), "net_profit_minor": yuan(4_000_000),
            "total_assets_minor": yuan(80_000_000), "total_liabilities_minor": yuan(35_000_000),
            "current_assets_minor": yuan(30_000_000),
            "current_liabilities_minor": yuan(15_000_000), "years_in_business": 12,
            "currency": "CNY"}}
        before = system.lock_probe.checks["credit"]
        r = await manager.post(f"/v1/customers/{customer_id}/evaluations", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["inputs"]["payment_history"] is not None
        r = await manager.post(f"/v1/customers/{customer_id}/evaluations", json=body,
                               headers={"Idempotency-Key": "evaluation-1"})
        assert r.status_code == 201, r.text
        assert system.lock_probe.checks["credit"] == before + 2

    async def test_hold_rechecks_ask_ledger_before_releasing(self, system):
        first, second = await new_customer(system, name="First"), await new_customer(
            system, name="Second")
        invoices = [await issue(system, amount=yuan(1_000), customer=c, due_in_days=0)
                    for c in (first, second)]
        await system.pump()
        system.clock.advance(timedelta(days=30))
        await scan(system)
        await system.pump()
        assert all([await _holds(system, c) for c in (first, second)])
        await _credit_hears_nothing(system)
        for invoice in invoices:
            await pay(system, yuan(1_000), customer=invoice["customer_id"], allocations=[
                {"invoice_id": invoice["id"], "amount_minor": yuan(1_000)}])
        before = system.lock_probe.checks["credit"]
        r = await system.client("credit", "credit_manager").post("/v1/hold-rechecks")
        assert r.status_code == 200 and r.json() == {"released": 2}, r.text
        assert await _holds(system, first) == [] and await _holds(system, second) == []
        assert await system.state("credit").jobs["hold-recheck"]() == 0
        assert system.lock_probe.checks["credit"] >= before + 2
