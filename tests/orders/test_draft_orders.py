"""Draft orders through the HTTP API, as an integrator (ERP, shop, sales desk) uses them."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select, update

from services.orders.models import Order, OrderLine, outbox
from shared.http import ServiceHttp

CUSTOMER = {"name": "Shenzhen Brightway Electronics", "salesperson_id": "S-ALICE",
            "contacts": [{"name": "Li Na", "role": "finance"}]}
LINE = {"sku": "PCB-4L", "name": "4-layer PCB", "specification": "FR-4, 1.6 mm",
        "quantity": "12.5", "unit_price_minor": 1850, "quality_standard": "IPC-A-600 Class 2"}


async def make_customer(system, salesperson_id: str | None = "S-ALICE") -> str:
    credit = system.client("credit", "credit_manager")
    r = await credit.post("/v1/customers", json={**CUSTOMER, "salesperson_id": salesperson_id})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def draft(customer_id: str, **overrides) -> dict:
    return {"customer_id": customer_id, "currency": "CNY", "payment_method": "credit",
            "payment_terms_days": 60, "delivery_date": "2026-02-01",
            "delivery_place": "Warehouse 3, Shenzhen", "external_ref": "PO-1", "lines": [LINE],
            **overrides}


async def count_rows(system, model_or_table) -> int:
    async with system.state("orders").db.session(read_only=True) as session:
        return (await session.execute(select(func.count()).select_from(model_or_table))).scalar_one()


async def orders_events(system) -> list[dict]:
    async with system.state("orders").db.session(read_only=True) as session:
        rows = (await session.execute(select(outbox.c.payload).order_by(outbox.c.seq))).scalars()
        return [json.loads(p) for p in rows]


@pytest.fixture
async def customer_id(system) -> str:
    return await make_customer(system)


class TestCreate:
    async def test_creates_a_draft_with_totals_from_the_customer(self, system, customer_id):
        orders = system.client("orders", "sales")
        r = await orders.post("/v1/orders", json=draft(customer_id, lines=[
            LINE, {**LINE, "sku": None, "quantity": 3, "unit_price_minor": 0}]))
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["number"] == "SO-000001"
        assert r.headers["location"] == f"/v1/orders/{body['id']}"
        assert r.headers["etag"] == '"1"'
        assert body["state"] == "draft" and body["revision"] == 1 and body["version"] == 1
        assert body["salesperson_id"] == "S-ALICE"  # the customer's, none being named
        assert body["credit"] == {"status": "pending", "reservation_id": None, "reasons": []}
        assert body["reviews"] == [] and body["review_due_at"] is None
        assert body["delivery_date"] == "2026-02-01"
        first, second = body["lines"]
        assert first["quantity"] == "12.500" and first["total_minor"] == 23125
        assert first["delivered_quantity"] == "0.000" and first["returned_quantity"] == "0.000"
        assert second["quantity"] == "3.000" and second["total_minor"] == 0
        assert body["total_minor"] == 23125
        assert set(body) == {
            "id", "number", "customer_id", "salesperson_id", "external_ref", "currency",
            "payment_method", "payment_terms_days", "delivery_date", "delivery_place", "lines",
            "total_minor", "state", "revision", "version", "credit", "reviews", "review_due_at",
            "contract_number", "contract_signed_at", "invoice_id", "pending_step", "created_at",
            "updated_at"}

        events = await orders_events(system)
        assert [e["type"] for e in events] == ["order.created"]
        assert events[0]["subject"] == body["id"]
        assert events[0]["data"] == {
            "order_id": body["id"], "number": "SO-000001", "customer_id": customer_id,
            "salesperson_id": "S-ALICE", "total_minor": 23125, "currency": "CNY"}

    @pytest.mark.parametrize(("quantity", "price", "total"), [
        ("0.5", 5, 2),      # 2.5 → 2
        ("0.5", 7, 4),      # 3.5 → 4
        ("0.001", 500, 0),  # 0.5 → 0
        ("0.003", 500, 2),  # 1.5 → 2
        (0.125, 100, 12),   # 12.5 → 12, sent as a number
    ])
    async def test_line_totals_round_half_even(self, system, customer_id, quantity, price, total):
        r = await system.client("orders", "sales").post("/v1/orders", json=draft(
            customer_id, lines=[{"name": "Widget", "quantity": quantity, "unit_price_minor": price}]))
        assert r.status_code == 201, r.text
        assert r.json()["lines"][0]["total_minor"] == total
        assert r.json()["total_minor"] == total

    async def test_a_draft_may_leave_terms_open(self, system, customer_id):
        r = await system.client("orders", "admin").post(
            "/v1/orders", json={"customer_id": customer_id, "currency": "EUR"})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["lines"] == [] and body["total_minor"] == 0
        assert body["payment_method"] is None and body["delivery_date"] is None

    async def test_unknown_customer_is_refused(self, system):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft("5b0c1f4e-0000-4000-8000-000000000000"))
        assert r.status_code == 422
        assert r.json()["code"] == "validation_failed"
        assert r.json()["errors"] == [{"field": "customer_id", "message": "unknown customer"}]
        assert await count_rows(system, Order) == 0

    async def test_delivery_date_in_the_past_is_refused(self, system, customer_id):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id, delivery_date="2026-01-04"))
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["delivery_date"]
        today = await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id, delivery_date="2026-01-05"))
        assert today.status_code == 201

    async def test_absurd_amounts_are_refused_not_overflowed(self, system, customer_id):
        r = await system.client("orders", "sales").post("/v1/orders", json=draft(customer_id, lines=[
            {"name": "X", "quantity": "999999999999.999", "unit_price_minor": 10**15}]))
        assert r.status_code == 422
        assert [e["field"] for e in r.json()["errors"]] == ["lines[0]"]


class TestInputValidation:
    @pytest.mark.parametrize(("line", "field"), [
        ({**LINE, "quantity": "-1"}, "lines[0].quantity"),
        ({**LINE, "quantity": 0}, "lines[0].quantity"),
        ({**LINE, "quantity": "twelve"}, "lines[0].quantity"),
        ({**LINE, "quantity": "1.2345"}, "lines[0].quantity"),
        ({**LINE, "quantity": "NaN"}, "lines[0].quantity"),
        ({**LINE, "quantity": None}, "lines[0].quantity"),
        ({**LINE, "unit_price_minor": -1}, "lines[0].unit_price_minor"),
        ({**LINE, "unit_price_minor": 1.5}, "lines[0].unit_price_minor"),
        ({**LINE, "name": "x" * 201}, "lines[0].name"),
        ({**LINE, "name": ""}, "lines[0].name"),
        ({**LINE, "specification": "x" * 1001}, "lines[0].specification"),
        ({**LINE, "sku": "x" * 65}, "lines[0].sku"),
        ({**LINE, "quality_standard": "x" * 201}, "lines[0].quality_standard"),
        ({**LINE, "colour": "red"}, "lines[0].colour"),
    ])
    async def test_bad_line_is_refused_with_its_path(self, system, line, field):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft("any", lines=[LINE, line]))
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        fields = [e["field"] for e in r.json()["errors"]]
        assert fields == [field.replace("lines[0]", "lines[1]")]

    @pytest.mark.parametrize(("overrides", "field"), [
        ({"delivery_place": "x" * 501}, "delivery_place"),
        ({"external_ref": "x" * 101}, "external_ref"),
        ({"currency": "XXX"}, "currency"),
        ({"payment_method": "barter"}, "payment_method"),
        ({"payment_terms_days": -1}, "payment_terms_days"),
        ({"delivery_date": "next week"}, "delivery_date"),
        ({"customer_id": "../../admin"}, "customer_id"),
        ({"lines": [LINE] * 501}, "lines"),
        ({"state": "approved"}, "state"),
        ({"salesperson_id": ""}, "salesperson_id"),
        ({"salesperson_id": "S ALICE"}, "salesperson_id"),
        ({"salesperson_id": "x" * 65}, "salesperson_id"),
    ])
    async def test_bad_order_field_is_refused(self, system, customer_id, overrides, field):
        body = {**draft(customer_id), **overrides}
        r = await system.client("orders", "sales").post("/v1/orders", json=body)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert await count_rows(system, Order) == 0

    async def test_unknown_field_is_named(self, system, customer_id):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id, priority="high"))
        assert r.json()["errors"] == [{"field": "priority", "message": "unknown field"}]

    async def test_500_lines_are_accepted(self, system, customer_id):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id, lines=[{**LINE, "quantity": 1}] * 500))
        assert r.status_code == 201, r.text
        assert len(r.json()["lines"]) == 500 and r.json()["total_minor"] == 500 * 1850

    async def test_malformed_json(self, system):
        r = await system.client("orders", "sales").post(
            "/v1/orders", content=b'{"customer_id": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert r.json()["errors"] == [{"field": "body", "message": "malformed JSON"}]


class TestCreditDependency:
    async def _orders_http_to(self, system, transport: httpx.AsyncBaseTransport) -> None:
        """Route the orders service's calls to credit through `transport` (credit "down")."""
        state = system.state("orders")
        client = httpx.AsyncClient(mounts={"http://credit.test": transport})
        system._clients.append(client)
        state.http = ServiceHttp(client, state.settings)

    @pytest.mark.parametrize("transport", [
        httpx.MockTransport(lambda request: (_ for _ in ()).throw(
            httpx.ConnectError("connection refused", request=request))),
        httpx.MockTransport(lambda request: httpx.Response(503, json={"code": "overloaded"})),
    ], ids=["unreachable", "answers-503"])
    async def test_credit_down_refuses_and_writes_nothing(self, system, customer_id, transport):
        await self._orders_http_to(system, transport)
        orders = system.client("orders", "sales")
        r = await orders.post("/v1/orders", json=draft(customer_id),
                              headers={"Idempotency-Key": "retry-me"})
        assert r.status_code == 503
        assert r.json()["code"] == "dependency_unavailable"
        assert await count_rows(system, Order) == 0
        assert await count_rows(system, OrderLine) == 0
        assert await count_rows(system, outbox) == 0

        # Once credit answers again, the same key runs the request (503s are not stored).
        system.state("orders").http = ServiceHttp(system.state("orders").http_client,
                                                  system.state("orders").settings)
        again = await orders.post("/v1/orders", json=draft(customer_id),
                                  headers={"Idempotency-Key": "retry-me"})
        assert again.status_code == 201, again.text
        assert "idempotent-replayed" not in again.headers
        assert again.json()["number"] == "SO-000001"


