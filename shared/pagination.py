"""Cursor pagination: `?limit=50&cursor=…` → `{"items": [...], "next_cursor": "…"|null}`.

The cursor is an opaque, URL-safe encoding of the last row's sort key (for example its
creation time and id), so pages stay stable while rows are added.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


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


Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1–200).")]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor` of the previous page.")]
