"""What must hold once the faults are over (DESIGN.md §9), checked against the live system.

Each check returns a `Check`: a figure for the report (always printed, so a run is also a
measurement) and the problems found. `Verifier.converge` repeats the checks that recovery
can still make true — orders closing, events arriving — until they all pass or the deadline
passes; the record of what the driver was answered and what the services logged cannot
change and is checked once at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared import webhooks
from tests.faults.driver import Api, Flow, FlowStopped, Recorder, outcomes
from tests.faults.harness import SINK_EVENT_TYPES, Cluster, WebhookSink

CHECK_CALL_SECONDS = 20.0
POLL_SECONDS = 0.5  # one check's requests may wait this long for a service to answer
OUTBOX_SERVICES = ("orders", "credit", "ledger")


@dataclass
class Check:
    name: str
    figure: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Report:
    checks: list[Check]
    timeline: list[str]

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {p}" for c in self.checks for p in c.problems]

    def __str__(self) -> str:
        lines = ["figures:", *(f"  {c.name:<22} {c.figure}" for c in self.checks)]
        lines += ["timeline:", *(f"  {t}" for t in self.timeline)]
        if self.problems:
            lines += ["problems:", *(f"  - {p}" for p in self.problems[:80])]
            if len(self.problems) > 80:
                lines.append(f"  … and {len(self.problems) - 80} more")
        return "\n".join(lines)


def _sample(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" … (+{len(items) - n})" if len(items) > n else "")


class Verifier:
    """The invariants of a run over its flows, read through the APIs and the databases."""

    def __init__(self, cluster: Cluster, api: Api, recorder: Recorder,
                 sink: WebhookSink | None) -> None:
        self.cluster, self.api, self.recorder, self.sink = cluster, api, recorder, sink

    async def _get(self, service: str, path: str, **params: str) -> dict:
        r = await self.api.call(service, "GET", path, params=params,
                                deadline=time.monotonic() + CHECK_CALL_SECONDS)
        if r.status_code != 200:
            raise FlowStopped(f"GET {path} on {service} answered {r.status_code}: {r.text[:200]}")
        return r.json()

    async def _all(self, service: str, path: str, **params: str) -> list[dict]:
        items, cursor = [], None
        while True:
            page = await self._get(service, path, limit="200", **params,
                                   **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    # -- checks recovery can still make true -------------------------------------------------

    async def orders(self, flows: list[Flow]) -> Check:
        """Every order reached the end of its route (closed; cancelled on the cancel route)."""
        short = []
        for flow in flows:
            if flow.order_id is None:
                short.append(f"flow {flow.name}: no order ({flow.outcome})")
                continue
            flow.state = (await self._get("orders", f"/v1/orders/{flow.order_id}"))["state"]
            if flow.state != flow.expected_state:
                short.append(f"order {flow.order_id} ({flow.route}) is {flow.state}"
                             + (f": {flow.outcome}" if flow.outcome else ""))
        states = outcomes(flows)
        return Check("orders", f"{len(flows) - len(short)}/{len(flows)} at their end; "
                               f"states {dict(states)}", short)

    async def invoices(self, flows: list[Flow]) -> Check:
        """Exactly one invoice per order (none for an order cancelled before its contract)."""
        counts: Counter[int] = Counter()
        wrong = []
        for flow in flows:
            if flow.order_id is None:
                continue
            n = len(await self._all("ledger", "/v1/invoices", order_id=flow.order_id))
            counts[n] += 1
            want = 0 if flow.route == "cancel" else 1
            if n != want:
                wrong.append(f"order {flow.order_id} has {n} invoices (want {want})")
        return Check("invoices per order", str(dict(sorted(counts.items()))), wrong)

    async def payments(self, references: dict[str, set[str]]) -> Check:
        """Exactly one payment per reference (each reference was posted under one key).

        `references`: customer id -> the references its payments were posted with.
        """
        per_reference: Counter[str] = Counter()
        for customer_id in references:
            for payment in await self._all("ledger", "/v1/payments", customer_id=customer_id):
                per_reference[payment["reference"]] += 1
        wanted = set().union(*references.values()) if references else set()
        spread = Counter(per_reference[r] for r in wanted)
        problems = [f"reference {r}: {per_reference[r]} payments" for r in sorted(wanted)
                    if per_reference[r] != 1]
        problems += [f"reference {r}: a payment nobody posted" for r in per_reference if r not in wanted]
        return Check("payments per key", f"{len(wanted)} keys; payments per key "
                                         f"{dict(sorted(spread.items()))}", problems)

    async def trial_balance(self) -> Check:
        tb = await self._get("ledger", "/v1/trial-balance")
        debit, credit = tb["total_debit_minor"], tb["total_credit_minor"]
        return Check("trial balance", f"debit {debit} credit {credit}",
                     [] if debit == credit else [f"debit {debit} != credit {credit}"])

    async def outbox_in_event_log(self) -> Check:
        """Every outbox row of every service is an event in notifier's log."""
        logged = {row[0] for row in await self.cluster.databases.fetch("notifier", "SELECT id FROM events")}
        rows, undispatched, lost = 0, 0, []
        for service in OUTBOX_SERVICES:
            if service not in self.cluster.processes:
                continue
            outbox = await self.cluster.databases.fetch(
                service, "SELECT event_id, type, dispatched_at FROM outbox")
            rows += len(outbox)
            undispatched += sum(1 for _, _, at in outbox if at is None)
            lost += [f"{service} {kind} {event_id}" for event_id, kind, _ in outbox
                     if event_id not in logged]
        by_service = dict(Counter(entry.split()[0] for entry in lost))
        return Check("outbox -> event log", f"{rows} outbox rows, {undispatched} not dispatched, "
                                            f"{len(lost)} missing from notifier's log {by_service} "
                                            f"({len(logged)} events logged)",
                     [f"{len(lost)} events lost: {_sample(lost)}"] if lost else [])

    async def events_at_sink(self) -> Check:
        """Every order/invoice event in notifier's log reached the sink, validly signed."""
        assert self.sink is not None
        types = ", ".join(f"'{t}'" for t in SINK_EVENT_TYPES)
        wanted = {row[0]: row[1] for row in await self.cluster.databases.fetch(
            "notifier", f"SELECT id, type FROM events WHERE type IN ({types})")}
        valid, bad = set(), 0
        deliveries = self.sink.received()
        for headers, body in deliveries:
            try:
                webhooks.verify(self.sink.secret, headers, body)
            except webhooks.InvalidSignature:
                bad += 1
                continue
            valid.add(json.loads(body)["id"])
        missing = sorted(f"{kind} {event_id}" for event_id, kind in wanted.items() if event_id not in valid)
        problems = [f"{len(missing)} events never delivered: {_sample(missing)}"] if missing else []
        if bad:
            problems.append(f"{bad} deliveries with an invalid signature")
        return Check("events -> webhook sink", f"{len(wanted)} events, {len(wanted) - len(missing)} "
                                               f"received ({len(deliveries)} deliveries, {bad} badly "
                                               f"signed)", problems)

    async def credit_exposure(self, flows: list[Flow]) -> Check:
        """Once every order is closed or cancelled, credit holds nothing for its customer."""
        left = []
        for flow in flows:
            if flow.customer_id is None:
                continue
            exposure = (await self._get("credit", f"/v1/customers/{flow.customer_id}/credit"))["exposure"]
            held = {k: exposure[k] for k in ("reserved_minor", "open_receivables_minor") if exposure[k]}
            if held:
                left.append(f"customer {flow.customer_id} ({flow.route}, order {flow.state}): {held}")
        return Check("credit exposure left", f"{len(left)} customers", left)

    # -- the record, checked once ------------------------------------------------------------

    def answers(self) -> Check:
        """The driver was never answered 500, nor anything else a careful client never gets."""
        kinds = self.recorder.anomaly_counts()
        problems = [str(a) for a in self.recorder.anomalies[:40]]
        if len(self.recorder.anomalies) > 40:
            problems.append(f"… {len(self.recorder.anomalies) - 40} more anomalies")
        return Check("driver answers", f"500s {self.recorder.count(500)}, 409s "
                                       f"{self.recorder.count(409)}, 503s {self.recorder.count(503)}; "
                                       f"anomalies {dict(kinds) or 0}", problems)

    def logged_500s(self) -> Check:
        logged = self.cluster.statuses_logged(500)
        total = sum(sum(c.values()) for c in logged.values())
        return Check("500s in service logs", f"{total} {({s: dict(c) for s, c in logged.items()})}",
                     [f"{s}: {dict(c)}" for s, c in logged.items()])

    def crashes(self, expected: str | None = None) -> Check:
        """No service died on its own, except at the failpoint the run armed."""
        unexpected = [f"{c.service} exited with {c.returncode} (failpoint {c.failpoint})"
                      for c in self.cluster.crashes if expected is None or c.failpoint != expected]
        return Check("crashes", f"{len(self.cluster.crashes)} "
                                f"{[f'{c.service}:{c.failpoint}' for c in self.cluster.crashes]}",
                     unexpected)

    def failpoint_reached(self, name: str, since: int = 0) -> Check:
        """The armed failpoint fired: its service SIGKILLed itself there (crashes from `since`)."""
        hits = [c for c in self.cluster.crashes[since:] if c.failpoint == name and c.by_sigkill]
        return Check("failpoint", f"{name}: {'reached' if hits else 'not reached'}",
                     [] if hits else [f"failpoint {name} was not reached"])

    async def converge(self, checks: list[Callable[[], Awaitable[Check]]], *, deadline: float,
                       final: list[Check | Callable[[], Check]]) -> Report:
        """Repeat `checks` until all pass or `deadline`; then add the `final` checks (made
        now, after recovery, when they are callables)."""
        waiting: list[str] | None = None
        while True:
            try:
                results = [await check() for check in checks]
            except FlowStopped as exc:
                results = [Check("checks", "could not run", [str(exc)])]
            failing = [c.name for c in results if c.problems]
            if failing != waiting:
                self.cluster.note(f"verify: waiting for {', '.join(failing)}" if failing
                                  else "verify: every check holds")
                waiting = failing
            if not failing or time.monotonic() + POLL_SECONDS > deadline:
                made = [c if isinstance(c, Check) else c() for c in final]
                return Report(results + made, self.cluster.timeline)
            await asyncio.sleep(POLL_SECONDS)