class TestReadAndList:
    async def test_get_sends_the_etag(self, system, customer_id):
        created = (await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id))).json()
        for role in ("finance", "production", "technical", "quality", "credit_manager",
                     "auditor", "service", "alice"):
            r = await system.client("orders", role).get(f"/v1/orders/{created['id']}")
            assert r.status_code == 200, (role, r.text)
            assert r.json() == created and r.headers["etag"] == '"1"'

    async def test_missing_order_is_404(self, system):
        r = await system.client("orders", "admin").get("/v1/orders/nope")
        assert r.status_code == 404 and r.json()["code"] == "not_found"

    async def test_filters(self, system, customer_id):
        other = await make_customer(system, "S-BOB")
        orders = system.client("orders", "sales")
        a = (await orders.post("/v1/orders", json=draft(customer_id, external_ref="PO-A"))).json()
        system.clock.advance(hours=1)
        b = (await orders.post("/v1/orders", json=draft(other, external_ref="PO-B"))).json()
        system.clock.advance(hours=1)
        c = (await orders.post("/v1/orders", json=draft(customer_id, external_ref="PO-C"))).json()
        async with system.state("orders").db.session() as session, session.begin():
            await session.execute(update(Order).where(Order.id == c["id"]).values(state="in_review"))

        async def ids(**params) -> list[str]:
            r = await orders.get("/v1/orders", params=params)
            assert r.status_code == 200, r.text
            return [o["id"] for o in r.json()["items"]]

        assert await ids() == [a["id"], b["id"], c["id"]]
        assert await ids(customer_id=customer_id) == [a["id"], c["id"]]
        assert await ids(salesperson_id="S-BOB") == [b["id"]]
        assert await ids(state="draft") == [a["id"], b["id"]]
        assert await ids(state="in_review") == [c["id"]]
        assert await ids(external_ref="PO-B") == [b["id"]]
        assert await ids(created_from=b["created_at"]) == [b["id"], c["id"]]
        assert await ids(created_to=b["created_at"]) == [a["id"]]
        assert await ids(created_from=a["created_at"], created_to=c["created_at"]) == [a["id"], b["id"]]

        for bad in ({"state": "lost"}, {"created_from": "2026-01-01T00:00:00"},
                    {"cursor": "not-a-cursor"}, {"limit": 0}):
            r = await orders.get("/v1/orders", params=bad)
            assert r.status_code == 422, (bad, r.text)

    async def test_pagination_walks_every_order_once(self, system, customer_id):
        orders = system.client("orders", "sales")
        created = []
        for i in range(5):
            r = await orders.post("/v1/orders", json=draft(customer_id, external_ref=f"PO-{i}"))
            created.append(r.json()["id"])
            if i != 2:  # two orders share a timestamp: the id breaks the tie
                system.clock.advance(seconds=1)
        seen, cursor = [], None
        while True:
            page = (await orders.get("/v1/orders", params={"limit": 2} | (
                {"cursor": cursor} if cursor else {}))).json()
            assert len(page["items"]) <= 2
            seen += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(created) and len(seen) == len(set(seen)) == 5


