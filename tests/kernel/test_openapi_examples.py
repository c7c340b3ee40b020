"""Every request example of every operation stays valid whenever it is read: sent today, and
sent decades from now, none is refused for a date that has gone stale.

The requests are built the way tests/hostile.py builds them: the operation's own examples,
read from the service's OpenAPI document, sent against real resources. Most examples name ids
that do not exist here, so they may be refused for those; what they may never be is a 5xx or a
422 naming one of the body's dates or timestamps. The examples integrators start from
(create, update, settle and change request of an order) are then sent where they apply, with
the ids swapped for real ones, and must be accepted.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from tests import hostile
from tests.fixtures import flows

BODIES = hostile.operations_with_body()
# Today, and a day long after: the examples' future dates are 2099's.
WHEN = [datetime.now(UTC), datetime(2090, 1, 1, 9, 0, tzinfo=UTC)]


def _request_examples(service: str, method: str, path: str) -> list[Any]:
    content = hostile.spec(service)["paths"][path][method]["requestBody"]["content"]["application/json"]
    found = hostile._examples(hostile.spec(service), content["schema"])
    found += [e["value"] for e in content.get("examples", {}).values() if "value" in e]
    return found


def _date_fields(service: str, method: str, path: str) -> set[str]:
    document = hostile.spec(service)
    schema = hostile._body_schema(document["paths"][path][method])
    return {field for field, kind in hostile._leaves(document, schema, "") if kind in ("date", "date-time")}


def test_every_operation_with_a_body_has_examples():
    missing = [f"{m.upper()} {p} ({s})" for s, m, p in BODIES if not _request_examples(s, m, p)]
    assert not missing, missing


@pytest.mark.parametrize(("service", "method", "path"), BODIES, ids=lambda v: str(v))
async def test_no_example_is_refused_for_a_stale_date(system, service, method, path):
    resources = hostile.Resources(system)
    url = await resources.url(path)  # made at the suite's clock, then time moves on
    dates = _date_fields(service, method, path)
    failures = []
    for at in WHEN:
        system.clock.set(at)
        for example in _request_examples(service, method, path):
            r = await system.client(service, "admin").request(method.upper(), url, json=example)
            if r.status_code >= 500:
                failures.append(f"{at:%Y-%m-%d}: {example} answered {r.status_code} {r.text[:300]}")
            elif r.status_code in (207, 422) and (stale := dates & set(hostile.named_fields(r))):
                failures.append(f"{at:%Y-%m-%d}: {example} refused for {sorted(stale)}: {r.text[:300]}")
    assert not failures, "\n".join(failures)


def _example(service: str, method: str, path: str) -> dict[str, Any]:
    return copy.deepcopy(_request_examples(service, method, path)[0])


def _with_line_ids(body: Any, line_id: str) -> Any:
    """The example with every `line_id` naming the order's real line."""
    if isinstance(body, dict):
        return {k: line_id if k == "line_id" else _with_line_ids(v, line_id) for k, v in body.items()}
    if isinstance(body, list):
        return [_with_line_ids(v, line_id) for v in body]
    return body


@pytest.mark.parametrize("at", WHEN, ids=lambda at: f"{at:%Y}")
async def test_order_examples_are_accepted_where_they_apply(system, at):
    customer_id = await flows.make_customer(system)
    draft = await flows.create_order(system, customer_id)
    approved = await flows.approved_order(system, customer_id)
    delivered = await flows.in_fulfillment(system, customer_id)
    r = await flows.deliver(system, delivered, delivered["lines"][0]["quantity"])
    assert r.status_code == 200 and r.json()["state"] == "delivered", r.text
    system.clock.set(at)
    sales = system.client("orders", "sales")

    create = {**_example("orders", "post", "/v1/orders"), "customer_id": customer_id}
    r = await sales.post("/v1/orders", json=create)
    assert r.status_code == 201, r.text

    update = _example("orders", "patch", "/v1/orders/{order_id}")
    r = await sales.patch(f"/v1/orders/{draft['id']}", json=update)
    assert r.status_code == 200, r.text

    change = _with_line_ids(_example("orders", "post", "/v1/orders/{order_id}/change-requests"),
                            approved["lines"][0]["id"])
    r = await sales.post(f"/v1/orders/{approved['id']}/change-requests", json=change)
    assert r.status_code == 201, r.text

    settle = _example("orders", "post", "/v1/orders/{order_id}/settle")
    r = await system.client("orders", "finance").post(f"/v1/orders/{delivered['id']}/settle", json=settle)
    assert r.status_code == 200 and r.json()["state"] == "invoiced", r.text
