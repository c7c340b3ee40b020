"""Connections are not pinged on checkout; one found dead on use is a 503, then the pool heals."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from shared.errors import unexpected_problem
from tests.conftest import PG_URL


def test_an_invalidated_connection_is_a_retryable_503():
    lost = DBAPIError("SELECT 1", {}, ConnectionResetError("reset by peer"),
                      connection_invalidated=True)
    problem = unexpected_problem(lost, "GET /v1/orders")
    assert (problem.status, problem.code) == (503, "dependency_unavailable")
    assert problem.headers["Retry-After"] == "1"
    assert "reset by peer" not in problem.body()["detail"]


def test_a_refused_database_connection_is_a_503():
    problem = unexpected_problem(ConnectionRefusedError(111, "Connection refused"), "POST /v1/x")
    assert (problem.status, problem.code) == (503, "dependency_unavailable")


def test_any_other_database_error_is_still_a_500():
    broken = DBAPIError("SELECT nope", {}, ValueError("syntax"), connection_invalidated=False)
    assert unexpected_problem(broken, "GET /v1/orders").status == 500


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL backends to terminate")
async def test_after_the_database_drops_its_connections_one_request_is_503_then_all_is_well(system):
    orders = system.client("orders", "admin")
    assert (await orders.get("/v1/orders")).status_code == 200  # a pooled connection exists
    url = system.state("orders").db.engine.url
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(
        hide_password=False))
    try:  # what a database restart does to the pool: every idle connection is gone
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()", url.database)
    finally:
        await admin.close()
    assert killed >= 1
    answers = [(await orders.get("/v1/orders")) for _ in range(3)]
    assert [r.status_code for r in answers] == [503, 200, 200]
    assert answers[0].json()["code"] == "dependency_unavailable"
