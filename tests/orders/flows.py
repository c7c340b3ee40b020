"""Builders for orders tests: customers with credit, orders walked through their lifecycle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import select

from services.orders.models import outbox

DEPARTMENTS = ("sales", "production", "technical", "quality", "finance")
LINE = {"sku": "PCB-4L", "name": "4-layer PCB", "specification": "FR-4, 1.6 mm",
        "quantity": "100", "unit_price_minor": 1850, "quality_standard": "IPC-A-600 Class 2"}
ORDER_TOTAL = 185_000


async def make_customer(system: Any, *, salesperson_id: str | None = "S-ALICE",
                        limit_minor: int | None = 10_000_000, currency: str = "CNY",
                        name: str = "Shenzhen Brightway Electronics") -> str:
    """A customer in credit, with a credit limit unless `limit_minor` is None."""
    credit = system.client("credit", "credit_manager")
    r = await credit.post("/v1/customers", json={
        "name": name, "salesperson_id": salesperson_id,
        "contacts": [{"name": "Li Na", "role": "finance"}]})
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]
    if limit_minor is not None:
        r = await credit.put(f"/v1/customers/{customer_id}/credit-limit", json={
            "limit_minor": limit_minor, "currency": currency, "terms_days": 60,
            "reason": "Annual review 2026"})
        assert r.status_code == 200, r.text
    return customer_id


def draft_body(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "currency": "CNY", "payment_method": "credit",
            "payment_terms_days": 60, "delivery_date": "2026-02-01",
            "delivery_place": "Warehouse 3, Shenzhen", "external_ref": "PO-1", "lines": [LINE],
            **overrides}


async def create_order(system: Any, customer_id: str, *, principal: str = "sales",
                       **overrides: Any) -> dict[str, Any]:
    r = await system.client("orders", principal).post("/v1/orders", json=draft_body(customer_id, **overrides))
    assert r.status_code == 201, r.text
    return r.json()


async def submit(system: Any, order_id: str, principal: str = "sales") -> httpx.Response:
    return await system.client("orders", principal).post(f"/v1/orders/{order_id}/submit")


async def submitted_order(system: Any, customer_id: str, **overrides: Any) -> dict[str, Any]:
    order = await create_order(system, customer_id, **overrides)
    r = await submit(system, order["id"])
    assert r.status_code == 200, r.text
    return r.json()


async def review(system: Any, order_id: str, department: str, decision: str = "approve",
                 comment: str | None = None, principal: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"department": department, "decision": decision}
    if comment is not None:
        body["comment"] = comment
    return await system.client("orders", principal or department).post(
        f"/v1/orders/{order_id}/reviews", json=body)


async def approve_by_all(system: Any, order_id: str,
                         departments: tuple[str, ...] = DEPARTMENTS) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for department in departments:
        r = await review(system, order_id, department, comment=f"{department} agrees")
        assert r.status_code == 200, r.text
        body = r.json()
    return body


async def approved_order(system: Any, customer_id: str, **overrides: Any) -> dict[str, Any]:
    order = await submitted_order(system, customer_id, **overrides)
    approved = await approve_by_all(system, order["id"])
    assert approved["state"] == "approved", approved
    return approved


async def order_events(system: Any, type_: str | None = None) -> list[dict[str, Any]]:
    async with system.state("orders").db.session(read_only=True) as session:
        rows = (await session.execute(select(outbox.c.payload).order_by(outbox.c.seq))).scalars()
        events = [json.loads(p) for p in rows]
    return [e for e in events if type_ is None or e["type"] == type_]


async def history(system: Any, order_id: str, principal: str = "auditor") -> list[dict[str, Any]]:
    r = await system.client("orders", principal).get(f"/v1/orders/{order_id}/history")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def reservation(system: Any, reservation_id: str) -> dict[str, Any]:
    r = await system.client("credit", "credit_manager").get(f"/v1/reservations/{reservation_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def profile(system: Any, customer_id: str) -> dict[str, Any]:
    r = await system.client("credit", "credit_manager").get(f"/v1/customers/{customer_id}/credit")
    assert r.status_code == 200, r.text
    return r.json()


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"{request.url.host} is down", request=request)


@contextmanager
def service_down(system: Any, service: str) -> Iterator[None]:
    """`service` does not answer (connection refused) inside the block; the harness routes at
    request time, so every service sees the outage at once."""
    healthy = system.mounts[f"http://{service}.test"]
    system.mounts[f"http://{service}.test"] = httpx.MockTransport(_refuse)
    try:
        yield
    finally:
        system.mounts[f"http://{service}.test"] = healthy


def credit_down(system: Any) -> Any:
    return service_down(system, "credit")


DELIVERED_AT = "2026-01-05T08:00:00+00:00"


async def contracted_order(system: Any, customer_id: str, **overrides: Any) -> dict[str, Any]:
    order = await approved_order(system, customer_id, **overrides)
    r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/contract", json={
        "contract_number": "CT-2026-0042", "signed_at": "2026-01-05T08:30:00+00:00"})
    assert r.status_code == 200, r.text
    return r.json()


async def in_fulfillment(system: Any, customer_id: str, **overrides: Any) -> dict[str, Any]:
    order = await contracted_order(system, customer_id, **overrides)
    r = await system.client("orders", "production").post(f"/v1/orders/{order['id']}/start-fulfillment")
    assert r.status_code == 200, r.text
    return r.json()


async def deliver(system: Any, order: dict[str, Any], quantity: str, line: int = 0) -> httpx.Response:
    return await system.client("orders", "production").post(
        f"/v1/orders/{order['id']}/deliveries", json={
            "lines": [{"line_id": order["lines"][line]["id"], "quantity": quantity}],
            "delivered_at": DELIVERED_AT})


async def request_change(system: Any, order_id: str, changes: dict[str, Any], *,
                         principal: str = "sales", reason: str = "Customer asked for more boards",
                         impact: str | None = "One more shift in week 6") -> httpx.Response:
    body: dict[str, Any] = {"changes": changes, "reason": reason}
    if impact is not None:
        body["impact"] = impact
    return await system.client("orders", principal).post(f"/v1/orders/{order_id}/change-requests",
                                                         json=body)


async def review_change(system: Any, order_id: str, cr_id: str, department: str,
                        decision: str = "approve", comment: str | None = None,
                        principal: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"department": department, "decision": decision}
    if comment is not None:
        body["comment"] = comment
    return await system.client("orders", principal or department).post(
        f"/v1/orders/{order_id}/change-requests/{cr_id}/reviews", json=body)


async def approved_change(system: Any, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    r = await request_change(system, order_id, changes)
    assert r.status_code == 201, r.text
    body = r.json()
    for department in DEPARTMENTS:
        r = await review_change(system, order_id, body["id"], department, comment=f"{department} ok")
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["state"] == "approved", body
    return body


async def apply_change(system: Any, order_id: str, cr_id: str, principal: str = "sales",
                       agreement_number: str = "CT-2026-0042-A1",
                       signed_at: str = "2026-01-05T08:45:00+00:00") -> httpx.Response:
    return await system.client("orders", principal).post(
        f"/v1/orders/{order_id}/change-requests/{cr_id}/apply",
        json={"agreement_number": agreement_number, "signed_at": signed_at})


async def get_order(system: Any, order_id: str, principal: str = "auditor") -> dict[str, Any]:
    r = await system.client("orders", principal).get(f"/v1/orders/{order_id}")
    assert r.status_code == 200, r.text
    return r.json()
