"""Builders shared by the credit tests: customers, limits, reservations, outbox events."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select

CNY = 100  # minor units per yuan


def yuan(amount: int) -> int:
    return amount * CNY


async def new_customer(system, *, salesperson_id: str | None = "S-ALICE", name: str = "Brightway"
                       ) -> str:
    r = await system.client("credit", "credit_manager").post(
        "/v1/customers", json={"name": name, "salesperson_id": salesperson_id})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def set_limit(system, customer_id: str, limit_minor: int, *, currency: str = "CNY",
                    terms_days: int = 30) -> dict[str, Any]:
    r = await system.client("credit", "credit_manager").put(
        f"/v1/customers/{customer_id}/credit-limit",
        json={"limit_minor": limit_minor, "currency": currency, "terms_days": terms_days,
              "reason": "test limit"})
    assert r.status_code == 200, r.text
    return r.json()


async def profile(system, customer_id: str, principal: str = "credit_manager") -> dict[str, Any]:
    r = await system.client("credit", principal).get(f"/v1/customers/{customer_id}/credit")
    assert r.status_code == 200, r.text
    return r.json()


async def reserve(system, customer_id: str, amount_minor: int, *, order_id: str | None = None,
                  currency: str | None = "CNY", client=None):
    body: dict[str, Any] = {"customer_id": customer_id, "order_id": order_id or str(uuid.uuid4()),
                            "amount_minor": amount_minor}
    if currency is not None:
        body["currency"] = currency
    return await (client or system.client("credit", "service")).post("/v1/reservations", json=body)


async def add_guarantee(system, customer_id: str, amount_minor: int, *,
                        expires_on: str = "2026-12-31", currency: str = "CNY"):
    return await system.client("credit", "credit_manager").post(
        f"/v1/customers/{customer_id}/guarantees",
        json={"kind": "bank_guarantee", "amount_minor": amount_minor, "currency": currency,
              "issuer": "Bank of China", "expires_on": expires_on})


async def outbox_events(system, type_: str) -> list[dict[str, Any]]:
    """The envelopes of `type_` in credit's outbox, oldest first."""
    state = system.state("credit")
    table = state.outbox.table
    async with state.db.session() as session:
        rows = await session.execute(select(table.c.payload).where(table.c.type == type_)
                                     .order_by(table.c.seq))
        return [json.loads(payload) for payload in rows.scalars()]
