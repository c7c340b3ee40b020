"""End to end: real `o2c run` processes on free loopback ports.

Walks through health, auth, a customer, a draft order and an event reaching a local webhook
receiver with a valid Standard Webhooks signature, runs `o2c demo` (one order from intake
to an automatic close through notifier), then stops everything with Ctrl-C. Every
wait is bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from shared import webhooks
from tests.e2e.conftest import draft_order

EVENT_TIMEOUT = 30


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
        order = http.post(f"{url['orders']}/v1/orders", headers=auth("sales"),
                          json=draft_order(customer.json()["id"]))
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
