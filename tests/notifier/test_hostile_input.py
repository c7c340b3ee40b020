"""Hostile input to notifier, table-driven from its OpenAPI document (tests/hostile.py): edge
dates on every date and timestamp, loose integers, null in every field of a body."""

from __future__ import annotations

import pytest

from tests import hostile

SERVICE = "notifier"
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


async def test_patch_endpoint_null_refuses_what_cannot_be_cleared(system):
    notifier = system.client("notifier", "admin")
    endpoint = (await notifier.post("/v1/webhook-endpoints", json={
        "url": "http://hooks.test/x", "description": "desk"})).json()
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    for field in ("url", "event_types", "enabled"):
        r = await notifier.patch(url, json={field: None})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], r.text
    cleared = await notifier.patch(url, json={"description": None})
    assert cleared.status_code == 200 and cleared.json()["description"] is None, cleared.text
