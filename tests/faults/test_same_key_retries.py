"""(c) A POST re-sent with its key the moment its 201 arrived is a replay, never a 409."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from tests.faults.conftest import SIZES
from tests.faults.invariants import Check
from tests.faults.scenario import Scenario

pytestmark = pytest.mark.faults
CALL_SECONDS = 30.0


async def test_same_key_retry_is_a_replay(start_cluster, db):
    cluster = await start_cluster(services=("ledger", "notifier"))
    async with Scenario(cluster, SIZES, f"same-key-retries-{db}") as s:
        customer = str(uuid.UUID(int=s.rng.getrandbits(128)))
        references: set[str] = set()
        seconds: Counter[str] = Counter()
        problems: list[str] = []
        for i in range(SIZES.retries):
            key = f"{s.driver.run}-retry-{i:05d}"
            body = {"customer_id": customer, "amount_minor": 100 + i, "currency": "CNY",
                    "method": "bank_transfer", "reference": key}
            first = await s.api.call("ledger", "POST", "/v1/payments", principal="finance", key=key,
                                     json=body, deadline=time.monotonic() + CALL_SECONDS)
            references.add(key)
            if first.status_code != 201:
                problems.append(f"{key}: first answer {first.status_code} {first.text[:200]}")
                continue
            again = await s.api.send("ledger", "POST", "/v1/payments", principal="finance", key=key,
                                     json=body, retry=True)
            replayed = again.headers.get("idempotent-replayed") == "true"
            same = again.status_code == 201 and again.json() == first.json()
            seconds[f"{again.status_code}{' replayed' if replayed else ''}"
                    f"{'' if same else ' other body'}"] += 1
            if not (replayed and same):
                problems.append(f"{key}: retry answered {again.status_code} replayed={replayed} "
                                f"same body={same}: {again.text[:200]}")
        retries = Check("same-key retries", f"{SIZES.retries} pairs; 409s {s.recorder.count(409)}; "
                                            f"second answers {dict(seconds)}", problems)
        v = s.verifier
        report = await v.converge([lambda: v.payments({customer: references}), v.trial_balance,
                                   v.outbox_in_event_log],
                                  deadline=time.monotonic() + CALL_SECONDS,
                                  final=[retries, v.logged_500s, v.crashes])
        s.conclude(report)
