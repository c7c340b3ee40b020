"""Builders for notifier tests: event envelopes and subscribed endpoints."""

from __future__ import annotations

import uuid
from typing import Any

from tests.harness import HOOKS_URL, System


def envelope(system: System, type_: str = "order.approved", **overrides: Any) -> dict[str, Any]:
    """An event envelope as a producer's outbox posts it, occurring now.

    The default type is one no o2c service subscribes to, so only the test's endpoints get it.
    """
    return {
        "id": str(uuid.uuid4()), "type": type_, "occurred_at": system.clock.now().isoformat(),
        "source": "ledger", "subject": "INV-1", "data": {"invoice_id": "INV-1", "level": 1},
        **overrides,
    }


async def ingest(system: System, event: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    response = await system.client("notifier", "service").post("/v1/events", json=event)
    assert response.status_code == expect, response.text
    return response.json()


async def subscribe(system: System, path: str = "/hook", event_types: list[str] | None = None,
                    principal: str = "admin") -> dict[str, Any]:
    """An endpoint at the test receiver; the body includes its secret."""
    response = await system.client("notifier", principal).post("/v1/webhook-endpoints", json={
        "url": HOOKS_URL + path, "event_types": event_types or [], "description": "test"})
    assert response.status_code == 201, response.text
    return response.json()


async def deliveries(system: System, **params: Any) -> list[dict[str, Any]]:
    response = await system.client("notifier", "admin").get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]
