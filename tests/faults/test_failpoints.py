"""(e) A service SIGKILLs itself at a failpoint during order flows, restarts clean, flows finish.

One test per point of `harness.FAILPOINTS` (the ledger idempotency points are (d)'s), each
driving flows of the route that passes the point. A point the run never reaches fails the
test with "failpoint X was not reached".
"""

from __future__ import annotations

import pytest

from tests.faults.conftest import SIZES
from tests.faults.harness import FAILPOINTS, IDEMPOTENCY_POINTS
from tests.faults.scenario import Scenario

pytestmark = pytest.mark.faults
POINTS = [p for p in FAILPOINTS.values() if p.name not in IDEMPOTENCY_POINTS
          and (not SIZES.failpoints or p.name in SIZES.failpoints)]


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.name)
async def test_crash_at_failpoint(start_cluster, db, point):
    cluster = await start_cluster(failpoints={point.service: point.spec})
    async with Scenario(cluster, SIZES, f"failpoint-{point.name}-{db}") as s:
        flows = s.driver.flows(SIZES.failpoint_flows, route=point.route)
        deadline = s.budget(len(flows))
        await s.drive(flows, deadline=deadline)
        report = await s.verify_flows(flows, deadline=deadline, failpoint=point.name)
        report.checks.append(s.verifier.failpoint_reached(point.name))
        s.conclude(report)
