"""Issue 13, first-hour friction for ops: what an operator meets in the first hour, in-process
(the `o2c run` ones are in tests/e2e/test_o2c_run_guard.py)."""

from __future__ import annotations

import ast
import asyncio
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
        from tests.fixtures.flows import draft_body, make_customer

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

    async def test_one_batch_names_each_requests_id_and_notifier_logs_each(self, system, caplog):
        """Events of several requests still go in one POST (batches stay full under load):
        under the relay pass's id, with each event's own in `request_ids`, and notifier logs
        each event's arrival under the request that caused it."""
        recorder = _Recorder(system.mounts["http://notifier.test"])
        system.mounts["http://notifier.test"] = recorder
        credit = system.client("credit", "credit_manager")
        subjects = {}
        for rid in ("req-one", "req-two"):
            r = await credit.post("/v1/customers", json={"name": f"Trail {rid}"},
                                  headers={"X-Request-ID": rid})
            assert r.status_code == 201, r.text
            subjects[rid] = r.json()["id"]
        caplog.set_level(logging.INFO, logger="o2c.notifier.events")
        assert await system.state("credit").relay.dispatch_once() >= 2
        assert len(recorder.posts) == 1, "the two requests' events went in separate POSTs"
        headers, body = recorder.posts[0]
        assert headers["x-request-id"] not in subjects
        origin = dict(zip((e["subject"] for e in body["events"]), body["request_ids"],
                          strict=True))
        assert {origin[s] for s in subjects.values()} == set(subjects)
        assert all(origin[subject] == rid for rid, subject in subjects.items())
        logged = {(rec.request_id, rec.event_id) for rec in caplog.records
                  if rec.name == "o2c.notifier.events"}
        by_subject = {e["subject"]: e["id"] for e in body["events"]}
        assert {(rid, by_subject[s]) for rid, s in subjects.items()} <= logged


class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests on, keeping the headers and body of each `POST /v1/events`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.posts: list[tuple[dict[str, str], dict]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/events":
            self.posts.append((dict(request.headers), json.loads(await request.aread())))
        return await self.inner.handle_async_request(request)


# ---------------------------------------------------------------- started before `o2c migrate`

_NO_TABLE = "no such table: outbox"


def _schema_missing_error() -> Exception:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(_NO_TABLE))


