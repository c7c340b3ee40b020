"""Hostile input to notifier: the rules particular to its bodies and parameters. The tables over
every service's documented dates, integers and bodies are in tests/kernel/test_hostile_tables.py."""

from __future__ import annotations


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
