"""Hostile input to credit, table-driven from its OpenAPI document (tests/hostile.py): edge
dates on every date and timestamp, loose integers, null in every field of a body."""

from __future__ import annotations

import pytest

from tests import hostile

SERVICE = "credit"
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


async def test_patch_customer_null_clears_what_may_be_cleared_and_refuses_the_name(system):
    credit = system.client("credit", "credit_manager")
    created = (await credit.post("/v1/customers", json={
        "name": "Brightway", "registration_no": "9144", "address": "1 Keji Road",
        "contacts": [{"name": "Li Na", "role": "finance"}],
        "bank_accounts": [{"bank": "Bank of China", "account_no": "744"}]})).json()
    url = f"/v1/customers/{created['id']}"

    refused = await credit.patch(url, json={"name": None})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "validation_failed"
    assert [e["field"] for e in refused.json()["errors"]] == ["name"]

    cleared = await credit.patch(url, json={"contacts": None, "bank_accounts": None,
                                            "address": None, "registration_no": None})
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()
    assert (body["contacts"], body["bank_accounts"]) == ([], [])
    assert (body["address"], body["registration_no"], body["name"]) == (None, None, "Brightway")
    assert (await credit.get(url)).json()["contacts"] == []


async def test_terms_days_false_and_amounts_as_strings_are_refused(system):
    credit = system.client("credit", "credit_manager")
    customer = (await credit.post("/v1/customers", json={"name": "Brightway"})).json()
    r = await credit.put(f"/v1/customers/{customer['id']}/credit-limit", json={
        "limit_minor": "100", "currency": "CNY", "terms_days": False, "reason": "loose"})
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == {"limit_minor", "terms_days"}
    profile = (await credit.get(f"/v1/customers/{customer['id']}/credit")).json()
    assert (profile["limit_minor"], profile["version"]) == (0, 1)  # nothing changed