def _warnings(caplog, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


class TestStartedBeforeMigrate:
    async def test_ledger_seeds_its_chart_once_migrated_without_a_restart(
            self, tmp_path, keys, keys_file, clock, caplog, monkeypatch):
        from asgi_lifespan import LifespanManager

        from services.ledger import app as ledger_app
        from shared import migrations
        from tests.fixtures.ledger import invoice_body
        from tests.harness import SERVICE_KEY, settings_for

        monkeypatch.setattr(ledger_app, "CHART_RETRY_SECONDS", 0.05)
        caplog.set_level(logging.INFO)
        settings = settings_for(
            "ledger", ledger_database_url=f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}",
            data_dir=tmp_path, api_keys_file=keys_file, service_key=SERVICE_KEY,
            workers_enabled=False, log_json=False)
        app = ledger_app.create_app(settings, clock=clock)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ledger.test",
                                         headers={"Authorization": f"Bearer {keys['service']}"}
                                         ) as ledger:
                assert (await ledger.get("/ready")).status_code == 503
                (warning,) = _warnings(caplog, "ledger accounts not seeded yet")
                assert warning.levelno == logging.WARNING and not warning.exc_info
                await migrations.upgrade(app.state.db.engine, "ledger")
                assert (await ledger.get("/ready")).status_code == 200
                deadline = asyncio.get_running_loop().time() + 10
                while not _warnings(caplog, "seeded ledger accounts"):
                    assert asyncio.get_running_loop().time() < deadline, "never seeded"
                    await asyncio.sleep(0.05)
                r = await ledger.post("/v1/invoices", json=invoice_body())
                assert r.status_code == 201, r.text
        assert len(_warnings(caplog, "ledger accounts not seeded yet")) == 1

    async def test_a_missing_chart_is_503_not_an_input_error(self, system):
        from sqlalchemy import delete

        from services.ledger.models import Account
        from tests.fixtures.ledger import invoice_body

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():
            await session.execute(delete(Account).where(Account.code == "1100"))
        r = await system.client("ledger", "service").post("/v1/invoices", json=invoice_body())
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "dependency_unavailable"
        assert "chart of accounts is not seeded" in r.json()["detail"]

    async def test_a_periodic_worker_retries_in_seconds_while_not_migrated(self, caplog,
                                                                           monkeypatch):
        from shared import app as shared_app

        monkeypatch.setattr(shared_app, "SCHEMA_RETRY_SECONDS", 0.01)
        calls = 0
        stop = asyncio.Event()

        async def step() -> None:
            nonlocal calls
            calls += 1
            if calls < 4:
                raise _schema_missing_error()
            stop.set()

        caplog.set_level(logging.INFO, logger="o2c.app")
        await asyncio.wait_for(shared_app.run_periodically(stop, 86_400, step, "overdue-scan"),
                               timeout=5)
        assert calls == 4  # not one try a day
        lines = [r for r in caplog.records if r.name == "o2c.app"]
        assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
        assert "worker overdue-scan waits: the database is not migrated" in lines[0].getMessage()
        assert "resumes" in lines[1].getMessage()
        assert not any(r.exc_info for r in lines)

    async def test_the_relay_says_once_that_it_waits_for_migrations(self, tmp_path, clock,
                                                                    caplog):
        from sqlalchemy import MetaData

        from shared.db import Database
        from shared.outbox import Outbox, OutboxRelay, outbox_table

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        metadata = MetaData()
        relay = OutboxRelay(db=db, outbox=Outbox(outbox_table(metadata)), http=None, clock=clock,
                            poll_seconds=0.01, service="credit")
        caplog.set_level(logging.INFO, logger="o2c.outbox")
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await asyncio.sleep(0.3)  # some 30 polls on a database without an outbox
            async with db.engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task
            await db.dispose()
        lines = [r for r in caplog.records if r.name == "o2c.outbox"]
        assert [r.getMessage().split(":")[0] for r in lines] == [
            "outbox relay waits", "outbox relay resumes"]
        assert "no such table: outbox" in lines[0].getMessage()
        assert not any(r.exc_info for r in lines)


class TestDocsWithoutACdn:
    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    async def test_the_page_and_every_asset_it_loads_come_from_the_service(self, system, page):
        client = system.client("ledger", principal=None)  # the docs need no key
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        assert "cdn" not in html.lower() and "https://" not in html and "http://" not in html
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        assert len(urls) >= 2, html  # a script and a stylesheet or icon at least
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, (url, asset.status_code)
            assert len(asset.content) > 1000, url
        assert "'/openapi.json'" in html or '"/openapi.json"' in html or "/openapi.json" in html

    async def test_assets_are_counted_under_their_mount_and_traversal_is_refused(self, system):
        client = system.client("ledger", principal=None)
        assert (await client.get("/docs/assets/swagger-ui.css")).status_code == 200
        for outside in ("/docs/assets/%2e%2e/%2e%2e/shared/app.py",
                        "/docs/assets/%2e%2e/%2e%2e/%2e%2e/pyproject.toml"):
            assert (await client.get(outside)).status_code == 404, outside
        metrics = (await client.get("/metrics")).text
        assert 'route="/docs/assets"' in metrics


class TestRunCountsOnlyItsOwnServices:
    def test_another_process_answering_ready_on_the_port_is_not_taken_for_ours(self):
        """What made a second `o2c run` print "o2c is running": the first copy's /ready."""
        import os
        import subprocess
        import sys
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from services import cli

        class Ready(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        impostor = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
        threading.Thread(target=impostor.serve_forever, daemon=True).start()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        env = {"O2C_ORDERS_URL": f"http://127.0.0.1:{impostor.server_address[1]}"}
        try:
            assert not cli._wait_ready(env, {"orders": child}, {"orders": read_end}, timeout=1.0)
            os.write(write_end, b"up\n")  # now our own process says it holds the port
            assert cli._wait_ready(env, {"orders": child}, {"orders": read_end}, timeout=5.0)
        finally:
            child.kill()
            child.wait()
            impostor.shutdown()
            os.close(read_end)
            os.close(write_end)
