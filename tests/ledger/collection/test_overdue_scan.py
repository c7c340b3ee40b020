"""The overdue scan over weeks of simulated time: each level once, catch-up, pauses, resume."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.ledger.collection import scan as scan_module
from tests.fixtures.ledger import (
    OTHER_CUSTOMER,
    invoice,
    issue,
    outbox_events,
    overdue_events,
    pay,
    problem_fields,
    scan,
)

EVENT_KEYS = {"invoice_id", "invoice_number", "order_id", "customer_id", "salesperson_id",
              "days_overdue", "level", "outstanding_minor", "currency", "due_date"}


class TestThresholds:
    async def test_each_level_once_day_by_day(self, system):
        clock = system.clock  # Mon 2026-01-05
        inv = await issue(system, amount=10_000, due_in_days=0)  # due 2026-01-05
        assert (await scan(system))["crossings_emitted"] == 0  # due today: not overdue yet
        clock.advance(days=1)
        first = await scan(system)
        assert (first["as_of"], first["status"], first["crossings_emitted"]) == ("2026-01-06", "completed", 1)
        again = await scan(system)  # the same day again: nothing new
        assert again["crossings_emitted"] == 0 and again["id"] != first["id"]
        assert await overdue_events(system, inv["id"]) == [(1, 1)]
        for _ in range(35):  # a daily scan for five weeks
            clock.advance(days=1)
            await scan(system)
        assert await overdue_events(system, inv["id"]) == [(1, 1), (15, 15), (30, 30)]
        got = (await invoice(system, inv["id"]))
        assert (got["overdue"], got["days_overdue"], got["disputed"]) == (True, 36, False)

    async def test_catch_up_after_forty_days_emits_every_level_once(self, system):
        clock = system.clock
        inv = await issue(system, amount=10_000, due_in_days=0)
        clock.advance(days=40)
        done = await scan(system)
        assert (done["crossings_emitted"], done["invoices_examined"]) == (3, 1)
        assert await overdue_events(system, inv["id"]) == [(1, 40), (15, 40), (30, 40)]
        assert (await scan(system))["crossings_emitted"] == 0
        clock.advance(days=20)  # 60 days
        await scan(system)
        assert await overdue_events(system, inv["id"]) == [(1, 40), (15, 40), (30, 40), (60, 60)]

    async def test_event_data_and_delivery_to_notifier(self, system):
        inv = await issue(system, amount=12_345, due_in_days=3, customer=OTHER_CUSTOMER,
                          salesperson="S-BOB")
        await pay(system, 2_345, customer=OTHER_CUSTOMER)
        system.clock.advance(days=4)
        await scan(system)
        [event] = await outbox_events(system, "invoice.overdue")
        assert (event["source"], event["subject"]) == ("ledger", inv["id"])
        assert set(event["data"]) == EVENT_KEYS
        assert event["data"] == {
            "invoice_id": inv["id"], "invoice_number": inv["number"], "order_id": inv["order_id"],
            "customer_id": OTHER_CUSTOMER, "salesperson_id": "S-BOB", "days_overdue": 1, "level": 1,
            "outstanding_minor": 10_000, "currency": "CNY", "due_date": inv["due_date"]}
        await system.pump()
        r = await system.client("notifier", "admin").get("/v1/events",
                                                          params={"type": "invoice.overdue"})
        assert r.status_code == 200, r.text
        assert [e["id"] for e in r.json()["items"]] == [event["id"]]

    async def test_past_scan_dates_count_days_as_of_the_scan(self, system):
        clock = system.clock
        inv = await issue(system, amount=1_000, due_in_days=0)  # due 2026-01-05
        clock.advance(days=100)
        done = await scan(system, "2026-01-21")  # 16 days after due
        assert done["as_of"] == "2026-01-21"
        assert await overdue_events(system, inv["id"]) == [(1, 16), (15, 16)]
        await scan(system)  # today: 100 days
        assert await overdue_events(system, inv["id"]) == [(1, 16), (15, 16), (30, 100), (60, 100),
                                                           (90, 100)]


class TestWhatIsScanned:
    async def test_paid_and_credited_invoices_are_not_scanned(self, system):
        finance = system.client("ledger", "finance")
        paid = await issue(system, amount=1_000, due_in_days=0)
        credited = await issue(system, amount=2_000, due_in_days=0)
        part = await issue(system, amount=3_000, due_in_days=0)
        await pay(system, 1_000, allocations=[{"invoice_id": paid["id"], "amount_minor": 1_000}])
        await pay(system, 1_000, allocations=[{"invoice_id": part["id"], "amount_minor": 1_000}])
        r = await finance.post("/v1/credit-notes", json={"invoice_id": credited["id"],
                                                         "amount_minor": 2_000, "reason": "return"})
        assert r.status_code == 201, r.text
        system.clock.advance(days=20)
        done = await scan(system)
        assert done["crossings_emitted"] == 2
        assert await overdue_events(system, paid["id"]) == []
        assert await overdue_events(system, credited["id"]) == []
        assert await overdue_events(system, part["id"]) == [(1, 20), (15, 20)]
        [event, _] = await outbox_events(system, "invoice.overdue")
        assert event["data"]["outstanding_minor"] == 2_000

    async def test_not_yet_due_invoices_wait(self, system):
        inv = await issue(system, amount=1_000, due_in_days=30)
        system.clock.advance(days=30)
        assert (await scan(system))["crossings_emitted"] == 0
        system.clock.advance(days=1)
        assert (await scan(system))["crossings_emitted"] == 1
        assert await overdue_events(system, inv["id"]) == [(1, 1)]

    async def test_dispute_pauses_and_resolution_resumes(self, system):
        clock, finance = system.clock, system.client("ledger", "finance")
        inv = await issue(system, amount=5_000, due_in_days=0)
        other = await issue(system, amount=5_000, due_in_days=0)
        clock.advance(days=2)
        await scan(system)  # both cross level 1
        r = await finance.post(f"/v1/invoices/{inv['id']}/disputes",
                               json={"reason": "quality below standard", "contact_role": "barrier"})
        assert r.status_code == 201, r.text
        dispute = r.json()
        assert (await invoice(system, inv["id"]))["disputed"] is True
        clock.advance(days=30)  # 32 days: levels 15 and 30 crossed while disputed
        await scan(system)
        assert await overdue_events(system, inv["id"]) == [(1, 2)]
        assert await overdue_events(system, other["id"]) == [(1, 2), (15, 32), (30, 32)]
        clock.advance(days=3)
        r = await finance.post(f"/v1/invoices/{inv['id']}/disputes/{dispute['id']}/resolve",
                               json={"resolution": "retest passed"})
        assert r.status_code == 200, r.text
        assert (await invoice(system, inv["id"]))["disputed"] is False
        await scan(system)
        assert await overdue_events(system, inv["id"]) == [(1, 2), (15, 35), (30, 35)]

    async def test_invoice_list_shows_disputed(self, system):
        a = await issue(system, amount=1_000)
        b = await issue(system, amount=1_000)
        await system.client("ledger", "finance").post(f"/v1/invoices/{b['id']}/disputes",
                                                      json={"reason": "price"})
        r = await system.client("ledger", "alice").get("/v1/invoices")
        assert {i["id"]: i["disputed"] for i in r.json()["items"]} == {a["id"]: False, b["id"]: True}


class TestSmallBatches:
    @pytest.fixture
    def system_overrides(self):
        return {"ledger": {"overdue_scan_batch_size": 2, "overdue_thresholds_days": [1, 15]}}

    async def test_many_batches_emit_every_invoice_once(self, system):
        invoices = [await issue(system, amount=100 + i, due_in_days=0) for i in range(5)]
        system.clock.advance(days=20)
        done = await scan(system)
        assert (done["crossings_emitted"], done["invoices_examined"], done["batches"]) == (10, 5, 3)
        for inv in invoices:
            assert await overdue_events(system, inv["id"]) == [(1, 20), (15, 20)]

    async def test_interrupted_scan_resumes_without_duplicates(self, system, monkeypatch):
        invoices = [await issue(system, amount=100 + i, due_in_days=0) for i in range(5)]
        system.clock.advance(days=20)
        real, calls = scan_module.emit_batch, []

        async def second_batch_fails(session, **kw):
            calls.append(len(kw["invoices"]))
            if len(calls) == 2:
                raise RuntimeError("database went away")
            return await real(session, **kw)

        monkeypatch.setattr(scan_module, "emit_batch", second_batch_fails)
        r = await system.client("ledger", "finance").post("/v1/overdue-scans", json={})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "dependency_unavailable"
        failed = (await system.client("ledger", "auditor").get(
            f"/v1/overdue-scans/{r.json()['scan_id']}")).json()
        assert (failed["status"], failed["crossings_emitted"], failed["batches"]) == ("failed", 4, 1)
        assert "database went away" in failed["error"]
        assert len(await overdue_events(system)) == 4  # the first batch's two invoices

        monkeypatch.setattr(scan_module, "emit_batch", real)
        resumed = await scan(system)
        assert (resumed["status"], resumed["crossings_emitted"]) == ("completed", 6)
        for inv in invoices:
            assert await overdue_events(system, inv["id"]) == [(1, 20), (15, 20)]
        assert (await scan(system))["crossings_emitted"] == 0


class TestThresholdSettings:
    @pytest.fixture
    def system_overrides(self):
        return {"ledger": {"overdue_thresholds_days": [5, 10]}}

    async def test_configured_levels(self, system):
        inv = await issue(system, amount=1_000, due_in_days=0)
        system.clock.advance(days=7)
        await scan(system)
        system.clock.advance(days=7)
        await scan(system)
        assert await overdue_events(system, inv["id"]) == [(5, 7), (10, 14)]


class TestScanRequests:
    async def test_as_of_validation(self, system):
        finance = system.client("ledger", "finance")
        for bad in ("2026-13-01", "yesterday", "05/01/2026"):
            r = await finance.post("/v1/overdue-scans", json={"as_of": bad})
            assert r.status_code == 422, bad
            assert r.json()["code"] == "validation_failed"
        tomorrow = (system.clock.today() + timedelta(days=1)).isoformat()
        r = await finance.post("/v1/overdue-scans", json={"as_of": tomorrow})
        assert r.status_code == 422
        assert r.json()["code"] == "validation_failed"
        assert problem_fields(r) == {"as_of": "must not be after today"}
        assert "future" in r.json()["detail"]
        r = await finance.post("/v1/overdue-scans", json={"as_of": "2001-01-01"})  # catching up
        assert r.status_code == 201, r.text
        r = await finance.post("/v1/overdue-scans", json={"unknown": 1})
        assert r.status_code == 422

    async def test_roles(self, system):
        for who in ("sales", "alice", "credit_manager", "auditor", "production"):
            r = await system.client("ledger", who).post("/v1/overdue-scans", json={})
            assert r.status_code == 403, who
        assert (await system.client("ledger", "admin").post("/v1/overdue-scans")).status_code == 201
        assert (await system.client("ledger", None).post("/v1/overdue-scans")).status_code == 401
        for who in ("finance", "credit_manager", "auditor", "admin"):
            assert (await system.client("ledger", who).get("/v1/overdue-scans")).status_code == 200
        assert (await system.client("ledger", "alice").get("/v1/overdue-scans")).status_code == 403

    async def test_list_newest_first_and_location(self, system):
        finance = system.client("ledger", "finance")
        first = await finance.post("/v1/overdue-scans", json={"as_of": "2026-01-01"})
        system.clock.advance(seconds=1)
        second = await finance.post("/v1/overdue-scans", json={})
        assert second.headers["location"] == f"/v1/overdue-scans/{second.json()['id']}"
        page = (await finance.get("/v1/overdue-scans", params={"limit": 1})).json()
        assert [s["id"] for s in page["items"]] == [second.json()["id"]]
        rest = (await finance.get("/v1/overdue-scans", params={"cursor": page["next_cursor"]})).json()
        assert [s["id"] for s in rest["items"]] == [first.json()["id"]]
        assert rest["items"][0]["started_by"] == "finance"
        by_date = (await finance.get("/v1/overdue-scans", params={"as_of": "2026-01-01"})).json()
        assert [s["id"] for s in by_date["items"]] == [first.json()["id"]]
        missing = await finance.get("/v1/overdue-scans/nope")
        assert missing.status_code == 404

    async def test_scheduled_pass_scans_as_of_today(self, system):
        inv = await issue(system, amount=1_000, due_in_days=0)
        system.clock.advance(days=1)
        done = await system.state("ledger").jobs["overdue-scan"]()
        assert (done.as_of, done.trigger, done.started_by) == (system.clock.today(), "schedule",
                                                               "scheduler")
        assert await overdue_events(system, inv["id"]) == [(1, 1)]
        listed = (await system.client("ledger", "finance").get("/v1/overdue-scans")).json()["items"]
        assert listed[0]["trigger"] == "schedule"


class TestConcurrentScans:
    async def test_two_scans_at_once_emit_each_level_once(self, system):
        import asyncio

        invoices = [await issue(system, amount=100 + i, due_in_days=0) for i in range(4)]
        system.clock.advance(days=16)
        once = system.state("ledger").jobs["overdue-scan"]
        first, second = await asyncio.gather(once(), once())
        assert first.crossings_emitted + second.crossings_emitted == 8
        for inv in invoices:
            assert await overdue_events(system, inv["id"]) == [(1, 16), (15, 16)]


class TestWorker:
    async def test_the_periodic_worker_runs_the_scan_as_of_today(self, system):
        import asyncio

        from services.ledger.app import SPEC
        from shared.app import repeat

        assert scan_module.OVERDUE_SCAN in SPEC.periodic
        inv = await issue(system, amount=1_000, due_in_days=0)
        system.clock.advance(days=15)
        app, stop = system.apps["ledger"], asyncio.Event()
        real, runs = app.state.jobs["overdue-scan"], []

        async def once_then_stop():
            runs.append(await real())
            stop.set()

        app.state.jobs["overdue-scan"] = once_then_stop
        try:
            await asyncio.wait_for(repeat(app, scan_module.OVERDUE_SCAN, stop), timeout=30)
        finally:
            app.state.jobs["overdue-scan"] = real
        assert [r.trigger for r in runs] == ["schedule"]
        assert await overdue_events(system, inv["id"]) == [(1, 15), (15, 15)]


class TestAbandonedScans:
    async def test_a_scan_whose_process_died_is_marked_failed_by_a_later_one(self, system):
        from services.ledger.collection.models import OverdueScan

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():
            session.add(OverdueScan(id="dead-scan", as_of=system.clock.today(), status="running",
                                    trigger="schedule", started_by="scheduler",
                                    started_at=system.clock.now()))
        system.clock.advance(hours=1)
        await scan(system)
        auditor = system.client("ledger", "auditor")
        assert (await auditor.get("/v1/overdue-scans/dead-scan")).json()["status"] == "running"
        system.clock.advance(hours=6)
        await scan(system)
        dead = (await auditor.get("/v1/overdue-scans/dead-scan")).json()
        assert dead["status"] == "failed" and dead["error"].startswith("abandoned")
        assert dead["finished_at"] is not None
