"""`keyset_page`: the one place a list's cursor condition, order and `limit + 1` are applied.

Run over a table of its own (not a service's), so the pages are known row by row.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import DateTime, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.errors import ValidationFailed
from shared.pagination import Keyset, Page, encode_cursor, keyset_page

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "row"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String)
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


OLDEST_FIRST = Keyset(Row.placed_at, Row.id)
NEWEST_FIRST = Keyset(Row.placed_at, Row.id, newest_first=True)


@pytest.fixture
async def session():
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        # three rows share one instant (the id breaks the tie), two are later; "x" is filtered out
        session.add_all([Row(id=i, kind="a", placed_at=NOON) for i in ("r2", "r1", "r3")]
                        + [Row(id="r0", kind="a", placed_at=NOON + timedelta(seconds=1)),
                           Row(id="r9", kind="a", placed_at=NOON + timedelta(seconds=2)),
                           Row(id="x", kind="b", placed_at=NOON)])
        await session.commit()
        yield session
    await engine.dispose()


async def _walk(session: AsyncSession, keyset: Keyset, limit: int) -> list[Page]:
    pages, cursor = [], None
    while True:
        page = await keyset_page(session, select(Row).where(Row.kind == "a"), keyset,
                                 limit=limit, cursor=cursor)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


async def test_pages_through_equal_timestamps_without_skipping_or_repeating(session):
    pages = await _walk(session, OLDEST_FIRST, limit=2)
    assert [[r.id for r in p.items] for p in pages] == [["r1", "r2"], ["r3", "r0"], ["r9"]]


async def test_the_last_page_has_no_next_cursor_even_when_full(session):
    pages = await _walk(session, OLDEST_FIRST, limit=5)
    assert len(pages) == 1 and len(pages[0].items) == 5 and pages[0].next_cursor is None
    first = await keyset_page(session, select(Row).where(Row.kind == "a"), OLDEST_FIRST,
                              limit=4, cursor=None)
    assert first.next_cursor is not None
    last = await keyset_page(session, select(Row).where(Row.kind == "a"), OLDEST_FIRST,
                             limit=4, cursor=first.next_cursor)
    assert [r.id for r in last.items] == ["r9"] and last.next_cursor is None


async def test_newest_first_walks_backwards(session):
    pages = await _walk(session, NEWEST_FIRST, limit=2)
    assert [[r.id for r in p.items] for p in pages] == [["r9", "r0"], ["r3", "r2"], ["r1"]]


async def test_an_empty_list_is_one_empty_page(session):
    page = await keyset_page(session, select(Row).where(Row.kind == "none"), OLDEST_FIRST,
                             limit=2, cursor=None)
    assert page == Page(items=[], next_cursor=None)


@pytest.mark.parametrize("cursor", ["!!garbage!!", encode_cursor("not-a-time", "x"),
                                    encode_cursor("only-one-part")])
async def test_an_invalid_cursor_is_the_usual_422_before_anything_is_read(cursor):
    class Unused:
        async def execute(self, stmt):  # pragma: no cover - reached only if the cursor passed
            raise AssertionError("read with an invalid cursor")

    with pytest.raises(ValidationFailed) as refused:
        await keyset_page(Unused(), select(Row), OLDEST_FIRST, limit=2, cursor=cursor)
    assert refused.value.status == 422
    assert refused.value.errors == [{"field": "query.cursor", "message": "invalid cursor"}]


def test_map_shapes_the_items_and_keeps_the_cursor():
    page = Page(items=[1, 2], next_cursor="c").map(lambda n: n * 10)
    assert page == Page(items=[10, 20], next_cursor="c")


def test_only_repositories_call_keyset_page():
    """keyset_page runs a query, so, like every query, it is called from repositories only."""
    repo = Path(__file__).resolve().parents[2]
    callers = sorted(
        path.relative_to(repo).as_posix() for path in (repo / "services").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "keyset_page")
    assert callers and all(c.endswith("/repository.py") for c in callers), callers
