"""(b) Orders SIGKILLed while many delivered orders are settled at once; none may stay delivered."""

from __future__ import annotations

import pytest

from tests.faults.conftest import SIZES
from tests.faults.scenario import Outage, Scenario

pytestmark = pytest.mark.faults
SETTLE = "/v1/orders/{id}/settle"


async def test_orders_killed_during_settle_storm(start_cluster, db):
    cluster = await start_cluster()
    async with Scenario(cluster, SIZES, f"settle-storm-{db}") as s:
        flows = s.driver.flows(SIZES.storm)
        await s.drive(flows, deadline=s.budget(len(flows)), until=frozenset({"delivered"}))
        assert {f.state for f in flows} == {"delivered"}, [(f.state, f.outcome) for f in flows]

        settled = s.rng.randint(1, max(1, SIZES.storm // 3))
        outage = Outage("orders", SIZES.outage_seconds,
                        lambda: s.recorder.writes[SETTLE] >= settled, f"after {settled} settles answered")
        deadline = s.budget(len(flows), SIZES.outage_seconds)
        await s.drive(flows, deadline=deadline, outage=outage)
        s.conclude(await s.verify_flows(flows, deadline=deadline, outage=outage))
