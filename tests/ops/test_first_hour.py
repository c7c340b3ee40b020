"""Issue 13, first-hour friction for ops: what an operator meets in the first hour, in-process
(the `o2c run` ones are in tests/e2e/test_o2c_run_guard.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from services.notifier import catalogue
from tests.harness import HOOKS_URL

ROOT = Path(__file__).resolve().parents[2]


class TestMetricsNameTheDocsRoutes:
    @pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
    async def test_docs_and_spec_are_counted_under_their_path(self, system, path):
        client = system.client("credit", principal=None)
        assert (await client.get(path)).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert (f'o2c_http_requests_total{{method="GET",route="{path}",service="credit",'
                f'status="200"}} 1.0') in metrics
        assert 'route="unmatched"' not in metrics

    async def test_an_unknown_path_is_still_unmatched(self, system):
        client = system.client("credit", principal=None)
        await client.get("/v1/nowhere")
        assert 'route="unmatched"' in (await client.get("/metrics")).text


class TestWebhookEventTypes:
    async def test_an_unknown_type_is_refused_naming_the_field_and_the_known_types(self, system):
        notifier = system.client("notifier")
        r = await notifier.post("/v1/webhook-endpoints", json={
            "url": HOOKS_URL + "/typo", "event_types": ["invoice.paid", "order.creatd"]})
        assert r.status_code == 422, r.text
        (error,) = r.json()["errors"]
        assert error["field"] == "event_types[1]"
        assert "unknown event type 'order.creatd'" in error["message"]
        assert "order.created" in error["message"] and "invoice.overdue" in error["message"]

    async def test_patch_refuses_an_unknown_type_too(self, system):
        notifier = system.client("notifier")
        created = await notifier.post("/v1/webhook-endpoints", json={
            "url": HOOKS_URL + "/ok", "event_types": ["order.created", "*"]})
        assert created.status_code == 201, created.text
        r = await notifier.patch(f"/v1/webhook-endpoints/{created.json()['id']}",
                                 json={"event_types": ["invoice.*"]})
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "event_types[0]"

    def test_the_catalogue_holds_every_type_the_services_emit(self):
        """Every event-type literal in the services' code is in the catalogue, so no
        producer's event is refused as a filter; and the catalogue has no type nobody emits."""
        namespaces = {t.split(".")[0] for t in catalogue.EVENT_TYPES}
        pattern = re.compile(rf"^({'|'.join(namespaces)})\.[a-z_]+$")
        emitted = set()
        for path in (ROOT / "services").rglob("*.py"):
            if "migrations" in path.parts or path.name == "catalogue.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and pattern.match(node.value):
                    emitted.add(node.value)
        assert emitted - catalogue.KNOWN == set()
        assert catalogue.KNOWN - emitted == set()
