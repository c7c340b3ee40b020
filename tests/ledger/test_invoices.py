"""Invoices through the HTTP API: issue (idempotent per order), reads, filters, visibility."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from services.ledger.models import Invoice
from tests.fixtures.ledger import invoice_body

ALICE_CUSTOMER = "c-alice-0001"
BOB_CUSTOMER = "c-bob-0001"


async def insert_invoice(system, **fields) -> Invoice:
    """An invoice row written straight into the ledger's database (as later issues will)."""
    clock = system.clock
    amount = fields.pop("amount_minor", 10_000)
    outstanding = fields.pop("outstanding_minor", amount)
    invoice = Invoice(
        number=fields.pop("number", f"INV-T{uuid.uuid4().hex[:6]}"),
        order_id=fields.pop("order_id", str(uuid.uuid4())),
        customer_id=fields.pop("customer_id", ALICE_CUSTOMER),
        salesperson_id=fields.pop("salesperson_id", "S-ALICE"), currency="CNY",
        amount_minor=amount, outstanding_minor=outstanding, paid_minor=amount - outstanding,
        status=fields.pop("status", "open"), issued_at=clock.now(),
        due_date=fields.pop("due_date", clock.today() + timedelta(days=30)),
        created_at=clock.now(), updated_at=clock.now(), **fields)
    state = system.state("ledger")
    async with state.db.session() as session, session.begin():
        session.add(invoice)
    clock.advance(seconds=1)
    return invoice


