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


@pytest.mark.parametrize("sqlstate", ["53300", "57P03", "57P01", "08006"])
def test_a_database_out_of_slots_or_restarting_is_a_503(sqlstate):
    class Orig(Exception):
        pass

    orig = Orig("sorry, too many clients already")
    orig.sqlstate = sqlstate
    problem = unexpected_problem(DBAPIError("connect", {}, orig), "POST /v1/payments")
    assert (problem.status, problem.code) == (503, "dependency_unavailable")
    assert "too many" not in problem.body()["detail"]


def test_any_other_database_error_is_still_a_500():
    broken = DBAPIError("SELECT nope", {}, ValueError("syntax"), connection_invalidated=False)
    assert unexpected_problem(broken, "GET /v1/orders").status == 500
    syntax = ValueError("syntax error")
    syntax.sqlstate = "42601"
    assert unexpected_problem(DBAPIError("SELECT nope", {}, syntax), "GET /v1/x").status == 500


@pytest.mark.skipif(not PG_URL, reason="a PostgreSQL role out of connection slots")
async def test_a_real_too_many_connections_is_a_503(database_urls):
    from sqlalchemy.engine import make_url

    from shared.db import Database

    url = make_url(database_urls["orders"])
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    role = "o2c_test_no_slots"
    try:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
        db = Database(url.set(username=role, password=None).render_as_string(hide_password=False))
        try:
            with pytest.raises(DBAPIError) as raised:
                await db.ping()
        finally:
            await db.dispose()
        assert unexpected_problem(raised.value, "GET /v1/orders").status == 503
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


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


async def test_a_failed_statement_names_no_bound_value(database_urls, caplog):
    """A customer's data in a failed statement never reaches the log or the error message."""
    from sqlalchemy import text

    from shared.db import Database

    db = Database(database_urls["credit"])
    secret = "Erika Mustermann, Hauptstrasse 5"
    try:
        async with db.session() as session:
            with pytest.raises(DBAPIError) as raised:
                await session.execute(text("INSERT INTO no_such_table (name) VALUES (:name)"),
                                      {"name": secret})
    finally:
        await db.dispose()
    assert "no_such_table" in str(raised.value)
    assert secret not in str(raised.value)
    caplog.set_level("DEBUG")
    unexpected_problem(raised.value, "POST /v1/customers")
    assert secret not in caplog.text
