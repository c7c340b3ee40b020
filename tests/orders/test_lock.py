"""repository.lock_order on an order the session already read: one SELECT of the row under its
lock, and the lines and reviews read again only when the order's version moved meanwhile."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from services.orders import repository
from tests.fixtures.flows import LINE, create_order, make_customer


@contextmanager
def statements(db: Any):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_relocking_an_unchanged_order_is_one_select(system):
    order = await create_order(system, await make_customer(system))
    db = system.state("orders").db
    async with db.session() as session:
        read = await repository.get_order(session, order["id"])
        with statements(db) as seen:
            locked = await repository.lock_order(session, order["id"])
        assert locked is read and seen == ["SELECT"]
        assert [line.sku for line in locked.lines] == ["PCB-4L"]
        await session.rollback()


async def test_a_lock_sees_the_lines_changed_since_the_read(system):
    order = await create_order(system, await make_customer(system))
    db = system.state("orders").db
    async with db.session() as session:
        read = await repository.get_order(session, order["id"])
        assert read.version == 1 and len(read.lines) == 1
        await session.commit()  # as a step's checkpoint: nothing held while others write
        r = await system.client("orders", "sales").patch(
            f"/v1/orders/{order['id']}", headers={"If-Match": '"1"'},
            json={"lines": [LINE, {**LINE, "sku": "PCB-6L"}]})
        assert r.status_code == 200, r.text
        locked = await repository.lock_order(session, order["id"])
        assert locked is read and locked.version == 2
        assert [line.sku for line in locked.lines] == ["PCB-4L", "PCB-6L"]
        assert locked.total_minor == r.json()["total_minor"]
        await session.rollback()


async def test_a_lock_of_an_order_gone_meanwhile_is_none(system):
    order = await create_order(system, await make_customer(system))
    db = system.state("orders").db
    async with db.session() as session:
        await repository.get_order(session, order["id"])
        await session.commit()
        async with db.session() as other, other.begin():
            await other.execute(repository.Order.__table__.delete().where(
                repository.Order.id == order["id"]))
        assert await repository.lock_order(session, order["id"]) is None
