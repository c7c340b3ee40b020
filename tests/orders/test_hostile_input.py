"""Hostile input to orders: the rules particular to its bodies and parameters. The tables over
every service's documented dates, integers and bodies are in tests/kernel/test_hostile_tables.py."""

from __future__ import annotations


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