class TestUpdate:
    async def test_patch_with_if_match_recomputes_totals(self, system, customer_id):
        orders = system.client("orders", "sales")
        order = (await orders.post("/v1/orders", json=draft(customer_id))).json()
        old_line_id = order["lines"][0]["id"]
        system.clock.advance(minutes=5)
        r = await orders.patch(f"/v1/orders/{order['id']}", headers={"If-Match": '"1"'}, json={
            "delivery_place": "Dock 7", "external_ref": None,
            "lines": [{"name": "A", "quantity": "0.5", "unit_price_minor": 7},
                      {"name": "B", "quantity": "2", "unit_price_minor": 100}]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert r.headers["etag"] == '"2"' and body["version"] == 2
        assert body["delivery_place"] == "Dock 7" and body["external_ref"] is None
        assert [line["total_minor"] for line in body["lines"]] == [4, 200]
        assert [line["name"] for line in body["lines"]] == ["A", "B"]
        assert old_line_id not in {line["id"] for line in body["lines"]}
        assert body["total_minor"] == 204
        assert body["updated_at"] != order["updated_at"] and body["created_at"] == order["created_at"]
        assert body["payment_terms_days"] == 60 and body["revision"] == 1

        got = await orders.get(f"/v1/orders/{order['id']}")
        assert got.json() == body
        assert await count_rows(system, OrderLine) == 2
        events = await orders_events(system)
        assert [e["type"] for e in events] == ["order.created", "order.updated"]
        assert events[1]["data"]["total_minor"] == 204
        assert events[1]["data"]["changed"] == ["delivery_place", "external_ref", "lines"]

    async def test_stale_if_match_is_412(self, system, customer_id):
        orders = system.client("orders", "sales")
        order = (await orders.post("/v1/orders", json=draft(customer_id))).json()
        assert (await orders.patch(f"/v1/orders/{order['id']}", json={"delivery_place": "A"},
                                   headers={"If-Match": '"1"'})).status_code == 200
        stale = await orders.patch(f"/v1/orders/{order['id']}", json={"delivery_place": "B"},
                                   headers={"If-Match": '"1"'})
        assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
        current = (await orders.get(f"/v1/orders/{order['id']}")).json()
        assert current["delivery_place"] == "A" and current["version"] == 2

    async def test_patch_without_if_match_still_bumps_the_version(self, system, customer_id):
        orders = system.client("orders", "sales")
        order = (await orders.post("/v1/orders", json=draft(customer_id))).json()
        r = await orders.patch(f"/v1/orders/{order['id']}", json={"currency": "USD"})
        assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["currency"] == "USD"
        unchanged = await orders.patch(f"/v1/orders/{order['id']}", json={})
        assert unchanged.status_code == 200 and unchanged.json()["version"] == 2

    async def test_concurrent_writer_loses_the_compare_and_set(self, system, customer_id):
        from services.orders import service
        from services.orders.errors import OrderChanged
        from services.orders.schemas import OrderUpdate

        order = (await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id))).json()
        state = system.state("orders")
        async with state.db.session(read_only=True) as reader:
            theirs = await reader.get(Order, order["id"])  # read version 1, before the write below
        async with state.db.session() as first:
            mine = await first.get(Order, order["id"])
            await service.update_order(session=first, outbox=state.outbox, clock=state.clock,
                                       order=mine, data=OrderUpdate(delivery_place="A"))
            await first.commit()
        async with state.db.session() as second:
            with pytest.raises(OrderChanged):
                await service.update_order(session=second, outbox=state.outbox, clock=state.clock,
                                           order=theirs, data=OrderUpdate(delivery_place="B"))
            await second.rollback()
        current = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert current["delivery_place"] == "A" and current["version"] == 2

    async def test_non_draft_is_refused(self, system, customer_id):
        orders = system.client("orders", "sales")
        order = (await orders.post("/v1/orders", json=draft(customer_id))).json()
        async with system.state("orders").db.session() as session, session.begin():
            await session.execute(update(Order).where(Order.id == order["id"]).values(state="approved"))
        r = await orders.patch(f"/v1/orders/{order['id']}", json={"delivery_place": "X"})
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "invalid_transition" and body["state"] == "approved"
        assert "update" not in body["allowed"]
        assert (await orders.get(f"/v1/orders/{order['id']}")).json()["delivery_place"] == \
            order["delivery_place"]

    @pytest.mark.parametrize(("patch", "field"), [
        ({"customer_id": "other"}, "customer_id"),
        ({"currency": None}, "currency"),
        ({"lines": None}, "lines"),
        ({"lines": [{**LINE, "quantity": "-2"}]}, "lines[0].quantity"),
        ({"delivery_date": "2025-12-31"}, "delivery_date"),
    ])
    async def test_bad_patch_is_refused(self, system, customer_id, patch, field):
        orders = system.client("orders", "sales")
        order = (await orders.post("/v1/orders", json=draft(customer_id))).json()
        r = await orders.patch(f"/v1/orders/{order['id']}", json=patch)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert (await orders.get(f"/v1/orders/{order['id']}")).json()["version"] == 1


