"""Fixtures of the fault-injection suite: every test runs once per database mode."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.settings import SERVICES
from tests import pg_admin
from tests.faults.harness import Cluster, Databases, Sizes, leftover_databases, pg_server

SIZES = Sizes.from_env()
RUN_PREFIX = f"o2c_faults_{os.getpid()}"
_clusters = itertools.count()
_postgres_used = False
# Dropping a PostgreSQL database waits for a checkpoint (~2.5 s each here): the databases of a
# finished test are dropped on this thread while the next test runs; the session waits for it.
_dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-databases")

StartCluster = Callable[..., Awaitable[Cluster]]
FAILED = pytest.StashKey[bool]()  # whether the test's call phase failed (its logs are kept)


def pytest_report_header(config: pytest.Config) -> str:
    return f"o2c fault injection: {'bounded' if SIZES.bounded else 'full'} form, {SIZES}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def start_cluster(db: str, request: pytest.FixtureRequest) -> AsyncIterator[StartCluster]:
    """Start a cluster (all services, or some) on this test's database mode; stopped at the end.

    Its directory (logs, keys, SQLite files) is removed when the test passed; on failure it
    is kept (outside pytest's rotating tmp_path) and the tail of every service's log printed.
    """
    clusters: list[Cluster] = []

    async def start(services: tuple[str, ...] = SERVICES,
                    failpoints: Mapping[str, str] | None = None) -> Cluster:
        global _postgres_used
        n = next(_clusters)
        directory = Path(tempfile.mkdtemp(prefix=f"o2c-faults-{os.getpid()}-{n}-"))
        cluster = Cluster(directory, Databases(db, directory, f"{RUN_PREFIX}_{n}"), services,
                          lease_seconds=SIZES.lease_seconds,
                          recovery_seconds=SIZES.recovery_seconds)
        clusters.append(cluster)
        _postgres_used = _postgres_used or db == "postgres"
        await cluster.start(failpoints)
        return cluster

    try:
        yield start
    finally:
        failed = request.node.stash.get(FAILED, True)
        for cluster in clusters:
            if killed := cluster.stop():
                print(f"\n{', '.join(killed)} did not exit on SIGTERM within the grace: SIGKILLed")
            _dropper.submit(asyncio.run, cluster.databases.drop())
            if failed:
                print(f"\nkept {cluster.directory}; service logs (tails):\n{cluster.log_tails()}")
            else:
                shutil.rmtree(cluster.directory, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the session no database of this run may remain on the PostgreSQL server."""
    yield
    _dropper.shutdown(wait=True)
    if not _postgres_used:
        return
    left = asyncio.run(leftover_databases(RUN_PREFIX))
    if left:
        asyncio.run(pg_admin.drop(RUN_PREFIX, pg_server()))
        pytest.fail(f"databases left behind on {pg_server()} (now dropped): {left}")
