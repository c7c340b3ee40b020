"""(d) Ledger killed at each point of the idempotency path; every key still makes one payment.

For each point and each K of `Sizes.kill_hits`, ledger is restarted with `<point>=kill@K`;
payments are posted concurrently under their own keys; when ledger dies the harness restarts
it clean and the driver retries the same key and body. At the end each key has one payment.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.faults.conftest import SIZES
from tests.faults.harness import IDEMPOTENCY_POINTS
from tests.faults.invariants import Check
from tests.faults.scenario import Scenario

pytestmark = pytest.mark.faults
CONCURRENCY = 10
CALL_SECONDS = 60.0


@pytest.mark.parametrize("point", IDEMPOTENCY_POINTS)
async def test_payments_exactly_once_across_crashes(start_cluster, db, point):
    cluster = await start_cluster(services=("ledger", "notifier"))
    async with Scenario(cluster, SIZES, f"idempotency-{point}-{db}") as s:
        per_run = max(1, SIZES.payments // len(SIZES.kill_hits))
        assert max(SIZES.kill_hits) <= per_run, f"kill@K needs K <= {per_run} payments per run"
        references: dict[str, set[str]] = {}
        reached: list[Check] = []
        refused: list[str] = []
        gate = asyncio.Semaphore(CONCURRENCY)

        async def pay(customer: str, key: str, amount: int) -> None:
            async with gate:
                r = await s.api.call("ledger", "POST", "/v1/payments", principal="finance", key=key,
                                     deadline=time.monotonic() + CALL_SECONDS, json={
                                         "customer_id": customer, "amount_minor": amount,
                                         "currency": "CNY", "method": "bank_transfer",
                                         "reference": key})
                if r.status_code != 201:
                    refused.append(f"{key}: {r.status_code} {r.text[:200]}")

        for hit in SIZES.kill_hits:
            since = len(cluster.crashes)
            await cluster.rearm("ledger", f"{point}=kill@{hit}")
            customer = str(uuid.UUID(int=s.rng.getrandbits(128)))
            keys = [f"{s.driver.run}-k{hit}-{i:04d}" for i in range(per_run)]
            references[customer] = set(keys)
            await asyncio.gather(*(pay(customer, key, 100 + i) for i, key in enumerate(keys)))
            reached.append(s.verifier.failpoint_reached(point, since))
            reached[-1].figure += f" (kill@{hit}, {per_run} payments)"

        v = s.verifier
        report = await v.converge([lambda: v.payments(references), v.trial_balance,
                                   v.outbox_in_event_log],
                                  deadline=time.monotonic() + CALL_SECONDS, final=[
                                      *reached, Check("refused payments", str(len(refused)), refused),
                                      v.answers, v.logged_500s, lambda: v.crashes(expected=point)])
        s.conclude(report)
