"""Builders for ledger tests: invoices, payments and notes through the HTTP API."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

CUSTOMER = "c-alice-0001"
OTHER_CUSTOMER = "c-bob-0001"


async def issue(system, *, amount: int = 10_000, customer: str = CUSTOMER,
                salesperson: str | None = "S-ALICE", currency: str = "CNY",
                due_in_days: int = 30, order_id: str | None = None) -> dict[str, Any]:
    """Issue an invoice dated now (system.clock), due `due_in_days` later; moves the clock 1 s."""
    clock = system.clock
    r = await system.client("ledger", "service").post("/v1/invoices", json={
        "order_id": order_id or str(uuid.uuid4()), "customer_id": customer,
        "salesperson_id": salesperson, "currency": currency, "amount_minor": amount,
        "issued_at": clock.now().isoformat(),
        "due_date": (clock.today() + timedelta(days=due_in_days)).isoformat()})
    assert r.status_code == 201, r.text
    clock.advance(seconds=1)
    return r.json()


async def pay(system, amount: int, *, customer: str = CUSTOMER, currency: str = "CNY",
              method: str = "bank_transfer", allocations: list[dict] | None = None,
              expect: int = 201, **extra) -> dict[str, Any]:
    body = {"customer_id": customer, "amount_minor": amount, "currency": currency,
            "method": method, "reference": "REF-1", **extra}
    if allocations is not None:
        body["allocations"] = allocations
    r = await system.client("ledger", "finance").post("/v1/payments", json=body)
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r.json()


async def invoice(system, invoice_id: str) -> dict[str, Any]:
    r = await system.client("ledger", "finance").get(f"/v1/invoices/{invoice_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def unapplied(system, customer: str = CUSTOMER, currency: str = "CNY") -> int:
    r = await system.client("ledger", "finance").get(f"/v1/customers/{customer}/unapplied")
    assert r.status_code == 200, r.text
    return next((b["unapplied_minor"] for b in r.json()["balances"]
                 if b["currency"] == currency), 0)


async def balanced(system) -> None:
    check = (await system.client("ledger", "auditor").get("/v1/ledger-check")).json()
    assert check["balanced"] is True, check["problems"]


async def outbox_events(system, type_: str | None = None) -> list[dict[str, Any]]:
    """Every event the ledger wrote to its outbox (payloads), oldest first."""
    import json

    from sqlalchemy import select

    state = system.state("ledger")
    table = state.outbox.table
    async with state.db.session() as session:
        rows = (await session.execute(select(table.c.payload).order_by(table.c.seq))).scalars()
        events = [json.loads(p) for p in rows]
    return [e for e in events if type_ is None or e["type"] == type_]


def problem_fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


# ---------------------------------------------------------------- collection work (overdue scan)


async def scan(system, as_of: str | None = None, *, who: str = "finance",
               expect: int = 201) -> dict[str, Any]:
    """POST /v1/overdue-scans as `who` (as of `as_of`, or the clock's today)."""
    r = await system.client("ledger", who).post("/v1/overdue-scans",
                                                json={"as_of": as_of} if as_of else {})
    assert r.status_code == expect, r.text
    return r.json()


async def overdue_events(system, invoice_id: str | None = None) -> list[tuple[int, int]]:
    """(level, days_overdue) of every `invoice.overdue` in the ledger's outbox, oldest first."""
    return [(e["data"]["level"], e["data"]["days_overdue"])
            for e in await outbox_events(system, "invoice.overdue")
            if invoice_id is None or e["subject"] == invoice_id]
