"""Unit tests of the kernel's pure parts: money, webhooks signing, keys, cursors, clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared import webhooks
from shared.auth import KeyStore, Principal, Role, append_key, hash_key
from shared.clock import FrozenClock
from shared.errors import ValidationFailed
from shared.money import line_total
from shared.pagination import decode_cursor, encode_cursor


@pytest.mark.parametrize(("quantity", "price", "expected"), [
    ("0.5", 5, 2), ("1.5", 5, 8), ("0.5", 7, 4), ("2", 125000, 250000),
    ("0.001", 499, 0), ("0.001", 500, 0), ("0.001", 1500, 2), ("12.345", 100, 1234),
])
def test_line_total_rounds_half_even(quantity, price, expected):
    assert line_total(Decimal(quantity), price) == expected


def test_webhook_signature_round_trip_and_tamper():
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"order.submitted"}'
    headers = webhooks.signed_headers(secret, "msg_1", 1_700_000_000, body)
    webhooks.verify(secret, headers, body)
    with pytest.raises(webhooks.InvalidSignature):
        webhooks.verify(secret, headers, body + b" ")
    with pytest.raises(webhooks.InvalidSignature):
        webhooks.verify(webhooks.new_secret(), headers, body)
    with pytest.raises(webhooks.InvalidSignature):
        webhooks.verify(secret, headers, body, now=datetime.fromtimestamp(1_700_001_000, UTC))


def test_webhook_signature_matches_standard_webhooks_reference():
    # Test vector from the Standard Webhooks specification's reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhooks.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


def test_keystore_reads_file_and_reloads(tmp_path):
    path = tmp_path / "keys.toml"
    append_key(path, "k1", "alice", ["sales"], "S-ALICE")
    store = KeyStore(path, service_key="svc")
    alice = store.lookup("k1")
    assert alice == Principal("alice", frozenset({"sales"}), "S-ALICE")
    assert store.lookup("svc") == Principal("service", frozenset({Role.service}))
    assert store.lookup("nope") is None
    append_key(path, "k2", "fin", ["finance"])
    assert store.lookup("k2").roles == frozenset({"finance"})
    assert hash_key("k1") in path.read_text() and "k1\"" not in path.read_text()


def test_unknown_role_is_refused(tmp_path):
    with pytest.raises(ValueError):
        append_key(tmp_path / "k.toml", "k", "x", ["wizard"])


def test_row_level_rule():
    alice = Principal("alice", frozenset({"sales"}), "S-ALICE")
    assert alice.restricted_to_salesperson == "S-ALICE"
    assert alice.can_see("S-ALICE") and not alice.can_see("S-BOB") and not alice.can_see(None)
    assert Principal("sales", frozenset({"sales"})).can_see("S-BOB")
    assert Principal("boss", frozenset({"sales", "admin"}), "S-X").can_see("S-BOB")


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor("2026-01-01T00:00:00+00:00", "abc"), 2) == [
        "2026-01-01T00:00:00+00:00", "abc"]
    assert decode_cursor(None, 2) is None
    with pytest.raises(ValidationFailed):
        decode_cursor("not-base64!", 2)
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor("one"), 2)


def test_frozen_clock_moves_only_when_told():
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    assert clock.now() == clock.now()
    clock.advance(timedelta(days=1))
    assert clock.today().isoformat() == "2026-03-02"
    clock.advance(hours=2)
    assert clock.now().hour == 2


def test_salesperson_scope():
    alice = Principal("alice", frozenset({"sales"}), "S-ALICE")
    assert alice.salesperson_scope(None) == (True, "S-ALICE")
    assert alice.salesperson_scope("S-ALICE") == (True, "S-ALICE")
    assert alice.salesperson_scope("S-BOB") == (False, "S-ALICE")
    assert Principal("fin", frozenset({"finance"})).salesperson_scope("S-BOB") == (True, "S-BOB")


class TestAfterCommit:
    """`after_commit` callbacks (relay and worker wake-ups) run on commit in any session."""

    async def test_runs_once_on_commit_and_never_after_a_rollback(self, tmp_path):
        from sqlalchemy import text

        from shared.db import Database, after_commit

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
        calls: list[str] = []
        try:
            async with db.session() as session, session.begin():  # a worker's own session
                await session.execute(text("SELECT 1"))
                after_commit(session, lambda: calls.append("committed"))
                assert calls == []
            assert calls == ["committed"]
            with pytest.raises(RuntimeError):
                async with db.session() as session, session.begin():
                    after_commit(session, lambda: calls.append("rolled back"))
                    raise RuntimeError("boom")
            async with db.session() as session, session.begin():
                await session.execute(text("SELECT 1"))
            assert calls == ["committed"]
        finally:
            await db.dispose()


def test_work_request_id_is_new_for_a_worker_and_the_request_s_inside_a_request():
    from shared.observability import current_request_id, reset_request_id, set_request_id, work_request_id

    assert current_request_id() is None
    with work_request_id() as rid:
        assert current_request_id() == rid and len(rid) == 32
    assert current_request_id() is None
    token = set_request_id("req-7")
    try:
        with work_request_id() as rid:
            assert rid == current_request_id() == "req-7"
        assert current_request_id() == "req-7"
    finally:
        reset_request_id(token)


class TestSqliteWriters:
    """One SQLite file, one process: write transactions take turns for one connection, reads
    go beside them, and a turn not had in time is a busy database (503), never a 500."""

    async def test_writers_queue_and_readers_do_not_wait(self, tmp_path):
        import asyncio

        from sqlalchemy import text

        from shared.db import Database

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
        order: list[str] = []
        try:
            async with db.session() as session, session.begin():
                await session.execute(text("CREATE TABLE t (n INTEGER)"))

            async def write(n: int) -> None:
                async with db.session() as session, session.begin():
                    await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                    order.append(f"in {n}")
                    await asyncio.sleep(0)  # let the others run: they wait for the turn
                    order.append(f"out {n}")

            async with db.session() as held, held.begin():
                await held.execute(text("INSERT INTO t VALUES (0)"))
                writers = [asyncio.create_task(write(n)) for n in (1, 2, 3)]
                await asyncio.sleep(0.05)
                assert order == []  # the writer's turn is taken
                async with db.session(read_only=True) as reader:  # reads go on
                    assert (await reader.execute(text("SELECT count(*) FROM t"))).scalar() == 0
            await asyncio.gather(*writers)
            assert order == ["in 1", "out 1", "in 2", "out 2", "in 3", "out 3"]
        finally:
            await db.dispose()

    async def test_a_turn_not_had_in_time_is_a_busy_database(self, tmp_path):
        from sqlalchemy import text
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        from shared.db import Database
        from shared.errors import unexpected_problem

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", write_wait_seconds=0.05)
        try:
            async with db.session() as held, held.begin():
                await held.execute(text("SELECT 1"))
                with pytest.raises(PoolTimeout) as waited:
                    async with db.session() as late, late.begin():
                        await late.execute(text("SELECT 1"))
            problem = unexpected_problem(waited.value, "POST /v1/x")
            assert (problem.status, problem.code) == (503, "dependency_unavailable")
            assert problem.extra["dependency"] == "database" and problem.headers["Retry-After"]
        finally:
            await db.dispose()
