"""Hostile input to credit: the rules particular to its bodies and parameters. The tables over
every service's documented dates, integers and bodies are in tests/kernel/test_hostile_tables.py."""

from __future__ import annotations


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
