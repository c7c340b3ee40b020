"""Hostile input to orders, table-driven from its OpenAPI document (tests/hostile.py): edge
dates on every date and timestamp, loose integers, null in every field of a body."""

from __future__ import annotations

import pytest

from tests import hostile

SERVICE = "orders"
DATES = hostile.targets(("date", "date-time"), services=(SERVICE,))
INTEGERS = hostile.targets(("integer",), where=("body",), services=(SERVICE,))
BODIES = hostile.operations_with_body(services=(SERVICE,))


@pytest.mark.parametrize("target", DATES, ids=lambda t: t.id)
async def test_edge_dates_are_refused_naming_the_field(system, target):
    await hostile.check_edge_dates(system, target)


@pytest.mark.parametrize("target", INTEGERS, ids=lambda t: t.id)
async def test_body_integers_are_strict(system, target):
    await hostile.check_loose_integers(system, target)


async def test_integer_query_parameters_take_digits_only(system):
    await hostile.check_query_integers(system, SERVICE)


@pytest.mark.parametrize(("service", "method", "path"), BODIES, ids=lambda v: str(v))
async def test_null_in_any_body_field_is_never_a_5xx(system, service, method, path):
    await hostile.check_nulls(system, service, method, path)


async def test_patch_order_null_clears_optional_terms_only(system):
    credit = system.client("credit", "credit_manager")
    customer = (await credit.post("/v1/customers", json={"name": "Brightway"})).json()
    orders = system.client("orders", "sales")
    order = (await orders.post("/v1/orders", json={
        "customer_id": customer["id"], "currency": "CNY", "payment_terms_days": 30,
        "delivery_date": "2026-03-15", "delivery_place": "Shenzhen", "external_ref": "PO-1",
        "lines": [{"name": "Board", "quantity": "10", "unit_price_minor": 100}]})).json()
    url = f"/v1/orders/{order['id']}"
    for field in ("currency", "lines"):
        r = await orders.patch(url, json={field: None})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    cleared = await orders.patch(url, json={f: None for f in (
        "payment_terms_days", "delivery_date", "delivery_place", "external_ref",
        "payment_method")})
    assert cleared.status_code == 200, cleared.text
    assert all(cleared.json()[f] is None for f in (
        "payment_terms_days", "delivery_date", "delivery_place", "external_ref"))
