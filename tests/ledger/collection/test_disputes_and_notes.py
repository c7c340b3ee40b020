"""Disputes (one open at a time, shown on invoices and statements) and collection notes."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.ledger import CUSTOMER, OTHER_CUSTOMER, invoice, issue, outbox_events, pay


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def dispute(system, invoice_id: str, reason: str = "quality below QS-7", *,
                  who: str = "finance", expect: int = 201, **extra) -> dict:
    r = await system.client("ledger", who).post(f"/v1/invoices/{invoice_id}/disputes",
                                                json={"reason": reason, **extra})
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r.json()


async def resolve(system, invoice_id: str, dispute_id: str, *, who: str = "finance",
                  expect: int = 200) -> dict:
    r = await system.client("ledger", who).post(
        f"/v1/invoices/{invoice_id}/disputes/{dispute_id}/resolve", json={"resolution": "retested"})
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r.json()


class TestDisputes:
    async def test_one_open_dispute_at_a_time(self, system):
        inv = await issue(system, amount=5_000)
        first = await dispute(system, inv["id"], contact_role="barrier")
        assert (first["status"], first["contact_role"], first["opened_by"], first["invoice_number"]) == (
            "open", "barrier", "finance", inv["number"])
        again = await dispute(system, inv["id"], expect=409)
        assert again["code"] == "conflict" and again["dispute_id"] == first["id"]
        done = await resolve(system, inv["id"], first["id"])
        assert (done["status"], done["resolution"], done["resolved_by"]) == ("resolved", "retested",
                                                                             "finance")
        assert (await resolve(system, inv["id"], first["id"], expect=409))["code"] == "conflict"
        second = await dispute(system, inv["id"], "price")
        listed = (await system.client("ledger", "alice").get(f"/v1/invoices/{inv['id']}/disputes")).json()
        assert [d["id"] for d in listed["items"]] == [second["id"], first["id"]]
        one = await system.client("ledger", "auditor").get(
            f"/v1/invoices/{inv['id']}/disputes/{first['id']}")
        assert one.status_code == 200 and one.json()["status"] == "resolved"
        assert one.headers["etag"] == '"2"'
        other = await issue(system, amount=1_000)
        assert (await system.client("ledger", "finance").get(
            f"/v1/invoices/{other['id']}/disputes/{first['id']}")).status_code == 404
        await resolve(system, other["id"], first["id"], expect=404)

    async def test_events(self, system):
        inv = await issue(system, amount=5_000, customer=OTHER_CUSTOMER, salesperson="S-BOB")
        d = await dispute(system, inv["id"], contact_role="user")
        await resolve(system, inv["id"], d["id"])
        [opened] = await outbox_events(system, "invoice.disputed")
        [resolved] = await outbox_events(system, "invoice.dispute_resolved")
        assert opened["subject"] == resolved["subject"] == inv["id"]
        assert opened["data"] == {
            "dispute_id": d["id"], "invoice_id": inv["id"], "invoice_number": inv["number"],
            "order_id": inv["order_id"], "customer_id": OTHER_CUSTOMER, "salesperson_id": "S-BOB",
            "reason": "quality below QS-7", "contact_role": "user", "outstanding_minor": 5_000,
            "currency": "CNY", "opened_at": opened["data"]["opened_at"]}
        assert resolved["data"]["resolution"] == "retested"
        await system.pump()
        r = await system.client("notifier", "admin").get("/v1/events",
                                                          params={"type": "invoice.disputed"})
        assert [e["id"] for e in r.json()["items"]] == [opened["id"]]

    async def test_nothing_to_dispute_on_a_paid_invoice(self, system):
        inv = await issue(system, amount=1_000)
        await pay(system, 1_000)
        r = await dispute(system, inv["id"], expect=409)
        assert r["code"] == "conflict" and "paid" in r["detail"]

    async def test_roles_and_visibility(self, system):
        inv = await issue(system, amount=1_000)  # S-ALICE's
        for who in ("alice", "auditor", "credit_manager"):
            await dispute(system, inv["id"], who=who, expect=403)
        await dispute(system, inv["id"], who="bob", expect=403)
        d = await dispute(system, inv["id"], who="admin")
        await resolve(system, inv["id"], d["id"], who="alice", expect=403)
        assert (await system.client("ledger", "bob").get(
            f"/v1/invoices/{inv['id']}/disputes")).status_code == 404
        assert (await dispute(system, inv["id"], reason="", expect=422))["code"] == "validation_failed"
        await dispute(system, inv["id"], contact_role="ceo", expect=422)

    async def test_payments_still_apply_while_disputed(self, system):
        inv = await issue(system, amount=1_000)
        d = await dispute(system, inv["id"])
        await pay(system, 400)
        got = await invoice(system, inv["id"])
        assert (got["status"], got["outstanding_minor"], got["disputed"]) == ("partially_paid", 600, True)
        await resolve(system, inv["id"], d["id"])
        assert (await invoice(system, inv["id"]))["disputed"] is False


    async def test_a_replayed_issue_shows_the_dispute(self, system):
        body = {"order_id": "o-replay-1", "customer_id": CUSTOMER, "salesperson_id": "S-ALICE",
                "currency": "CNY", "amount_minor": 5_000,
                "issued_at": system.clock.now().isoformat(), "due_date": "2030-01-31"}
        first = await system.client("ledger", "service").post("/v1/invoices", json=body)
        assert (first.status_code, first.json()["disputed"]) == (201, False)
        await dispute(system, first.json()["id"])
        again = await system.client("ledger", "service").post("/v1/invoices", json=body)
        assert (again.status_code, again.json()["id"], again.json()["disputed"]) == (
            200, first.json()["id"], True)


class TestStatementShowsDisputes:
    async def test_invoice_line_carries_the_dispute_open_at_the_period_end(self, system):
        clock = system.clock
        clock.set(at("2026-01-05"))
        a = await issue(system, amount=10_000)
        b = await issue(system, amount=2_000)
        clock.set(at("2026-01-10"))
        d = await dispute(system, a["id"], "short delivery", contact_role="barrier")
        clock.set(at("2026-01-20"))
        await resolve(system, a["id"], d["id"])
        alice = system.client("ledger", "alice")

        async def lines(to: str) -> dict[str, dict | None]:
            r = await alice.get(f"/v1/customers/{CUSTOMER}/statement",
                                params={"from": "2026-01-01", "to": to})
            assert r.status_code == 200, r.text
            return {line["number"]: line["dispute"] for line in r.json()["lines"]}

        during = await lines("2026-01-15")
        assert during[b["number"]] is None
        assert {k: during[a["number"]][k] for k in ("id", "reason", "contact_role")} == {
            "id": d["id"], "reason": "short delivery", "contact_role": "barrier"}
        assert await lines("2026-01-09") == {a["number"]: None, b["number"]: None}
        assert await lines("2026-01-31") == {a["number"]: None, b["number"]: None}


async def note(system, invoice_id: str, role: str = "auditor", text: str = "waiting on audit", *,
               who: str = "finance", expect: int = 201, **extra) -> dict:
    r = await system.client("ledger", who).post(f"/v1/invoices/{invoice_id}/collection-notes",
                                                json={"contact_role": role, "note": text, **extra})
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r.json()


class TestCollectionNotes:
    async def test_along_the_payment_chain_newest_first(self, system):
        a = await issue(system, amount=1_000)
        b = await issue(system, amount=2_000)
        n1 = await note(system, a["id"], "barrier", "QC says batch 42 is off-spec",
                        next_action_on="2026-01-09")
        n2 = await note(system, a["id"], "auditor", "audit signs next week", next_action_on="2026-01-14")
        n3 = await note(system, b["id"], "decision_maker", "GM approved payment")
        assert (n1["contact_role"], n1["next_action_on"], n1["created_by"], n1["invoice_number"]) == (
            "barrier", "2026-01-09", "finance", a["number"])
        assert n3["next_action_on"] is None
        finance = system.client("ledger", "finance")
        on_a = (await finance.get(f"/v1/invoices/{a['id']}/collection-notes")).json()
        assert [n["id"] for n in on_a["items"]] == [n2["id"], n1["id"]]
        page = (await finance.get(f"/v1/customers/{CUSTOMER}/collection-notes",
                                  params={"limit": 2})).json()
        assert [n["id"] for n in page["items"]] == [n3["id"], n2["id"]]
        rest = (await finance.get(f"/v1/customers/{CUSTOMER}/collection-notes",
                                  params={"limit": 2, "cursor": page["next_cursor"]})).json()
        assert [n["id"] for n in rest["items"]] == [n1["id"]] and rest["next_cursor"] is None
        due = (await finance.get(f"/v1/customers/{CUSTOMER}/collection-notes",
                                 params={"next_action_before": "2026-01-10"})).json()
        assert [n["id"] for n in due["items"]] == [n1["id"]]
        by_role = (await finance.get(f"/v1/customers/{CUSTOMER}/collection-notes",
                                     params={"contact_role": "auditor"})).json()
        assert [n["id"] for n in by_role["items"]] == [n2["id"]]

    async def test_sales_write_and_read_their_own_customers_notes(self, system):
        mine = await issue(system, amount=1_000)  # S-ALICE, CUSTOMER
        bobs = await issue(system, amount=1_000, salesperson="S-BOB")  # S-BOB, CUSTOMER
        theirs = await issue(system, amount=1_000, customer=OTHER_CUSTOMER, salesperson="S-BOB")
        own = await note(system, mine["id"], "key_person", "Mr Li knows the process", who="alice")
        assert own["created_by"] == "alice"
        await note(system, theirs["id"], who="alice", expect=404)
        other = await note(system, bobs["id"], "general_manager", "letter copied to the GM", who="bob")
        for who in ("auditor", "credit_manager", "production"):
            await note(system, mine["id"], who=who, expect=403)
        seen = (await system.client("ledger", "alice").get(
            f"/v1/customers/{CUSTOMER}/collection-notes")).json()
        assert [n["id"] for n in seen["items"]] == [own["id"]]
        everything = (await system.client("ledger", "auditor").get(
            f"/v1/customers/{CUSTOMER}/collection-notes")).json()
        assert [n["id"] for n in everything["items"]] == [other["id"], own["id"]]
        assert (await system.client("ledger", "alice").get(
            f"/v1/customers/{OTHER_CUSTOMER}/collection-notes")).status_code == 404
        assert (await system.client("ledger", "alice").get(
            f"/v1/invoices/{theirs['id']}/collection-notes")).status_code == 404

    async def test_bad_notes(self, system):
        inv = await issue(system, amount=1_000)
        assert (await note(system, inv["id"], "cfo", expect=422))["code"] == "validation_failed"
        await note(system, inv["id"], "user", "", expect=422)
        await note(system, inv["id"], "user", "x", next_action_on="soon", expect=422)
        r = await system.client("ledger", "finance").get(f"/v1/invoices/{inv['id']}/collection-notes",
                                                         params={"cursor": "garbage"})
        assert r.status_code == 422


class TestDerivedStatusFilters:
    async def test_status_disputed_and_overdue_list_the_derived_statuses(self, system):
        disputed = await issue(system, amount=5_000, due_in_days=10)
        late = await issue(system, amount=3_000, due_in_days=5)
        paid_late = await issue(system, amount=2_000, due_in_days=5)
        await pay(system, 2_000, allocations=[{"invoice_id": paid_late["id"], "amount_minor": 2_000}])
        d = await dispute(system, disputed["id"])
        ledger = system.client("ledger", "auditor")

        async def listed(status: str) -> list[str]:
            r = await ledger.get("/v1/invoices", params={"status": status})
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["items"]]

        assert await listed("disputed") == [disputed["id"]]
        assert await listed("overdue") == []
        system.clock.advance(days=7)  # `late` is 2 days past due; `disputed` not yet due
        assert await listed("overdue") == [late["id"]]
        assert await listed("open") == [disputed["id"], late["id"]]
        await resolve(system, disputed["id"], d["id"])
        assert await listed("disputed") == []
        r = await ledger.get("/v1/invoices", params={"status": "late"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.status"
