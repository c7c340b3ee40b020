"""End to end: real `o2c run` processes on free loopback ports.

Walks through health, auth, a customer, a draft order and an event reaching a local webhook
receiver with a valid Standard Webhooks signature, runs `o2c demo` (one order from intake
to an automatic close through notifier), then stops everything with Ctrl-C. Every
wait is bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from shared import webhooks
from tests.conftest import PG_URL

START_TIMEOUT = 90
EVENT_TIMEOUT = 30


def _free_port_base() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 4 > 65535:
            continue
        try:
            sockets = []
            for offset in range(1, 5):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no four free consecutive ports")


class Receiver:
    """A webhook receiver on a loopback port that records what it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.arrived:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()},
                                              body))
                    receiver.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/o2c"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, event_type: str, timeout: float) -> tuple[dict[str, str], bytes]:
        def find():
            for headers, body in self.received:
                if json.loads(body).get("type") == event_type:
                    return headers, body
            return None

        with self.arrived:
            assert self.arrived.wait_for(find, timeout=timeout), (
                f"no {event_type} webhook within {timeout}s; got "
                f"{[json.loads(b).get('type') for _, b in self.received]}")
            return find()


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def o2c_run(tmp_path: Path, database_urls: dict[str, str]):
    base = _free_port_base()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("O2C_") or k.startswith("O2C_TEST_")}
    env.update({"O2C_OUTBOX_POLL_SECONDS": "0.2", "O2C_LOG_LEVEL": "WARNING"})
    if PG_URL:
        for service, url in database_urls.items():
            env[f"O2C_{service.upper()}_DATABASE_URL"] = url
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--port-base", str(base),
         "--data-dir", str(tmp_path / "var")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                started.set()
        started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(START_TIMEOUT), "o2c run did not start in time"
        assert proc.poll() is None, "o2c run exited:\n" + "".join(lines) + proc.stderr.read()
        keys = dict(re.findall(r"^\s+([a-z-]+)\s+(o2c_\S+)\s+roles=", "".join(lines), re.M))
        yield {"base": base, "keys": keys, "proc": proc, "output": "".join(lines)}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_o2c_run_end_to_end(o2c_run, receiver):
    base, keys = o2c_run["base"], o2c_run["keys"]
    output = o2c_run["output"]
    url = {s: f"http://127.0.0.1:{base + i}" for i, s in
           enumerate(["orders", "credit", "ledger", "notifier"], start=1)}
    for u in url.values():
        assert f"{u}/docs" in output
    assert {"admin", "sales", "finance", "credit-manager", "auditor"} <= set(keys)

    def auth(principal: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[principal]}"}

    with httpx.Client(timeout=10) as http:
        for u in url.values():
            assert http.get(f"{u}/health").json()["status"] == "ok"
            assert http.get(f"{u}/ready").status_code == 200
        assert http.get(f"{url['credit']}/v1/customers").status_code == 401

        endpoint = http.post(f"{url['notifier']}/v1/webhook-endpoints", headers=auth("admin"),
                             json={"url": receiver.url, "description": "e2e receiver",
                                   "event_types": ["customer.created", "order.created"]})
        assert endpoint.status_code == 201, endpoint.text
        secret = endpoint.json()["secret"]

        customer = http.post(f"{url['credit']}/v1/customers", headers=auth("credit-manager"),
                             json={"name": "E2E Industrial", "salesperson_id": "S-ALICE"})
        assert customer.status_code == 201, customer.text
        order = http.post(f"{url['orders']}/v1/orders", headers=auth("sales"), json={
            "customer_id": customer.json()["id"], "currency": "CNY",
            "payment_method": "credit", "payment_terms_days": 30,
            "delivery_date": (date.today() + timedelta(days=30)).isoformat(),
            "delivery_place": "Shenzhen warehouse 3",
            "lines": [{"sku": "PCB-1", "name": "Controller board", "quantity": "10",
                       "unit_price_minor": 12550}]})
        assert order.status_code == 201, order.text
        assert order.json()["total_minor"] == 125500

    for event_type, subject in (("customer.created", customer.json()["id"]),
                                ("order.created", order.json()["id"])):
        headers, body = receiver.wait_for(event_type, EVENT_TIMEOUT)
        webhooks.verify(secret, headers, body)
        assert json.loads(body)["subject"] == subject

    demo = subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--port-base", str(base),
         "--key", keys["admin"], "--wait", str(EVENT_TIMEOUT)],
        capture_output=True, text=True, timeout=EVENT_TIMEOUT + 60)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "the order closed itself" in demo.stdout, demo.stdout

    proc = o2c_run["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
