"""(a) Each service SIGKILLed at a seeded random moment while order flows run, kept down, restarted."""

from __future__ import annotations

import pytest

from shared.settings import SERVICES
from tests.faults.conftest import SIZES
from tests.faults.driver import HAPPY_WRITES
from tests.faults.scenario import Outage, Scenario

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("victim", SERVICES)
async def test_service_killed_during_flows(start_cluster, db, victim):
    cluster = await start_cluster()
    async with Scenario(cluster, SIZES, f"kill-{victim}-{db}") as s:
        flows = s.driver.flows(SIZES.flows)
        writes = s.rng.randint(SIZES.flows, SIZES.flows * HAPPY_WRITES * 3 // 4)
        outage = Outage(victim, SIZES.outage_seconds, lambda: s.recorder.successful_writes >= writes,
                        f"after {writes} successful writes")
        deadline = s.budget(len(flows), SIZES.outage_seconds)
        await s.drive(flows, deadline=deadline, outage=outage)
        s.conclude(await s.verify_flows(flows, deadline=deadline, outage=outage))
