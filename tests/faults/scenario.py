"""One fault-injection run: a cluster, a webhook sink, the driver, a fault and the verdict."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.faults.driver import Api, Driver, Flow, Recorder, outcomes
from tests.faults.harness import READY_TIMEOUT, SINK_EVENT_TYPES, Cluster, Sizes, WebhookSink
from tests.faults.invariants import Check, Report, Verifier

FLOW_SECONDS = 1.5      # a flow's own share of the time budget (they run concurrently)
BASE_SECONDS = 30.0     # and the budget every run gets besides
VERIFY_GRACE_SECONDS = 20.0


@dataclass
class Outage:
    """SIGKILL `service` once `trigger()` holds, keep it down `seconds`, then restart it."""

    service: str
    seconds: float
    trigger: Callable[[], bool]
    when: str  # the trigger in words, for the report
    fired: bool = False

    async def run(self, cluster: Cluster, stop: asyncio.Event) -> None:
        while not self.trigger():
            if stop.is_set():
                return
            await asyncio.sleep(0.02)
        self.fired = True
        cluster.note(f"fault: {self.service} killed {self.when}")
        await cluster.outage(self.service, self.seconds)

    def check(self) -> Check:
        return Check("fault", f"{self.service} killed {self.when}, down {self.seconds:g}s"
                     if self.fired else f"{self.service} was never killed ({self.when})",
                     [] if self.fired else [f"the outage of {self.service} never happened: "
                                            f"the flows were over before {self.when}"])


class Scenario:
    """The means of one test: `driver` for flows, `verifier` for invariants, `rng` seeded."""

    def __init__(self, cluster: Cluster, sizes: Sizes, name: str) -> None:
        self.cluster, self.sizes, self.name = cluster, sizes, name
        self.seed = f"{sizes.seed}:{name}"
        self.rng = random.Random(self.seed)
        self.recorder = Recorder()
        self.api = Api(cluster, self.recorder)
        self.driver = Driver(self.api, run=f"f{random.Random(self.seed).getrandbits(32):08x}")
        self.sink = WebhookSink() if "notifier" in cluster.processes else None
        self.verifier = Verifier(cluster, self.api, self.recorder, self.sink)
        self._watch: asyncio.Task[None] | None = None
        print(f"\nscenario {name}: seed {self.seed!r}, sizes {sizes}, logs in {cluster.directory}")

    async def __aenter__(self) -> Scenario:
        if self.sink is not None:
            r = await self.api.call("notifier", "POST", "/v1/webhook-endpoints",
                                    deadline=time.monotonic() + 30, key=f"{self.driver.run}-sink",
                                    json={"url": self.sink.url, "event_types": list(SINK_EVENT_TYPES),
                                          "description": "fault-injection sink"})
            assert r.status_code == 201, r.text
            self.sink.secret = r.json()["secret"]
        self._watch = asyncio.create_task(self.cluster.watch(), name="watch")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.api.aclose()
        if self.sink is not None:
            self.sink.close()

    def budget(self, flows: int, outage_seconds: float = 0.0) -> float:
        """A deadline for driving `flows` through one outage and the recovery after it."""
        return (time.monotonic() + BASE_SECONDS + FLOW_SECONDS * flows + outage_seconds
                + self.sizes.converge_seconds)

    async def drive(self, flows: list[Flow], *, deadline: float, outage: Outage | None = None,
                    until: frozenset[str] = frozenset()) -> None:
        """Drive the flows; with `outage`, run it alongside (it restarts its service before this ends)."""
        stop = asyncio.Event()
        fault = asyncio.create_task(outage.run(self.cluster, stop)) if outage else None
        self.cluster.note(f"drive {len(flows)} flows" + (f" until {', '.join(until)}" if until else ""))
        try:
            await self.driver.drive(flows, deadline=deadline, until=until)
            self.cluster.note(f"flows done: {dict(outcomes(flows))}")
        finally:
            stop.set()
            if fault is not None:
                await asyncio.wait_for(fault, timeout=outage.seconds + READY_TIMEOUT + 5)

    async def verify_flows(self, flows: list[Flow], *, deadline: float,
                           outage: Outage | None = None, failpoint: str | None = None) -> Report:
        """Every invariant over the flows, polled until they hold or `deadline` (+ a grace)."""
        v = self.verifier
        references = {f.customer_id: ({f.payment_reference} if "pay" in f.bodies else set())
                      for f in flows if f.customer_id}
        checks = [lambda: v.orders(flows), lambda: v.invoices(flows),
                  lambda: v.payments(references), v.trial_balance, v.outbox_in_event_log,
                  v.events_at_sink, lambda: v.credit_exposure(flows)]
        final = [v.answers, v.logged_500s, lambda: v.crashes(expected=failpoint)]
        if outage is not None:
            final.append(outage.check)
        return await v.converge(checks, final=final,
                                deadline=max(deadline, time.monotonic() + VERIFY_GRACE_SECONDS))

    def conclude(self, report: Report) -> None:
        """Print the figures (they are the measurement) and fail on any problem."""
        print(f"\nscenario {self.name} (seed {self.seed!r}):\n{report}")
        print(f"answers by service, route and status:\n{self.recorder.table()}")
        assert not report.problems, f"{len(report.problems)} problems in {self.name}:\n" + "\n".join(
            f"  - {p}" for p in report.problems[:30])
