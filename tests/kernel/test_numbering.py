"""Document numbers: unique, increasing, and on PostgreSQL taken without a lock that lasts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared import migrations
from shared.db import Database
from shared.numbering import next_number, next_numbers, sequence_name
from tests import pg_admin
from tests.conftest import PG_URL

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
CALL = re.compile(r'next_number\(\s*session,\s*counters,\s*"([a-z_]+)"')


def _series_used(service: str) -> set[str]:
    return {m for path in (SERVICES_DIR / service).rglob("*.py")
            for m in CALL.findall(path.read_text())}


def _counters(service: str):
    import importlib

    return importlib.import_module(f"services.{service}.models").counters


@pytest.mark.parametrize("service", ["orders", "credit", "ledger"])
async def test_every_series_a_service_uses_can_be_taken(database_urls, service):
    used = _series_used(service)
    assert used, f"no next_number call found in services/{service}"
    db = Database(database_urls[service])
    try:
        async with db.session() as session, session.begin():
            for series in sorted(used):
                first = await next_number(session, _counters(service), series, "T")
                second = await next_number(session, _counters(service), series, "T")
                assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1
    finally:
        await db.dispose()


async def test_numbers_are_formatted_with_the_prefix_and_width(database_urls):
    db = Database(database_urls["orders"])
    try:
        async with db.session() as session, session.begin():
            assert re.fullmatch(r"SO-\d{6}", await next_number(session, _counters("orders"),
                                                                "order", "SO"))
    finally:
        await db.dispose()


async def test_a_range_of_numbers_is_taken_at_once_and_continues_the_series(database_urls):
    db = Database(database_urls["ledger"])
    counters = _counters("ledger")
    try:
        async with db.session() as session, session.begin():
            first = await next_number(session, counters, "journal_entry", "JE")
            start = int(first.split("-")[1])
            taken = await next_numbers(session, counters, "journal_entry", "JE", 5)
            after = await next_number(session, counters, "journal_entry", "JE")
            assert await next_numbers(session, counters, "journal_entry", "JE", 0) == []
        assert taken == [f"JE-{n:06d}" for n in range(start + 1, start + 6)]
        assert after == f"JE-{start + 6:06d}"
    finally:
        await db.dispose()


def test_a_series_name_is_an_identifier():
    assert sequence_name("credit_note") == "number_credit_note_seq"
    with pytest.raises(ValueError):
        sequence_name("x'); DROP TABLE orders; --")


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL sequences")
async def test_an_open_transaction_does_not_hold_up_the_next_number(database_urls):
    """The counter row used to stay locked until its transaction committed, so every create
    queued behind the slowest one; a sequence hands out the next value at once."""
    db = Database(database_urls["orders"])
    try:
        async with db.session() as first, first.begin():
            a = await next_number(first, _counters("orders"), "order", "SO")
            async with db.session() as second, second.begin():
                await second.execute(text("SET LOCAL lock_timeout = '2s'"))
                b = await asyncio.wait_for(
                    next_number(second, _counters("orders"), "order", "SO"), timeout=5)
            assert b != a
            await first.rollback()  # the value `a` is not handed out again: a gap, by design
        async with db.session() as third, third.begin():
            c = await next_number(third, _counters("orders"), "order", "SO")
        assert c not in (a, b) and c > b
    finally:
        await db.dispose()


@pytest.mark.skipif(PG_URL is not None, reason="SQLite counter rows")
async def test_on_sqlite_a_rolled_back_number_is_given_again(database_urls):
    db = Database(database_urls["orders"])
    try:
        async with db.session() as session:
            async with session.begin():
                a = await next_number(session, _counters("orders"), "order", "SO")
                await session.rollback()
        async with db.session() as session, session.begin():
            assert await next_number(session, _counters("orders"), "order", "SO") == a
    finally:
        await db.dispose()


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL migration")
async def test_the_migration_continues_each_series_from_its_counter_and_back():
    url = make_url(PG_URL)
    name = f"{url.database}_numbering"
    server = url.set(drivername="postgresql").render_as_string(hide_password=False)
    await pg_admin.drop(name, server, with_children=False)
    await pg_admin.create(name, server)
    db = Database(url.set(database=name).render_as_string(hide_password=False))
    try:
        await migrations.upgrade(db.engine, "ledger", "c2f2dcf1a2f5")  # before the sequences
        async with db.engine.begin() as conn:
            await conn.execute(text("INSERT INTO counters (name, value) VALUES ('invoice', 41) "
                                    "ON CONFLICT (name) DO UPDATE SET value = 41"))
        await migrations.upgrade(db.engine, "ledger")
        async with db.session() as session, session.begin():
            assert await next_number(session, _counters("ledger"), "invoice", "INV") == "INV-000042"
            assert await next_number(session, _counters("ledger"), "payment", "PAY") == "PAY-000001"
        await migrations.downgrade(db.engine, "ledger", "c2f2dcf1a2f5")
        async with db.engine.connect() as conn:
            value = (await conn.execute(text(
                "SELECT value FROM counters WHERE name = 'invoice'"))).scalar_one()
            left = (await conn.execute(text(
                "SELECT count(*) FROM pg_class WHERE relkind = 'S' AND relname LIKE 'number%'"))
            ).scalar_one()
        assert (value, left) == (42, 0)
    finally:
        await db.dispose()
        await pg_admin.drop(name, server, with_children=False)
