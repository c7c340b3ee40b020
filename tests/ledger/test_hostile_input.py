"""Hostile input to ledger: the rules particular to its bodies and parameters. The tables over
every service's documented dates, integers and bodies are in tests/kernel/test_hostile_tables.py."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("as_of", ["0", "1e10", "1767225600", "2026-01-05T00:00:00Z"])
async def test_a_number_or_timestamp_is_not_a_report_date(system, as_of):
    r = await system.client("ledger", "finance").get("/v1/reports/aging", params={"as_of": as_of})
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "query.as_of",
                                   "message": "Input should be a date as a YYYY-MM-DD string"}]
    ok = await system.client("ledger", "finance").get("/v1/reports/aging",
                                                      params={"as_of": "2026-01-01"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("amount", [True, "100", 1.5, 100.0])
async def test_a_payment_of_true_or_a_string_posts_nothing(system, amount):
    ledger = system.client("ledger", "finance")
    r = await ledger.post("/v1/payments", json={
        "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11", "amount_minor": amount,
        "currency": "CNY", "method": "bank_transfer"})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["amount_minor"]
    assert (await ledger.get("/v1/payments")).json()["items"] == []


async def test_the_ends_of_the_range_report_without_overflow(system):
    """Arithmetic at the range's ends: the period's default `from` (29 days before), the
    statement's 1st of the month, the day after `to`, aging buckets 180 days back."""
    ledger = system.client("ledger", "finance")
    for path, params in [("/v1/reports/aging", {"as_of": "1900-01-01"}),
                         ("/v1/reports/dso", {"to": "1900-01-01"}),
                         ("/v1/reports/collection-effectiveness", {"to": "1900-01-01"}),
                         ("/v1/reports/salesperson-performance", {"to": "1900-01-01"}),
                         ("/v1/trial-balance", {"as_of": "1900-01-01"}),
                         ("/v1/journal-entries", {"from": "1900-01-01", "to": "2999-12-31"}),
                         ("/v1/payments", {"received_from": "1900-01-01",
                                           "received_to": "2999-12-31"})]:
        r = await ledger.get(path, params=params)
        assert r.status_code == 200, (path, r.text)
    future = await ledger.get("/v1/reports/aging", params={"as_of": "2999-12-31"})
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "query.as_of"
