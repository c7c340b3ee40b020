"""The import of open items through the HTTP API: all rows or none, idempotent per number,
posted against opening balance equity, and from then on invoices like any other."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from services.credit.models import ReceivablesSnapshot
from services.ledger.models import Invoice, JournalEntry

ACME, BRIGHT = "c-acme-0001", "c-bright-0001"
CSV = "text/csv"
HEADER = "number,customer_id,salesperson_id,currency,amount_minor,outstanding_minor,issue_date,due_date"


def row(number: str, **fields) -> dict:
    return {"number": number, "customer_id": ACME, "salesperson_id": "S-ALICE",
            "currency": "CNY", "amount_minor": 10_000, "issue_date": "2025-11-01",
            "due_date": "2025-12-01", **fields}


OPEN_ITEMS = [
    row("SI-2025-0101"),  # 35 days overdue on 2026-01-05
    row("SI-2025-0102", amount_minor=50_000, outstanding_minor=20_000, issue_date="2025-12-10",
        due_date="2026-01-09"),  # partly paid in the old system, not yet due
    row("SI-2025-0103", customer_id=BRIGHT, salesperson_id="S-BOB", currency="USD",
        amount_minor=7_500, issue_date="2025-10-01", due_date="2025-10-31"),
]


async def counts(system) -> tuple[int, int]:
    async with system.state("ledger").db.session() as session:
        invoices = (await session.execute(select(func.count()).select_from(Invoice))).scalar_one()
        entries = (await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
    return invoices, entries


async def outbox_types(system) -> list[str]:
    state = system.state("ledger")
    async with state.db.session() as session:
        table = state.outbox.table
        return list((await session.execute(select(table.c.type).order_by(table.c.seq))).scalars())


class TestImport:
    async def test_open_items_become_invoices_posted_against_opening_equity(self, system):
        finance = system.client("ledger", "finance")
        r = await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS})
        assert r.status_code == 201, r.text
        record = r.json()
        assert record["number"] == "IMP-000001" and record["format"] == "json"
        assert (record["rows"], record["created"], record["unchanged"]) == (3, 3, 0)
        assert record["totals"] == [
            {"currency": "CNY", "invoices": 2, "amount_minor": 60_000, "outstanding_minor": 30_000},
            {"currency": "USD", "invoices": 1, "amount_minor": 7_500, "outstanding_minor": 7_500}]
        assert r.headers["location"] == f"/v1/invoice-imports/{record['id']}"
        assert (await finance.get(r.headers["location"])).json() == record

        invoices = {i["number"]: i for i in (await finance.get("/v1/invoices")).json()["items"]}
        assert set(invoices) == {"SI-2025-0101", "SI-2025-0102", "SI-2025-0103"}
        first, partly = invoices["SI-2025-0101"], invoices["SI-2025-0102"]
        assert first["order_id"] is None and first["import_id"] == record["id"]
        assert first["status"] == "open" and first["outstanding_minor"] == 10_000
        assert first["overdue"] is True and first["days_overdue"] == 35
        assert first["issued_at"] == "2025-11-01T00:00:00Z" and first["due_date"] == "2025-12-01"
        assert partly["status"] == "partially_paid"
        assert (partly["amount_minor"], partly["paid_minor"], partly["outstanding_minor"]) == \
            (50_000, 30_000, 20_000)

        je = (await finance.get(f"/v1/journal-entries/{partly['journal_entry_id']}")).json()
        assert je["kind"] == "invoice" and je["source_type"] == "invoice"
        assert je["source_id"] == partly["id"] and je["posted_at"] == "2025-12-10T00:00:00Z"
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
                for ln in je["lines"]] == [("1100", 20_000, 0, ACME), ("3000", 0, 20_000, None)]
        assert "SI-2025-0102" in je["memo"] and "IMP-000001" in je["memo"]

        # The aging, the receivables account and the ledger's check agree, per currency.
        tb = {(a["code"], a["currency"]): a["balance_minor"] for a in
              (await finance.get("/v1/trial-balance")).json()["accounts"]}
        assert tb[("1100", "CNY")] == 30_000 and tb[("3000", "CNY")] == 30_000
        assert tb[("1100", "USD")] == 7_500
        aging = (await finance.get("/v1/reports/aging", params={"group_by": "customer"})).json()
        assert {(r["customer_id"], r["currency"]): r["total_minor"] for r in aging["rows"]} == {
            (ACME, "CNY"): 30_000, (BRIGHT, "USD"): 7_500}
        check = (await finance.get("/v1/ledger-check")).json()
        assert check["balanced"] is True, check["problems"]
        assert {(c["account_code"], c["currency"]): (c["balance_minor"], c["documents_minor"])
                for c in check["controls"]} == {("1100", "CNY"): (30_000, 30_000),
                                               ("1100", "USD"): (7_500, 7_500)}

        types = await outbox_types(system)
        assert types.count("invoice.imported") == 3 and types.count("journal_entry.posted") == 3
        assert "invoice.issued" not in types  # not new revenue: integrators can tell them apart

    async def test_the_same_file_again_changes_nothing(self, system):
        finance = system.client("ledger", "finance")
        assert (await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS})).status_code == 201
        before = await counts(system)
        again = await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS})
        assert again.status_code == 201, again.text
        assert (again.json()["created"], again.json()["unchanged"], again.json()["totals"]) == (0, 3, [])
        assert await counts(system) == before
        # a file that adds one row to those already imported writes just that one
        more = await finance.post("/v1/invoice-imports",
                                  json={"rows": [*OPEN_ITEMS, row("SI-2025-0104")]})
        assert (more.json()["created"], more.json()["unchanged"]) == (1, 3)
        assert await counts(system) == (before[0] + 1, before[1] + 1)

    async def test_a_row_imported_before_with_other_terms_refuses_the_file(self, system):
        finance = system.client("ledger", "finance")
        await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS})
        before = await counts(system)
        changed = [OPEN_ITEMS[0], {**OPEN_ITEMS[1], "outstanding_minor": 15_000,
                                   "due_date": "2026-02-09"}, row("SI-2025-0200")]
        r = await finance.post("/v1/invoice-imports", json={"rows": changed})
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [{
            "field": "rows[1].number", "line": 2,
            "message": "number SI-2025-0102 was imported before with another due_date, "
                       "outstanding_minor"}]
        assert await counts(system) == before  # not even the new SI-2025-0200

    async def test_a_bad_csv_changes_nothing_and_lists_every_bad_row(self, system):
        finance = system.client("ledger", "finance")
        lines = [HEADER,
                 f"SI-1,{ACME},S-ALICE,CNY,10000,,2025-11-01,2025-12-01",      # 2 good
                 f"SI-2,{ACME},,CNY,ten,,2025-11-01,2025-12-01",                # 3 amount
                 f"SI-3,{ACME},,CNY,10000,20000,2025-11-01,2025-12-01",         # 4 > amount
                 f"SI-4,{ACME},,CNY,10000,,2025-11-01,2025-10-01",              # 5 due < issue
                 f"SI-5,{ACME},,XYZ,10000,,2025-11-01,2025-12-01",              # 6 currency
                 f"SI-1,{BRIGHT},,CNY,500,,2025-11-01,2025-12-01",              # 7 dup of 2
                 f"INV-000001,{ACME},,CNY,500,,2025-11-01,2025-12-01",          # 8 our series
                 f"SI-8,{ACME},,CNY,500,,2026-02-01,2026-03-01",                # 9 future
                 f"SI-9,{ACME},CNY,500",                                        # 10 short
                 "",
                 f"SI-10,{ACME},,CNY,-5,,2025-11-31,2025-12-01"]                # 12 two errors
        r = await finance.post("/v1/invoice-imports", content="\n".join(lines) + "\n",
                               headers={"Content-Type": CSV})
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert [(e["line"], e["field"]) for e in errors] == [
            (2, "number"), (3, "amount_minor"), (4, "row"), (5, "row"), (6, "currency"),
            (7, "number"), (8, "number"), (9, "issue_date"), (10, "row"),
            (12, "amount_minor"), (12, "issue_date")]
        by_line = {e["line"]: e["message"] for e in errors}
        assert by_line[2] == by_line[7] == "number SI-1 is on more than one row (2, 7)"
        assert "outstanding_minor must not exceed amount_minor" in by_line[4]
        assert "due_date must not be before issue_date" in by_line[5]
        assert "o2c's own series" in by_line[8]
        assert by_line[9] == "must not be in the future"
        assert by_line[10] == "4 values for 8 columns"
        assert "11 error(s) on 10 of 10 row(s)" in r.json()["detail"]
        assert await counts(system) == (0, 0)

    async def test_csv_takes_its_columns_in_any_order_and_leaves_out_the_optional(self, system):
        finance = system.client("ledger", "finance")
        body = ("due_date,currency,number,customer_id,amount_minor,issue_date\r\n"
                f"2025-12-01,CNY,SI-7,{ACME},12345,2025-11-01\r\n"
                f'2025-12-15,CNY,"SI/8",{BRIGHT},500,2025-11-15\r\n')
        r = await finance.post("/v1/invoice-imports", content=body.encode("utf-8-sig"),
                               headers={"Content-Type": "text/csv; charset=utf-8"})
        assert r.status_code == 201, r.text
        assert (r.json()["format"], r.json()["created"]) == ("csv", 2)
        invoice = (await finance.get("/v1/invoices", params={"customer_id": ACME})).json()["items"][0]
        assert (invoice["number"], invoice["outstanding_minor"], invoice["salesperson_id"]) == \
            ("SI-7", 12_345, None)

    async def test_bodies_that_are_not_an_import(self, system):
        finance = system.client("ledger", "finance")
        cases = [
            ({"content": "number,colour\nSI-1,red\n", "headers": {"Content-Type": CSV}}, 422, "header"),
            ({"content": HEADER + "\n", "headers": {"Content-Type": CSV}}, 422, "rows"),
            ({"content": b"\xff\xfe", "headers": {"Content-Type": CSV}}, 422, "body"),
            ({"json": {"rows": []}}, 422, "rows"),
            ({"json": {"rows": [row("SI-1")], "extra": 1}}, 422, "extra"),
            ({"json": [row("SI-1")]}, 422, None),
            ({"content": "{", "headers": {"Content-Type": "application/json"}}, 422, "body"),
            ({"content": "x", "headers": {"Content-Type": "text/plain"}}, 415, None),
        ]
        for kwargs, status, field in cases:
            r = await finance.post("/v1/invoice-imports", **kwargs)
            assert r.status_code == status, (kwargs, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            if field:
                assert field in {e["field"] for e in r.json()["errors"]}, (kwargs, r.json())
        assert await counts(system) == (0, 0)

    async def test_only_finance_imports(self, system):
        for who in ("sales", "alice", "credit_manager", "auditor", "service"):
            r = await system.client("ledger", who).post("/v1/invoice-imports",
                                                        json={"rows": OPEN_ITEMS})
            assert r.status_code == 403, (who, r.text)
        assert (await system.client("ledger", None).post(
            "/v1/invoice-imports", json={"rows": OPEN_ITEMS})).status_code == 401
        assert (await system.client("ledger", "admin").post(
            "/v1/invoice-imports", json={"rows": OPEN_ITEMS})).status_code == 201
        assert (await system.client("ledger", "alice").get(
            "/v1/invoice-imports/x")).status_code == 403

    async def test_two_imports_of_the_same_rows_at_once_write_them_once(self, system):
        finance = system.client("ledger", "finance")
        a, b = await asyncio.gather(
            finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS}),
            finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS}))
        assert {a.status_code, b.status_code} <= {201, 409}, (a.text, b.text)
        assert sorted(r.json()["created"] for r in (a, b) if r.status_code == 201)[-1] == 3
        assert await counts(system) == (3, 3)

    async def test_an_idempotency_key_replays_the_import(self, system):
        finance = system.client("ledger", "finance")
        first = await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS},
                                   headers={"Idempotency-Key": "cutover-1"})
        again = await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS},
                                   headers={"Idempotency-Key": "cutover-1"})
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()


class TestImportedInvoicesAreInvoices:
    async def test_paid_oldest_first_scanned_and_seen_by_credit(self, system):
        finance = system.client("ledger", "finance")
        await finance.post("/v1/invoice-imports", json={"rows": OPEN_ITEMS})
        await system.pump()
        # credit refreshed ACME's receivables snapshot on invoice.imported
        async with system.state("credit").db.session() as session:
            snapshot = await session.get(ReceivablesSnapshot, (ACME, "CNY"))
        assert snapshot is not None and snapshot.last_event_type == "invoice.imported"
        assert (snapshot.open_receivables_minor, snapshot.overdue_minor) == (30_000, 10_000)

        scan = await finance.post("/v1/overdue-scans", json={})
        assert scan.status_code in (200, 201), scan.text
        overdue = [e for e in await outbox_types(system) if e == "invoice.overdue"]
        assert len(overdue) >= 2  # SI-2025-0101 (CNY) and SI-2025-0103 (USD)

        paid = await finance.post("/v1/payments", json={
            "customer_id": ACME, "amount_minor": 12_000, "currency": "CNY",
            "received_at": "2026-01-05T08:00:00Z", "method": "bank_transfer"})
        assert paid.status_code == 201, paid.text
        invoices = {i["number"]: i for i in (await finance.get(
            "/v1/invoices", params={"customer_id": ACME})).json()["items"]}
        assert invoices["SI-2025-0101"]["status"] == "paid"
        assert invoices["SI-2025-0102"]["outstanding_minor"] == 18_000
        check = (await finance.get("/v1/ledger-check")).json()
        assert check["balanced"] is True, check["problems"]


@pytest.fixture
def system_overrides() -> dict[str, dict]:
    # A small ordinary cap, so that an import above it shows the import's own cap at work.
    return {"ledger": {"max_body_bytes": 4096}}


class TestBodyCap:
    async def test_the_import_cap_is_for_importers_only(self, system):
        big = HEADER + "\n" + "".join(
            f"SI-{n},{ACME},,CNY,100,,2025-11-01,2025-12-01\n" for n in range(200))
        assert len(big) > 4096
        finance = system.client("ledger", "finance")
        r = await finance.post("/v1/invoice-imports", content=big, headers={"Content-Type": CSV})
        assert r.status_code == 201 and r.json()["created"] == 200, r.text
        r = await system.client("ledger", "alice").post(
            "/v1/invoice-imports", content=big, headers={"Content-Type": CSV})
        assert r.status_code == 413 and r.json()["limit_bytes"] == 4096
        # other routes keep the ordinary cap, for finance too
        r = await finance.post("/v1/journal-entries", content="x" * 5000,
                               headers={"Content-Type": "application/json"})
        assert r.status_code == 413
