"""End to end: the test clock (DESIGN.md §10) over real `o2c run --test-clock` processes.

An integrator walks one credit order (30 days' terms) to its invoice, moves business time
with `o2c clock` (to the due date, then 31 days on) and watches, at a webhook receiver of its
own, what the time-based rules do: the overdue scan emits `invoice.overdue` (31 days overdue,
level 30, with levels 1 and 15 caught up), dunning escalates, credit holds the customer; a
promise to pay breaks once its date has passed; payment closes the order and releases the
hold. Nothing here calls a scan or a recheck by hand: after a jump the services' own workers
run as of the new today. Every delivery is verified as a Standard Webhooks receiver does,
against the receiver's wall clock (signatures keep real time while business time is two
months ahead). Every wait is bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from shared import webhooks
from shared.settings import PORT_OFFSETS, SERVICES
from tests.e2e.conftest import draft_order

TIMEOUT = 45  # seconds for anything that happens on its own: a delivery, a scan, a close

EVENT_TYPES = ["invoice.issued", "invoice.overdue", "dunning.escalated", "credit.hold_placed",
               "promise.broken", "payment.received", "invoice.paid", "credit.hold_released",
               "order.closed"]


@pytest.fixture
def o2c_run_options() -> dict:
    return {"args": ["--test-clock"]}


class Sink:
    """An integrator's webhook receiver on a loopback port.

    Each delivery is verified when it arrives, with the endpoint's secret and the wall clock
    (`webhook-timestamp` within the 5-minute tolerance), as the Standard Webhooks libraries do.
    """

    def __init__(self) -> None:
        self.secret: str | None = None
        self.events: list[dict[str, Any]] = []
        self.bad: list[str] = []  # deliveries that failed verification, and why
        self.seen: set[str] = set()
        self.arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink.arrived:
                    try:
                        webhooks.verify(sink.secret or "", headers, body, now=datetime.now(UTC))
                    except webhooks.InvalidSignature as exc:
                        sink.bad.append(f"{headers.get('webhook-id')}: {exc}")
                    if headers.get("webhook-id") not in sink.seen:  # at least once: dedup by id
                        sink.seen.add(headers.get("webhook-id", ""))
                        sink.events.append(json.loads(body))
                    sink.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/o2c"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, event_type: str, timeout: float = TIMEOUT,
                 **data: Any) -> dict[str, Any]:
        """The first `event_type` event whose `data` has these values, waiting up to `timeout`."""
        def find() -> dict[str, Any] | None:
            return next((e for e in self.events if e["type"] == event_type
                         and all(e["data"].get(k) == v for k, v in data.items())), None)

        with self.arrived:
            assert self.arrived.wait_for(find, timeout=timeout), (
                f"no {event_type} {data} webhook within {timeout}s; got "
                f"{[(e['type'], e['data'].get('level')) for e in self.events]}")
            assert not self.bad, f"deliveries failing verification: {self.bad}"
            return find()  # type: ignore[return-value]

    def of_type(self, event_type: str, **data: Any) -> list[dict[str, Any]]:
        with self.arrived:
            return [e for e in self.events if e["type"] == event_type
                    and all(e["data"].get(k) == v for k, v in data.items())]


@pytest.fixture
def sink():
    s = Sink()
    s.thread.start()
    yield s
    s.server.shutdown()
    s.server.server_close()


def poll(what: str, probe: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """`probe()` once it is truthy, asking every 0.2 s until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(0.2)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_overdue_dunning_hold_promise_and_payment_under_the_test_clock(o2c_run, sink):
    base, keys, env = o2c_run["base"], o2c_run["keys"], o2c_run["env"]
    url = {s: f"http://127.0.0.1:{base + PORT_OFFSETS[s]}" for s in SERVICES}

    def clock(*args: str) -> datetime:
        """`o2c clock …` as an integrator runs it: one line per service (in any order), each
        naming the service and the time it moved to, the same for all four."""
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "clock", *args, "--port-base", str(base),
             "--key", keys["admin"]], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
        assert sorted(line[0] for line in lines) == sorted(SERVICES), done.stdout
        (moved_to,) = {at(line[-1]) for line in lines}
        return moved_to

    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with httpx.Client(timeout=15, headers=admin) as http:
        def call(method: str, service: str, path: str, expect: int = 200, **kw: Any) -> Any:
            r = http.request(method, url[service] + path, **kw)
            assert r.status_code == expect, f"{method} {service}{path}: {r.status_code} {r.text}"
            return r.json() if r.content else None

        def now_at(service: str) -> datetime:
            return at(call("GET", service, "/v1/test-clock")["now"])

        # -- the clock is on everywhere, readable by any key, movable by admin only, forward only
        for service in SERVICES:
            ready = http.get(f"{url[service]}/ready")
            assert ready.status_code == 200, ready.text
            assert ready.json().get("test_clock") is True, (
                f"{service} /ready: {ready.text} (was o2c run started with --test-clock?)")
            wall = datetime.now(UTC)
            seen = http.get(f"{url[service]}/v1/test-clock",
                            headers={"Authorization": f"Bearer {keys['auditor']}"})
            assert seen.status_code == 200, seen.text
            assert abs(at(seen.json()["now"]) - wall) < timedelta(minutes=1)  # not moved yet
        earlier = call("PUT", "ledger", "/v1/test-clock", expect=409,
                       json={"now": "2020-01-01T00:00:00Z"})
        assert earlier["code"] == "conflict"
        refused = http.put(f"{url['ledger']}/v1/test-clock", json={"now": "2099-01-01T00:00:00Z"},
                           headers={"Authorization": f"Bearer {keys['finance']}"})
        assert refused.status_code == 403, refused.text

        endpoint = call("POST", "notifier", "/v1/webhook-endpoints", expect=201, json={
            "url": sink.url, "description": "integrator: test clock", "event_types": EVENT_TYPES})
        sink.secret = endpoint["secret"]

        # -- one credit order, 30 days' terms, walked to its invoice
        customer = call("POST", "credit", "/v1/customers", expect=201, json={
            "name": "Clockwork Trading", "salesperson_id": "S-CLOCK",
            "contacts": [
                {"name": "Ms Wang", "role": "finance", "email": "wang@clockwork.example"},
                {"name": "Mr Zhao", "role": "key_person", "email": "zhao@clockwork.example"},
                {"name": "Mr Li", "role": "general_manager", "email": "li@clockwork.example"}]})
        cid = customer["id"]
        call("PUT", "credit", f"/v1/customers/{cid}/credit-limit", json={
            "limit_minor": 50_000_000, "currency": "CNY", "terms_days": 30, "reason": "e2e"})
        order = call("POST", "orders", "/v1/orders", expect=201, json=draft_order(cid))
        oid = order["id"]
        assert order["payment_terms_days"] == 30
        call("POST", "orders", f"/v1/orders/{oid}/submit")
        for department in ("sales", "production", "technical", "quality", "finance"):
            call("POST", "orders", f"/v1/orders/{oid}/reviews",
                 json={"department": department, "decision": "approve", "comment": "ok"})
        assert call("GET", "orders", f"/v1/orders/{oid}")["state"] == "approved"
        signed = now_at("orders").isoformat()
        call("POST", "orders", f"/v1/orders/{oid}/contract",
             json={"contract_number": "CT-CLOCK-1", "signed_at": signed})
        call("POST", "orders", f"/v1/orders/{oid}/start-fulfillment")
        call("POST", "orders", f"/v1/orders/{oid}/deliveries", json={
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": "10"}],
            "delivered_at": now_at("orders").isoformat()})
        settled = call("POST", "orders", f"/v1/orders/{oid}/settle")
        assert settled["state"] == "invoiced"
        (invoice,) = call("GET", "ledger", "/v1/invoices", params={"order_id": oid})["items"]
        iid, total = invoice["id"], invoice["amount_minor"]
        assert total == 125500 and invoice["outstanding_minor"] == total
        due = date.fromisoformat(invoice["due_date"])
        assert due == at(invoice["issued_at"]).date() + timedelta(days=30)
        assert invoice["overdue"] is False
        issued = sink.wait_for("invoice.issued", invoice_id=iid)
        assert issued["data"]["due_date"] == due.isoformat()

        # -- to the due date (09:00 UTC, so no midnight falls inside the test): not overdue yet
        start = datetime.combine(due, datetime.min.time(), UTC) + timedelta(hours=9)
        assert clock("set", start.isoformat().replace("+00:00", "Z")) == start
        for service in SERVICES:
            moved = now_at(service)
            assert start <= moved < start + timedelta(minutes=5), (service, moved)
        got = call("GET", "ledger", f"/v1/invoices/{iid}")
        assert got["overdue"] is False and got["days_overdue"] == 0

        # -- 31 days later: overdue, dunned, held
        today = due + timedelta(days=31)
        assert clock("advance", "31d").date() == today
        for service in SERVICES:
            assert now_at(service).date() == today, service
        overdue = sink.wait_for("invoice.overdue", invoice_id=iid, level=30)
        assert overdue["data"]["days_overdue"] == 31
        assert overdue["data"]["due_date"] == due.isoformat()
        assert overdue["data"]["outstanding_minor"] == total
        assert overdue["source"] == "ledger" and overdue["subject"] == iid
        assert at(overdue["occurred_at"]).date() == today  # stamped in business time
        for level in (1, 15):  # the levels crossed meanwhile are caught up, as of the scan date
            assert sink.wait_for("invoice.overdue", invoice_id=iid,
                                 level=level)["data"]["days_overdue"] == 31
        got = call("GET", "ledger", f"/v1/invoices/{iid}")
        assert got["overdue"] is True and got["days_overdue"] == 31

        escalated = sink.wait_for("dunning.escalated", invoice_id=iid, threshold_days=30)
        assert escalated["data"]["level"] == 3 and escalated["data"]["days_overdue"] == 31
        notes = poll("level-3 dunning notifications", lambda: call(
            "GET", "notifier", "/v1/notifications",
            params={"invoice_id": iid, "level": 3})["items"])
        assert {n["recipient_role"] for n in notes} >= {"finance", "general_manager"}, notes
        for n in notes:
            assert n["threshold_days"] == 30 and n["days_overdue"] == 31, n
            assert "31 days overdue" in n["subject"], n
        (finance_note,) = [n for n in notes if n["recipient_role"] == "finance"]
        assert finance_note["address"] == "wang@clockwork.example"

        placed = sink.wait_for("credit.hold_placed", customer_id=cid)
        assert placed["data"]["kind"] == "automatic"
        assert placed["data"]["invoice_id"] == iid
        assert placed["data"]["days_overdue"] == 31
        assert "31 days overdue" in placed["data"]["reason"]
        hold_id = placed["data"]["hold_id"]
        profile = call("GET", "credit", f"/v1/customers/{cid}/credit")
        assert profile["status"] == "on_hold"
        assert [h["id"] for h in profile["holds"]] == [hold_id]

        # -- a promise to pay in 3 days, and 4 days pass without the money
        promise = call("POST", "ledger", f"/v1/invoices/{iid}/promises", expect=201, json={
            "promised_date": (today + timedelta(days=3)).isoformat(), "amount_minor": total,
            "contact_role": "finance", "note": "Ms Wang: paid within three days"})
        assert promise["status"] == "open"
        today += timedelta(days=4)
        assert clock("advance", "4d").date() == today
        broken = sink.wait_for("promise.broken", promise_id=promise["id"])
        assert broken["data"]["invoice_id"] == iid
        assert broken["data"]["promised_date"] == (today - timedelta(days=1)).isoformat()
        assert broken["data"]["amount_minor"] == total
        assert broken["data"]["paid_since_minor"] == 0
        (decided,) = call("GET", "ledger", f"/v1/invoices/{iid}/promises")["items"]
        assert decided["status"] == "broken" and decided["resolved_as_of"] == today.isoformat()
        assert call("GET", "ledger", f"/v1/invoices/{iid}")["days_overdue"] == 35

        # -- the money arrives: the order closes itself, the hold is released
        payment = call("POST", "ledger", "/v1/payments", expect=201, json={
            "customer_id": cid, "amount_minor": total, "currency": "CNY",
            "method": "bank_transfer", "reference": "BANK-CLOCK-1",
            "allocations": [{"invoice_id": iid, "amount_minor": total}]})
        assert at(payment["received_at"]).date() == today  # "now" is business time
        assert payment["allocated_minor"] == total
        paid = sink.wait_for("invoice.paid", invoice_id=iid)
        assert paid["data"]["days_late"] == 35
        released = sink.wait_for("credit.hold_released", hold_id=hold_id)
        assert released["data"]["invoice_id"] == iid
        assert "paid" in released["data"]["released_because"]
        closed = sink.wait_for("order.closed", order_id=oid)
        assert at(closed["occurred_at"]).date() == today
        assert poll("order closed", lambda: call(
            "GET", "orders", f"/v1/orders/{oid}")["state"] == "closed")
        got = call("GET", "ledger", f"/v1/invoices/{iid}")
        assert got["status"] == "paid" and got["outstanding_minor"] == 0
        assert got["overdue"] is False
        profile = call("GET", "credit", f"/v1/customers/{cid}/credit")
        assert profile["status"] == "active" and profile["holds"] == []

    # each event once per endpoint, every one signed in wall time
    assert not sink.bad, sink.bad
    assert len(sink.of_type("credit.hold_placed", customer_id=cid)) == 1
    overdues = sink.of_type("invoice.overdue", invoice_id=iid)
    assert sorted((e["data"]["level"], e["data"]["days_overdue"]) for e in overdues) == \
        [(1, 31), (15, 31), (30, 31)]  # nothing before the jump, each level once
