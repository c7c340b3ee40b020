"""Issue 13, first-hour friction for ops: what an operator meets in the first hour, in-process
(the `o2c run` ones are in tests/e2e/test_o2c_run_guard.py)."""

from __future__ import annotations

import ast
import json
import logging
import re
from pathlib import Path

import httpx
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


class TestRequestIdThroughTheOutbox:
    async def test_the_event_of_an_order_reaches_notifier_under_the_request_id(self, system,
                                                                               caplog):
        from tests.orders.flows import draft_body, make_customer

        customer_id = await make_customer(system)
        await system.pump()
        caplog.set_level(logging.INFO, logger="o2c.access")
        r = await system.client("orders", "sales").post(
            "/v1/orders", json=draft_body(customer_id), headers={"X-Request-ID": "abc"})
        assert r.status_code == 201, r.text
        assert await system.state("orders").relay.dispatch_once() >= 1
        ingests = [rec for rec in caplog.records if rec.name == "o2c.access"
                   and rec.service == "notifier" and rec.route == "/v1/events"]
        assert ingests and {rec.request_id for rec in ingests} == {"abc"}
        assert ingests[0].status in (200, 201, 207)
        events = (await system.client("notifier").get(
            "/v1/events", params={"type": "order.created"})).json()["items"]
        assert [e["subject"] for e in events] == [r.json()["id"]]

    async def test_a_relay_pass_posts_each_requests_events_under_its_own_id(self, system):
        recorder = _Recorder(system.mounts["http://notifier.test"])
        system.mounts["http://notifier.test"] = recorder
        credit = system.client("credit", "credit_manager")
        subjects = {}
        for rid in ("req-one", "req-two"):
            r = await credit.post("/v1/customers", json={"name": f"Trail {rid}"},
                                  headers={"X-Request-ID": rid})
            assert r.status_code == 201, r.text
            subjects[rid] = r.json()["id"]
        assert await system.state("credit").relay.dispatch_once() >= 2
        seen = {}
        for headers, body in recorder.posts:
            for event in body.get("events", [body]):
                seen.setdefault(headers["x-request-id"], set()).add(event["subject"])
        assert seen == {rid: {subject} for rid, subject in subjects.items()}


class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, keeping the headers and body of each `POST /v1/events`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.posts: list[tuple[dict[str, str], dict]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/events":
            self.posts.append((dict(request.headers), json.loads(await request.aread())))
        return await self.inner.handle_async_request(request)
