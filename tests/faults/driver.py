"""A client driver: many order flows at once against the real processes, retry-safe.

Each `Flow` is state-driven: it reads its order and, from the order's state, takes the next
step under an `Idempotency-Key` fixed per (order, step) and a body fixed at the step's first
attempt, so every retry is the same request. `Api.call` retries connection errors and
502/503/504 with the same key and body after a short backoff until the flow's deadline, and
records every answer by (service, route, status); anything a correct system never answers
a careful client is an `Anomaly` (a 500, a 409 "in progress" on a same-key retry,
`idempotency_key_reused`, any other 4xx).

Routes: `happy` is DESIGN.md §4's credit order from intake to its automatic close on
`invoice.paid`; the others take one detour each, so every cross-service step of orders is on
some route (harness.ORDER_STEPS): `recheck` asks credit again in review, `revise` is rejected
by quality and revised, `cancel` is cancelled once approved, `prepaid` is invoiced and paid at
contract, `returns` sends goods back after settlement, `change` applies a change request that
raises the order's total before fulfilment. No route closes an order itself: an order must
close on its own once paid (DESIGN.md §4); one still invoiced at the deadline is reported.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.faults.harness import Cluster

ROUTES = ("happy", "recheck", "revise", "cancel", "prepaid", "returns", "change")
DEPARTMENTS = ("sales", "production", "technical", "quality", "finance")
RETRYABLE = frozenset({502, 503, 504})
QUANTITY, CHANGED_QUANTITY, RETURNED_QUANTITY, UNIT_PRICE = 100, 120, 10, 1850
REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 0.25
GIVE_UP_AFTER = 3  # definitive refusals of one step before a flow stops trying it
HAPPY_WRITES = 14  # POSTs and PUTs of a happy flow: customer, limit, order, submit, 5 reviews, …

_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def route_of(path: str) -> str:
    return _ID.sub("/{id}", path.split("?", 1)[0])


class FlowStopped(Exception):
    """The flow cannot go on: its deadline passed mid-retry, or a setup step was refused."""


# --- What the driver saw -------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    kind: str
    service: str
    route: str
    status: int
    key: str | None
    detail: str

    def __str__(self) -> str:
        return (f"{self.kind}: {self.service} {self.route} -> {self.status} "
                f"(key {self.key or '-'}) {self.detail[:200]}")


@dataclass
class Recorder:
    """Every answer by (service, route, status); anomalies; successful writes so far."""

    statuses: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    anomalies: list[Anomaly] = field(default_factory=list)
    writes: Counter[str] = field(default_factory=Counter)  # route -> 2xx answers to POST/PUT

    def answered(self, service: str, method: str, route: str, status: int | str) -> None:
        self.statuses[(service, f"{method} {route}", str(status))] += 1
        if method != "GET" and isinstance(status, int) and status < 300:
            self.writes[route] += 1

    @property
    def successful_writes(self) -> int:
        return sum(self.writes.values())

    def count(self, status: int | str) -> int:
        return sum(n for (_, _, s), n in self.statuses.items() if s == str(status))

    def anomaly_counts(self) -> Counter[str]:
        return Counter(a.kind for a in self.anomalies)

    def table(self) -> str:
        rows = sorted(self.statuses.items())
        return "\n".join(f"    {svc:<8} {route:<58} {status:>9} x{n}" for (svc, route, status), n in rows)


def _classify(response: httpx.Response, retry: bool) -> str | None:
    """What is wrong with an answer a correct system never gives this client, or None."""
    status = response.status_code
    if status < 400 or status in RETRYABLE:
        return None
    code = _code(response)
    if status >= 500:
        return f"{status} {code or 'error'}"
    if code == "idempotency_key_reused":
        return "422 idempotency_key_reused"
    if status == 409 and retry:
        return f"409 {code} on a same-key retry"
    return f"{status} {code or 'error'}"


def _code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --- HTTP ----------------------------------------------------------------------------------


class Api:
    """One HTTP client for every service, retrying unavailability with the same request."""

    def __init__(self, cluster: Cluster, recorder: Recorder) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.http = httpx.AsyncClient(timeout=REQUEST_TIMEOUT, limits=httpx.Limits(
            max_connections=200, max_keepalive_connections=50))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, service: str, method: str, path: str, *, principal: str = "admin",
                   key: str | None = None, json: Any = None, params: dict[str, str] | None = None,
                   retry: bool = False) -> httpx.Response:
        """One attempt, recorded; `retry`: it re-sends a key already sent (for the anomalies)."""
        headers = {"Authorization": f"Bearer {self.cluster.keys[principal]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        route = route_of(path)
        try:
            response = await self.http.request(method, self.cluster.url(service) + path,
                                               headers=headers, json=json, params=params)
        except httpx.TransportError as exc:
            self.recorder.answered(service, method, route, type(exc).__name__)
            raise
        self.recorder.answered(service, method, route, response.status_code)
        kind = _classify(response, retry=retry and key is not None)
        if kind is not None:
            self.recorder.anomalies.append(Anomaly(kind, service, f"{method} {route}",
                                                   response.status_code, key, response.text))
        return response

    async def call(self, service: str, method: str, path: str, *, deadline: float,
                   principal: str = "admin", key: str | None = None, json: Any = None,
                   params: dict[str, str] | None = None) -> httpx.Response:
        """Send until answered with something other than unavailability, or until `deadline`.

        A 409 `conflict` (the key's first attempt "still in progress") and a 500 are recorded
        as anomalies and retried too: the same key may not be given up on either.
        """
        backoff, attempt = 0.1, 0
        while True:
            try:
                response = await self.send(service, method, path, principal=principal, key=key,
                                           json=json, params=params, retry=attempt > 0)
            except httpx.TransportError:
                pass
            else:
                if not (response.status_code in RETRYABLE or response.status_code >= 500
                        or (response.status_code == 409 and _code(response) == "conflict")):
                    return response
            if time.monotonic() + backoff > deadline:
                raise FlowStopped(f"{method} {route_of(path)} on {service}: no answer before the "
                                  "deadline")
            await asyncio.sleep(backoff)
            backoff, attempt = min(backoff * 1.6, 1.0), attempt + 1


# --- Flows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request of a flow: its name (the key's suffix) and what to send."""

    name: str
    service: str
    path: str
    principal: str
    body: Any = None
    method: str = "POST"


@dataclass(frozen=True)
class Wait:
    reason: str


@dataclass
class Flow:
    """One customer and one order taken along a route by whatever its state calls for."""

    run: str
    index: int
    route: str = "happy"
    customer_id: str | None = None
    order_id: str | None = None
    first_revision: int = 1     # the draft's revision; the revise route is rejected in it
    state: str | None = None
    outcome: str | None = None  # why the flow stopped short, when it did
    done: set[str] = field(default_factory=set)
    bodies: dict[str, Any] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return f"{self.run}-{self.index:04d}"

    @property
    def payment_reference(self) -> str:
        return f"{self.name}-pay"

    @property
    def expected_state(self) -> str:
        return "cancelled" if self.route == "cancel" else "closed"

    def key(self, step: str) -> str:
        return f"{self.name}-{step}"

    def body(self, step: str, build: Callable[[], Any]) -> Any:
        """The body of a step as built at its first attempt: every retry sends the same."""
        if step not in self.bodies:
            self.bodies[step] = build()
        return self.bodies[step]


class Driver:
    """Runs flows concurrently until each reaches its route's end (or `until`) or the deadline."""

    def __init__(self, api: Api, run: str) -> None:
        self.api = api
        self.run = run
        self.now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        self.delivery_date = (date.today() + timedelta(days=30)).isoformat()

    def flows(self, count: int, route: str = "happy") -> list[Flow]:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        return [Flow(self.run, i, route) for i in range(count)]

    async def drive(self, flows: list[Flow], *, deadline: float,
                    until: frozenset[str] = frozenset()) -> None:
        """Take each flow to the end of its route (or to a state in `until`) by `deadline`."""
        await asyncio.gather(*(self._drive(flow, deadline, until) for flow in flows))

    async def _drive(self, flow: Flow, deadline: float, until: frozenset[str]) -> None:
        flow.outcome = None
        try:
            await self._setup(flow, deadline)
            while True:
                order = await self._order(flow, deadline)
                if flow.state in until or flow.outcome or _ended(flow, order):
                    return
                action = await self._next(flow, order, deadline)
                if isinstance(action, Wait):
                    if time.monotonic() + POLL_SECONDS > deadline:
                        flow.outcome = f"still {flow.state} at the deadline ({action.reason})"
                        return
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                await self._take(flow, action, deadline)
        except FlowStopped as exc:
            flow.outcome = f"{flow.state or 'no order'}: {exc}"

    async def _post(self, flow: Flow, step: Step, deadline: float) -> httpx.Response:
        """Send the step under its key, with the body it had at its first attempt."""
        return await self.api.call(step.service, step.method, step.path, deadline=deadline,
                                   principal=step.principal, key=flow.key(step.name),
                                   json=flow.body(step.name, lambda: step.body))

    async def _take(self, flow: Flow, step: Step, deadline: float) -> None:
        response = await self._post(flow, step, deadline)
        if response.status_code < 300:
            flow.done.add(step.name)
            return
        flow.refusals[step.name] += 1  # the state moved under us, or a refusal: look again
        if flow.refusals[step.name] >= GIVE_UP_AFTER:
            flow.outcome = (f"stuck in {flow.state}: {step.name} answered "
                            f"{response.status_code} {_code(response)} {GIVE_UP_AFTER} times")
        elif time.monotonic() + POLL_SECONDS < deadline:
            await asyncio.sleep(POLL_SECONDS)

    async def _setup(self, flow: Flow, deadline: float) -> None:
        """The flow's customer (with a credit limit far above its order) and draft order."""
        if flow.customer_id is None:
            r = await self._expect(flow, Step("customer", "credit", "/v1/customers", "credit_manager", {
                "name": f"Faults {flow.name}", "salesperson_id": "S-FAULTS",
                "contacts": [{"name": "Li Na", "role": "finance"}]}), deadline)
            flow.customer_id = r.json()["id"]
            r = await self.api.call(
                "credit", "PUT", f"/v1/customers/{flow.customer_id}/credit-limit", deadline=deadline,
                principal="credit_manager", json={"limit_minor": 10_000_000_000, "currency": "CNY",
                                                  "terms_days": 30, "reason": "fault-injection run"})
            if r.status_code != 200:
                raise FlowStopped(f"credit limit answered {r.status_code}")
        if flow.order_id is None:
            r = await self._expect(flow, Step("order", "orders", "/v1/orders", "sales", {
                "customer_id": flow.customer_id, "currency": "CNY",
                "payment_method": "prepaid" if flow.route == "prepaid" else "credit",
                "payment_terms_days": 30, "delivery_date": self.delivery_date,
                "delivery_place": "Shenzhen warehouse 3", "external_ref": flow.name,
                "lines": [{"sku": "PCB-4L", "name": "4-layer PCB", "quantity": str(QUANTITY),
                           "unit_price_minor": UNIT_PRICE}]}), deadline)
            flow.order_id, flow.first_revision = r.json()["id"], r.json()["revision"]

    async def _expect(self, flow: Flow, step: Step, deadline: float) -> httpx.Response:
        r = await self._post(flow, step, deadline)
        if r.status_code >= 300:
            raise FlowStopped(f"{step.name} answered {r.status_code}: {r.text[:200]}")
        return r

    async def _order(self, flow: Flow, deadline: float) -> dict[str, Any]:
        r = await self.api.call("orders", "GET", f"/v1/orders/{flow.order_id}", deadline=deadline)
        if r.status_code != 200:
            raise FlowStopped(f"GET order answered {r.status_code}")
        order = r.json()
        flow.state = order["state"]
        return order

    async def _get(self, service: str, path: str, deadline: float, **params: str) -> Any:
        r = await self.api.call(service, "GET", path, deadline=deadline, params=params)
        if r.status_code != 200:
            raise FlowStopped(f"GET {route_of(path)} answered {r.status_code}")
        return r.json()

    # -- what the order's state calls for ----------------------------------------------------

    async def _next(self, flow: Flow, order: dict[str, Any], deadline: float) -> Step | Wait:
        state, revision, oid = order["state"], order["revision"], order["id"]
        orders = f"/v1/orders/{oid}"
        if state == "draft":
            return Step(f"submit-r{revision}", "orders", f"{orders}/submit", "sales")
        if state == "in_review":
            return self._review(flow, order)
        if state == "rejected" and _rejection_planned(flow, order):
            return Step(f"revise-r{revision}", "orders", f"{orders}/revise", "sales")
        if state == "approved":
            if flow.route == "cancel":
                return Step("cancel", "orders", f"{orders}/cancel", "sales",
                            {"reason": "customer withdrew (fault-injection run)"})
            return Step("contract", "orders", f"{orders}/contract", "sales",
                        {"contract_number": f"CT-{flow.name}", "signed_at": self.now.isoformat()})
        if state == "contracted":
            if flow.route == "change" and "change-apply" not in flow.done:
                return await self._change(flow, order, deadline)
            if flow.route == "prepaid" and "pay" not in flow.done:
                return await self._payment(flow, deadline)
            return Step("start-fulfillment", "orders", f"{orders}/start-fulfillment", "production")
        if state == "in_fulfillment":
            return Step("deliver", "orders", f"{orders}/deliveries", "production", {
                "delivered_at": self.now.isoformat(), "lines": [
                    {"line_id": line["id"],
                     "quantity": str(Decimal(line["quantity"]) - Decimal(line["delivered_quantity"]))}
                    for line in order["lines"]]})
        if state == "delivered":
            return Step("settle", "orders", f"{orders}/settle", "finance", {})
        if state == "invoiced":
            if flow.route == "returns" and "return" not in flow.done:
                return Step("return", "orders", f"{orders}/returns", "sales", {
                    "reason": "delamination at incoming inspection",
                    "lines": [{"line_id": order["lines"][0]["id"], "quantity": str(RETURNED_QUANTITY)}]})
            if "pay" not in flow.done:
                return await self._payment(flow, deadline)
            return Wait("the automatic close")
        return Wait(f"nothing to do in {state}")

    def _review(self, flow: Flow, order: dict[str, Any]) -> Step | Wait:
        revision = order["revision"]
        if flow.route == "recheck" and "recheck" not in flow.done:
            return Step("recheck", "orders", f"/v1/orders/{order['id']}/credit-recheck", "sales")
        rejecting = _rejection_planned(flow, order)
        given = {r["department"] for r in order.get("reviews") or []}
        for department in (("quality",) if rejecting else DEPARTMENTS):
            if department not in given:
                body: dict[str, Any] = {"department": department, "decision": "approve"}
                if rejecting:
                    body = {**body, "decision": "reject", "comment": "needs IPC class 3"}
                return Step(f"review-r{revision}-{department}", "orders",
                            f"/v1/orders/{order['id']}/reviews", department, body)
        return Wait(f"credit is {(order.get('credit') or {}).get('status')}")

    async def _change(self, flow: Flow, order: dict[str, Any], deadline: float) -> Step | Wait:
        base = f"/v1/orders/{order['id']}/change-requests"
        requests = (await self._get("orders", base, deadline))["items"]
        if not requests:
            return Step("change", "orders", base, "sales", {
                "reason": "customer needs more boards", "changes": {"lines": [
                    {"line_id": order["lines"][0]["id"], "quantity": str(CHANGED_QUANTITY)}]}})
        change = requests[-1]
        path = f"{base}/{change['id']}"
        if change["state"] == "in_review":
            given = {r["department"] for r in change.get("reviews") or []}
            for department in DEPARTMENTS:
                if department not in given:
                    return Step(f"change-review-{department}", "orders", f"{path}/reviews", department,
                                {"department": department, "decision": "approve"})
            return Wait("the change request's reviews")
        if change["state"] == "approved":
            return Step("change-apply", "orders", f"{path}/apply", "sales", {
                "agreement_number": f"CT-{flow.name}-A1", "signed_at": self.now.isoformat()})
        flow.done.add("change-apply")  # applied (or closed otherwise): fulfilment goes on
        return Wait(f"change request {change['state']}")

    async def _payment(self, flow: Flow, deadline: float) -> Step | Wait:
        """Pay what the order's invoice has outstanding, once, under one reference."""
        invoices = (await self._get("ledger", "/v1/invoices", deadline, order_id=flow.order_id))["items"]
        if not invoices:
            return Wait("the order's invoice")
        invoice = invoices[0]
        if "pay" not in flow.bodies and invoice["outstanding_minor"] == 0:
            flow.done.add("pay")
            return Wait("nothing outstanding")
        amount = invoice["outstanding_minor"]
        return Step("pay", "ledger", "/v1/payments", "finance", {
            "customer_id": flow.customer_id, "amount_minor": amount, "currency": "CNY",
            "method": "bank_transfer", "reference": flow.payment_reference,
            "allocations": [{"invoice_id": invoice["id"], "amount_minor": amount}]})


def _rejection_planned(flow: Flow, order: dict[str, Any]) -> bool:
    """The revise route has quality reject the order's first revision (and approve the next)."""
    return flow.route == "revise" and order["revision"] == flow.first_revision


def _ended(flow: Flow, order: dict[str, Any]) -> bool:
    """Closed, cancelled, or rejected anywhere but at the revise route's planned rejection."""
    if order["state"] == "rejected":
        return not _rejection_planned(flow, order)
    return order["state"] in ("closed", "cancelled")


def outcomes(flows: list[Flow]) -> Counter[str]:
    """Final states of the flows' orders, with the state each was expected to reach."""
    return Counter(f"{f.state}" + ("" if f.state == f.expected_state else f" (wanted {f.expected_state})")
                   for f in flows)
