"""`Idempotency-Key` on every POST (DESIGN.md §3), stored in the service's own database.

The same key with the same body within 24 h replays the stored response with
`Idempotent-Replayed: true`; the same key with another body is 422
`idempotency_key_reused`; a request whose first attempt is still running gets 409
`conflict`. Keys are scoped per principal. Responses of 5xx are not stored, so a retry after
a dependency failure runs again. An in-flight marker older than
`idempotency_in_flight_seconds` (a crashed worker) may be taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.clock import Clock
from shared.db import Database, UTCDateTime
from shared.errors import (
    Conflict,
    IdempotencyKeyReused,
    Problem,
    ValidationFailed,
    problem_response,
)

log = logging.getLogger("o2c.idempotency")
HEADER = b"idempotency-key"
REPLAYED_HEADERS = {b"content-type", b"location", b"etag"}
MAX_KEY_LENGTH = 255


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys", metadata,
        Column("scope", String(200), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("state", String(16), nullable=False),
        Column("response_status", Integer, nullable=True),
        Column("response_headers", Text, nullable=True),
        Column("response_body", LargeBinary, nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime, nullable=False, index=True),
    )


def _fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, *, table: Table, get_state: Any) -> None:
        self.app = app
        self.table = table
        self.get_state = get_state  # () -> (Database, Clock, KeyStore, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await self._problem(scope, receive, send, ValidationFailed(
                "Idempotency-Key must be 1 to 255 characters.",
                errors=[{"field": "header.Idempotency-Key", "message": "1 to 255 characters"}]))
            return
        db, clock, keys, settings = self.get_state(scope["app"])
        principal = None
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth[:7].lower() == "bearer ":
            principal = keys.lookup(auth[7:].strip())
        if principal is None:  # authentication will refuse the request
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal  # auth need not look it up again

        body = await _read_body(receive)
        fingerprint = _fingerprint(scope["method"], scope["path"], scope.get("query_string", b""),
                                   body)
        ident = (principal.name, key)
        outcome = await self._begin(db, clock, settings, ident, fingerprint)
        if isinstance(outcome, Problem):
            await self._problem(scope, receive, send, outcome)
            return
        if outcome is not None:
            await _replay(outcome, send)
            return

        status = 500
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, start
            if message["type"] == "http.response.start":
                status, start = message["status"], message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay_body(body, receive), capture)
        except BaseException:
            await self._forget(db, ident)
            raise
        if status >= 500 or start is None:
            await self._forget(db, ident)
            return
        stored = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])
                  if k.lower() in REPLAYED_HEADERS]
        async with db.session() as session, session.begin():
            await session.execute(update(self.table).where(
                self.table.c.scope == ident[0], self.table.c.key == ident[1]).values(
                state="completed", response_status=status,
                response_headers=json.dumps(stored), response_body=b"".join(chunks)))

    async def _begin(self, db: Database, clock: Clock, settings: Any, ident: tuple[str, str],
                     fingerprint: str) -> Problem | Any | None:
        """Mark the key in flight; or return the stored row to replay, or the problem to send."""
        t, now = self.table, clock.now()
        for _ in range(3):
            try:
                async with db.session() as session, session.begin():
                    await session.execute(t.insert().values(
                        scope=ident[0], key=ident[1], fingerprint=fingerprint, state="in_flight",
                        created_at=now, expires_at=now + timedelta(hours=settings.idempotency_ttl_hours)))
                return None
            except IntegrityError:
                pass
            async with db.session() as session, session.begin():
                row = (await session.execute(select(t).where(
                    t.c.scope == ident[0], t.c.key == ident[1]))).one_or_none()
                if row is None:
                    continue
                stale = (row.state == "in_flight" and row.created_at
                         + timedelta(seconds=settings.idempotency_in_flight_seconds) < now)
                if row.expires_at <= now or stale:
                    await session.execute(delete(t).where(t.c.scope == ident[0], t.c.key == ident[1]))
                    continue
                if row.fingerprint != fingerprint:
                    return IdempotencyKeyReused(
                        "This Idempotency-Key was used with a different request body.")
                if row.state == "in_flight":
                    return Conflict("A request with this Idempotency-Key is still in progress; "
                                    "retry later.", headers={"Retry-After": "1"})
                return row
        return Conflict("Could not record the Idempotency-Key; retry.")

    async def _forget(self, db: Database, ident: tuple[str, str]) -> None:
        try:
            async with db.session() as session, session.begin():
                await session.execute(delete(self.table).where(
                    self.table.c.scope == ident[0], self.table.c.key == ident[1]))
        except Exception:
            log.exception("could not release an idempotency key")

    @staticmethod
    async def _problem(scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
        await problem_response(problem)(scope, receive, send)


async def purge_expired(db: Database, table: Table, clock: Clock) -> int:
    async with db.session() as session, session.begin():
        result = await session.execute(delete(table).where(table.c.expires_at <= clock.now()))
        return result.rowcount or 0


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay_body(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the app once, then pass through to the real channel."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _replay(row: Any, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1"))
               for k, v in json.loads(row.response_headers or "[]")]
    headers.append((b"idempotent-replayed", b"true"))
    body = row.response_body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": row.response_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