class TestIssueInvoice:
    async def test_issue_posts_receivable_and_revenue(self, system):
        ledger = system.client("ledger", "service")
        body = invoice_body()
        r = await ledger.post("/v1/invoices", json=body, headers={"Idempotency-Key": "inv-1"})
        assert r.status_code == 201, r.text
        invoice = r.json()
        assert invoice["number"] == "INV-000001" and invoice["status"] == "open"
        assert invoice["outstanding_minor"] == invoice["amount_minor"] == 125_000
        assert invoice["overdue"] is False and invoice["days_overdue"] == 0
        assert r.headers["etag"] == '"1"'
        assert r.headers["location"] == f"/v1/invoices/{invoice['id']}"

        finance = system.client("ledger", "finance")
        je = (await finance.get(f"/v1/journal-entries/{invoice['journal_entry_id']}")).json()
        assert je["kind"] == "invoice" and je["source_id"] == invoice["id"]
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
                for ln in je["lines"]] == [("1100", 125_000, 0, ALICE_CUSTOMER),
                                           ("4000", 0, 125_000, None)]
        rows = {row["code"]: row for row in
                (await finance.get("/v1/trial-balance")).json()["accounts"]}
        assert rows["1100"]["balance_minor"] == rows["4000"]["balance_minor"] == 125_000

        state = system.state("ledger")
        async with state.db.session() as session:
            assert await state.outbox.pending(session) == 2  # journal_entry.posted, invoice.issued

    async def test_issue_is_idempotent_per_order(self, system):
        ledger = system.client("ledger", "service")
        body = invoice_body()
        first = await ledger.post("/v1/invoices", json=body)
        again = await ledger.post("/v1/invoices", json=body)
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        changed = await ledger.post("/v1/invoices", json={**body, "amount_minor": 1})
        assert changed.status_code == 409 and changed.json()["fields"] == ["amount_minor"]
        entries = (await system.client("ledger", "finance").get("/v1/journal-entries")).json()
        assert len(entries["items"]) == 1

    async def test_concurrent_issues_for_one_order_make_one_invoice(self, system):
        import asyncio

        ledger = system.client("ledger", "service")
        body = invoice_body()
        results = await asyncio.gather(*(ledger.post("/v1/invoices", json=body) for _ in range(4)))
        assert sorted(r.status_code for r in results) == [200, 200, 200, 201], [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        finance = system.client("ledger", "finance")
        assert len((await finance.get("/v1/journal-entries")).json()["items"]) == 1
        assert (await finance.get("/v1/ledger-check")).json()["balanced"] is True

    async def test_losing_the_insert_race_returns_the_winner(self, system, monkeypatch):
        from services.ledger import repository

        ledger = system.client("ledger", "service")
        body = invoice_body()
        winner = (await ledger.post("/v1/invoices", json=body)).json()
        real = repository.get_invoice_by_order
        calls = []

        async def miss_once(session, order_id):  # the pre-check ran before the winner committed
            calls.append(order_id)
            return None if len(calls) == 1 else await real(session, order_id)

        monkeypatch.setattr(repository, "get_invoice_by_order", miss_once)
        again = await ledger.post("/v1/invoices", json=body)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == winner["id"] and len(calls) == 2
        other = await ledger.post("/v1/invoices", json={**body, "due_date": "2026-03-01"})
        assert other.status_code == 409

    async def test_invalid_invoices_are_refused(self, system):
        ledger = system.client("ledger", "finance")
        early = await ledger.post("/v1/invoices", json=invoice_body(
            issued_at="2026-01-05T09:00:00Z", due_date="2026-01-04"))
        assert early.status_code == 422 and early.json()["errors"][0]["field"] == "due_date"
        zero = await ledger.post("/v1/invoices", json=invoice_body(amount_minor=0, currency="ABC"))
        assert zero.status_code == 422
        assert {e["field"] for e in zero.json()["errors"]} == {"amount_minor", "currency"}

    async def test_only_finance_and_service_issue(self, system):
        for who in ("auditor", "alice", "credit_manager"):
            r = await system.client("ledger", who).post("/v1/invoices", json=invoice_body())
            assert r.status_code == 403, who


class TestInvoiceReads:
    async def test_filters(self, system):
        today = system.clock.today()
        a = await insert_invoice(system, due_date=today + timedelta(days=10))
        b = await insert_invoice(system, customer_id=BOB_CUSTOMER, salesperson_id="S-BOB",
                                 due_date=today + timedelta(days=40))
        c = await insert_invoice(system, status="paid", outstanding_minor=0,
                                 due_date=today - timedelta(days=5))
        d = await insert_invoice(system, due_date=today - timedelta(days=3))
        finance = system.client("ledger", "finance")

        async def ids(**params):
            r = await finance.get("/v1/invoices", params=params)
            assert r.status_code == 200, r.text
            return [i["id"] for i in r.json()["items"]]

        assert await ids() == [a.id, b.id, c.id, d.id]
        assert await ids(customer_id=BOB_CUSTOMER) == [b.id]
        assert await ids(order_id=a.order_id) == [a.id]
        assert await ids(salesperson_id="S-ALICE") == [a.id, c.id, d.id]
        assert await ids(status="paid") == [c.id]
        assert await ids(status="open") == [a.id, b.id, d.id]
        assert await ids(due_from=today.isoformat()) == [a.id, b.id]
        assert await ids(due_to=today.isoformat()) == [c.id, d.id]
        assert await ids(due_from=(today + timedelta(days=10)).isoformat(),
                         due_to=(today + timedelta(days=10)).isoformat()) == [a.id]
        assert await ids(overdue="true") == [d.id]
        assert await ids(overdue="false") == [a.id, b.id, c.id]
        bad = await finance.get("/v1/invoices", params={"status": "lost"})
        assert bad.status_code == 422

    async def test_overdue_is_derived_from_today(self, system):
        invoice = await insert_invoice(system, due_date=date(2026, 1, 10))
        finance = system.client("ledger", "finance")
        on_time = (await finance.get(f"/v1/invoices/{invoice.id}")).json()
        assert on_time["overdue"] is False
        system.clock.set(datetime(2026, 1, 10, 23, 0, tzinfo=UTC))
        assert (await finance.get(f"/v1/invoices/{invoice.id}")).json()["overdue"] is False
        system.clock.set(datetime(2026, 1, 25, 8, 0, tzinfo=UTC))
        late = (await finance.get(f"/v1/invoices/{invoice.id}")).json()
        assert late["overdue"] is True and late["days_overdue"] == 15

    async def test_paid_invoice_is_never_overdue(self, system):
        invoice = await insert_invoice(system, status="paid", outstanding_minor=0,
                                       due_date=date(2025, 1, 1))
        got = (await system.client("ledger", "auditor").get(f"/v1/invoices/{invoice.id}")).json()
        assert got["overdue"] is False and got["status"] == "paid"

    async def test_sales_principal_sees_only_own_invoices(self, system):
        mine = await insert_invoice(system)
        bobs = await insert_invoice(system, customer_id=BOB_CUSTOMER, salesperson_id="S-BOB")
        alice = system.client("ledger", "alice")
        assert (await alice.get(f"/v1/invoices/{mine.id}")).status_code == 200
        hidden = await alice.get(f"/v1/invoices/{bobs.id}")
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
        listed = (await alice.get("/v1/invoices")).json()["items"]
        assert [i["id"] for i in listed] == [mine.id]
        assert (await alice.get("/v1/invoices", params={"salesperson_id": "S-BOB"})).json()[
            "items"] == []
        assert [i["id"] for i in (await alice.get(
            "/v1/invoices", params={"customer_id": BOB_CUSTOMER})).json()["items"]] == []
        # A sales principal without a salesperson id sees everything.
        everyone = (await system.client("ledger", "sales").get("/v1/invoices")).json()["items"]
        assert {i["id"] for i in everyone} == {mine.id, bobs.id}

    async def test_pagination_and_unknown_invoice(self, system):
        made = [(await insert_invoice(system)).id for _ in range(5)]
        finance = system.client("ledger", "finance")
        seen, cursor = [], None
        while True:
            page = (await finance.get("/v1/invoices",
                                      params={"limit": 2} | ({"cursor": cursor} if cursor else {}))).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == made
        missing = await finance.get(f"/v1/invoices/{uuid.uuid4()}")
        assert missing.status_code == 404

    async def test_production_cannot_read_invoices(self, system):
        assert (await system.client("ledger", "production").get("/v1/invoices")).status_code == 403