class TestIdempotency:
    async def test_same_key_replays_the_same_order(self, system, customer_id):
        orders = system.client("orders", "sales")
        headers = {"Idempotency-Key": "erp-po-1"}
        first = await orders.post("/v1/orders", json=draft(customer_id), headers=headers)
        again = await orders.post("/v1/orders", json=draft(customer_id), headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert await count_rows(system, Order) == 1

        other = await orders.post("/v1/orders", json=draft(customer_id, external_ref="PO-2"),
                                  headers=headers)
        assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
        assert await count_rows(system, Order) == 1


class TestAccess:
    async def test_salespeople_see_and_create_only_their_own(self, system, customer_id):
        bobs_customer = await make_customer(system, "S-BOB")
        nobodys_customer = await make_customer(system, None)
        alice = system.client("orders", "alice")
        bob = system.client("orders", "bob")

        mine = await alice.post("/v1/orders", json=draft(customer_id))
        assert mine.status_code == 201 and mine.json()["salesperson_id"] == "S-ALICE"
        for other in (bobs_customer, nobodys_customer):
            refused = await alice.post("/v1/orders", json=draft(other))
            assert refused.status_code == 422
            assert refused.json()["errors"] == [{"field": "customer_id", "message": "unknown customer"}]
        bobs = (await bob.post("/v1/orders", json=draft(bobs_customer))).json()

        order_id = mine.json()["id"]
        assert (await alice.get(f"/v1/orders/{order_id}")).status_code == 200
        hidden = await bob.get(f"/v1/orders/{order_id}")
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
        patched = await bob.patch(f"/v1/orders/{order_id}", json={"delivery_place": "X"})
        assert patched.status_code == 404

        assert [o["id"] for o in (await alice.get("/v1/orders")).json()["items"]] == [order_id]
        assert (await alice.get("/v1/orders", params={"salesperson_id": "S-BOB"})).json()["items"] == []
        everyone = (await system.client("orders", "finance").get("/v1/orders")).json()["items"]
        assert {o["id"] for o in everyone} == {order_id, bobs["id"]}

    async def test_a_bound_salesperson_may_name_only_itself(self, system, customer_id):
        alice = system.client("orders", "alice")
        own = await alice.post("/v1/orders", json=draft(customer_id, salesperson_id="S-ALICE"))
        assert own.status_code == 201 and own.json()["salesperson_id"] == "S-ALICE"
        refused = await alice.post("/v1/orders", json=draft(customer_id, salesperson_id="S-BOB"))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        assert "S-ALICE" in refused.json()["detail"]
        assert await count_rows(system, Order) == 1

    async def test_an_unbound_principal_may_name_any_salesperson(self, system, customer_id):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft(customer_id, salesperson_id="S-CAROL"))
        assert r.status_code == 201 and r.json()["salesperson_id"] == "S-CAROL"
        # The named salesperson's bound principal sees it; the customer's does not.
        assert (await system.client("orders", "alice").get(f"/v1/orders/{r.json()['id']}")).status_code == 404

    async def test_roles(self, system, customer_id):
        for role in ("auditor", "finance", "production", "credit_manager"):
            r = await system.client("orders", role).post("/v1/orders", json=draft(customer_id))
            assert r.status_code == 403 and r.json()["code"] == "forbidden", role
        order = (await system.client("orders", "sales").post("/v1/orders", json=draft(customer_id))).json()
        r = await system.client("orders", "auditor").patch(f"/v1/orders/{order['id']}", json={})
        assert r.status_code == 403

    async def test_no_key_is_401(self, system, customer_id):
        anonymous = system.client("orders", None)
        for r in (await anonymous.post("/v1/orders", json=draft(customer_id)),
                  await anonymous.get("/v1/orders"),
                  await anonymous.get("/v1/orders/x")):
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"


async def test_openapi_documents_every_operation(system):
    spec = (await system.client("orders", None).get("/openapi.json")).json()
    ops = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    for name in ("orders_create_order", "orders_list_orders", "orders_get_order", "orders_update_order"):
        op = ops[name]
        assert op["tags"] == ["orders"] and op["description"]
        assert {"401", "403", "422"} <= set(op["responses"])
    assert "503" in ops["orders_create_order"]["responses"]
    assert "412" in ops["orders_update_order"]["responses"]
    schemas = spec["components"]["schemas"]
    assert schemas["OrderCreate"]["examples"] and schemas["OrderUpdate"]["examples"]
