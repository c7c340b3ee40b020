"""Cursor pagination: `?limit=50&cursor=…` → `{"items": [...], "next_cursor": "…"|null}`.

The cursor is an opaque, URL-safe encoding of the last row's sort key (for example its
creation time and id), so pages stay stable while rows are added.

Most lists are ordered by a timestamp and the id that breaks its ties: a repository builds the
filtered statement and hands it to `keyset_page` with the `Keyset` naming those two columns;
the helper adds the cursor condition, the order and the `limit + 1` that tells whether a next
page exists. It runs the statement for the repository that calls it — routes and services
never call it, so queries still live in repositories only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select, and_, or_, true
from sqlalchemy.ext.asyncio import AsyncSession

from shared.errors import ValidationFailed
from shared.schemas import query_int

T = TypeVar("T")
R = TypeVar("R")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

    def map(self, shape: Callable[[T], R]) -> Page[R]:
        """The same page with every item shaped (a row into its public view)."""
        return Page(items=[shape(item) for item in self.items], next_cursor=self.next_cursor)


def encode_cursor(*values: Any) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, parts: int) -> list[str] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != parts:
            raise ValueError
        return [str(v) for v in values]
    except ValueError as exc:
        raise ValidationFailed("The cursor is not valid; start again without one.",
                               errors=[{"field": "query.cursor", "message": "invalid cursor"}]
                               ) from exc


def decode_time_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """Decode the usual keyset cursor: a row's timestamp and its id."""
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        at = datetime.fromisoformat(values[0])
    except ValueError as exc:
        raise ValidationFailed("The cursor is not valid; start again without one.",
                               errors=[{"field": "query.cursor", "message": "invalid cursor"}]
                               ) from exc
    return (at if at.tzinfo else at.replace(tzinfo=UTC)), values[1]


def encode_time_cursor(at: datetime, ident: str) -> str:
    return encode_cursor(at.isoformat(), ident)


def after_keyset(at_column: Any, id_column: Any, after: tuple[datetime, str] | None) -> Any:
    """WHERE condition for rows strictly after a `(timestamp, id)` cursor (None: no cursor)."""
    if after is None:
        return true()
    at, ident = after
    return or_(at_column > at, and_(at_column == at, id_column > ident))


def before_keyset(at_column: Any, id_column: Any, before: tuple[datetime, str] | None) -> Any:
    """WHERE condition for rows strictly before a `(timestamp, id)` cursor (newest-first lists)."""
    if before is None:
        return true()
    at, ident = before
    return or_(at_column < at, and_(at_column == at, id_column < ident))


def time_page(rows: Sequence[R], limit: int, key: Callable[[R], tuple[datetime, str]],
              shape: Callable[[R], Any] | None = None) -> Page[Any]:
    """A page from `limit + 1` fetched rows: the extra row only says a next page exists."""
    rows = list(rows)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_time_cursor(*key(rows[-1]))
    return Page(items=[shape(r) for r in rows] if shape else rows, next_cursor=next_cursor)


@dataclass(frozen=True)
class Keyset:
    """The two columns a list is ordered by: a timestamp, then the id that breaks its ties."""

    at: Any
    id: Any
    newest_first: bool = False


async def keyset_page(session: AsyncSession, stmt: Select[Any], keyset: Keyset, *, limit: int,
                      cursor: str | None) -> Page[Any]:
    """One page of `stmt`'s rows in `keyset` order, after (newest first: before) `cursor`.

    An invalid cursor is refused (ValidationFailed) before anything is read.
    """
    position = decode_time_cursor(cursor)
    if keyset.newest_first:
        stmt = stmt.where(before_keyset(keyset.at, keyset.id, position))
        stmt = stmt.order_by(keyset.at.desc(), keyset.id.desc())
    else:
        stmt = stmt.where(after_keyset(keyset.at, keyset.id, position))
        stmt = stmt.order_by(keyset.at, keyset.id)
    rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    return time_page(rows, limit, lambda row: (getattr(row, keyset.at.key), getattr(row, keyset.id.key)))


Limit = Annotated[query_int(ge=1, le=MAX_LIMIT), Query(description="Page size (1–200).")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")]
