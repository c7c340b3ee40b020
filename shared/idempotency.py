"""`Idempotency-Key` on every POST (DESIGN.md §3, §9), stored in the service's own database.

The same key with the same body within 24 h replays the stored response with
`Idempotent-Replayed: true`; the same key with another body is 422
`idempotency_key_reused`. Keys are scoped per principal.

The stored response is committed in the same transaction as the effect it describes, before
the response leaves the process (Stripe's model):

1. The middleware looks the key up (one primary-key read). Stored → replay it.
2. Otherwise the request runs with an `IdempotencyContext` in its scope. The request's session
   dependency does not commit: it hands its session to the context (`adopt`).
3. The middleware holds the response until it is complete, then writes the key's row with
   status, headers and body *into that session* and commits effect and key together. Only then
   does the response go out.

So a retry sent after a response always finds the key (it never sees "in progress"), and a
crash at any instant leaves either nothing (the retry runs the request) or effect and key
together (the retry replays) — never an effect without its key. Two first attempts racing
each other both run inside their own transactions; the first to commit wins, the other's key
insert conflicts, its transaction (effect included) rolls back and it replays the winner.

A request that fails (4xx) has no effect to keep: its session rolled back, and its answer is
stored on its own, so the retry gets the same answer. 5xx answers are not stored: a retry
after a dependency failure runs again. A request that committed part of its work earlier
(orders' cross-service steps commit their intent before calling out) relies on that work
being resumable: the retry finds the intent and finishes it.

Rows written by an earlier version as `in_flight` mark a request that never recorded its
answer; they are treated as absent.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.clock import Clock
from shared.db import COMMIT_OWNER, Database, UTCDateTime, dialect_insert
from shared.errors import (
    IdempotencyKeyReused,
    InternalError,
    Problem,
    ValidationFailed,
    problem_response,
    unexpected_problem,
)
from shared.failpoints import failpoint
from shared.routing import name_route

log = logging.getLogger("o2c.idempotency")
HEADER = b"idempotency-key"
REPLAYED_HEADERS = {b"content-type", b"location", b"etag"}
MAX_KEY_LENGTH = 255
COMPLETED = "completed"


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys", metadata,
        Column("scope", String(200), primary_key=True),
        Column("key", String(MAX_KEY_LENGTH), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("state", String(16), nullable=False),  # always `completed` since 2026-12
        Column("response_status", Integer, nullable=True),
        Column("response_headers", Text, nullable=True),
        Column("response_body", LargeBinary, nullable=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("expires_at", UTCDateTime, nullable=False, index=True),
    )


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and the body's JSON value."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    h = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical):
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class KeyRef:
    """Which key a response belongs to: the principal's scope, the key, the request's fingerprint."""

    scope: str
    key: str
    fingerprint: str

    def as_dict(self) -> dict[str, str]:
        return {"scope": self.scope, "key": self.key, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRef:
        return cls(str(data["scope"]), str(data["key"]), str(data["fingerprint"]))


async def store_response(session: AsyncSession, table: Table, ref: KeyRef, response: StoredResponse,
                         *, now: datetime, ttl_hours: int) -> None:
    """Record `response` as the answer of `ref` in the caller's transaction, unless one is stored.

    For work finished on behalf of an earlier request (orders' recovery worker completing a step
    a request began): that request's retry then replays this answer.
    """
    insert = dialect_insert(session)
    await session.execute(insert(table).values(
        scope=ref.scope, key=ref.key, fingerprint=ref.fingerprint, state=COMPLETED,
        response_status=response.status, response_headers=json.dumps(response.headers),
        response_body=response.body, created_at=now,
        expires_at=now + timedelta(hours=ttl_hours)).on_conflict_do_nothing())


@dataclass
class IdempotencyContext:
    """One keyed request on its way through the app; the request's session is handed to it."""

    table: Table
    ref: KeyRef
    now: datetime
    ttl_hours: int
    service: str
    session: AsyncSession | None = field(default=None, repr=False)

    def adopt(self, session: AsyncSession) -> bool:
        """Take over committing the request's session (the first one); False if one was taken."""
        if self.session is not None:
            return False
        self.session = session
        return True

    def _row(self, response: StoredResponse) -> dict[str, Any]:
        return {"scope": self.ref.scope, "key": self.ref.key, "fingerprint": self.ref.fingerprint,
                "state": COMPLETED, "response_status": response.status,
                "response_headers": json.dumps(response.headers), "response_body": response.body,
                "created_at": self.now, "expires_at": self.now + timedelta(hours=self.ttl_hours)}

    async def commit(self, db: Database, response: StoredResponse) -> None:
        """Commit the request's effect with its answer; raises IntegrityError if the key exists."""
        session = self.session
        if session is None:  # nothing was written through a request session: store on its own
            async with db.session() as own, own.begin():
                await own.execute(self.table.insert().values(**self._row(response)))
            return
        await session.execute(self.table.insert().values(**self._row(response)))
        failpoint(f"{self.service}.idempotency.before_commit")
        await session.commit()
        failpoint(f"{self.service}.idempotency.after_commit")

    async def commit_without_key(self) -> None:
        """A handler that answered 5xx normally still meant what it wrote; the key stays free."""
        if self.session is not None and self.session.in_transaction():
            await self.session.commit()

    async def close(self) -> None:
        if self.session is not None:
            try:
                if self.session.in_transaction():
                    await self.session.rollback()
            finally:
                await self.session.close()
                self.session = None


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
            await self._answer(scope, receive, send, ValidationFailed(
                "Idempotency-Key must be 1 to 255 characters.",
                errors=[{"field": "header.Idempotency-Key", "message": "1 to 255 characters"}]))
            return
        db, clock, keys, settings = self.get_state(scope["app"])
        principal = scope.get("state", {}).get("principal")  # found by the gate (shared.gate)
        if principal is None:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if auth[:7].lower() == "bearer ":
                principal = keys.lookup(auth[7:].strip())
        if principal is None:  # authentication will refuse the request
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal  # auth need not look it up again

        body = await _read_body(receive)
        ref = KeyRef(principal.name, key, fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), body))
        now = clock.now()
        earlier = await self._lookup(db, ref, now)
        if earlier is not None:
            await self._answer(scope, receive, send, earlier)
            return

        ctx = IdempotencyContext(self.table, ref, now, settings.idempotency_ttl_hours,
                                 scope["app"].state.service)
        scope["state"][COMMIT_OWNER] = ctx
        start: Message | None = None
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            await self.app(scope, _replay_body(body, receive), hold)
            if start is None:  # the app sent nothing: let the outer layers answer 500
                raise RuntimeError("the app returned without a response")
            answer = await self._settle(db, ctx, start, b"".join(chunks))
        finally:
            await ctx.close()
        if answer is None:
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})
        else:
            await self._answer(scope, receive, send, answer)

    async def _settle(self, db: Database, ctx: IdempotencyContext, start: Message,
                      body: bytes) -> Problem | StoredResponse | None:
        """Commit the effect with its answer; None to send the held response, or what to send."""
        status = start["status"]
        if status >= 500:
            await ctx.commit_without_key()
            return None
        stored = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])
                  if k.lower() in REPLAYED_HEADERS]
        try:
            await ctx.commit(db, StoredResponse(status, stored, body))
        except IntegrityError:  # a concurrent first attempt committed first: answer as it did
            await ctx.close()
            winner = await self._lookup(db, ctx.ref, ctx.now)
            if winner is None:
                return InternalError("The Idempotency-Key could not be recorded; retry the request.")
            return winner
        except Exception as exc:
            return unexpected_problem(exc, "the commit of a keyed request")
        return None

    async def _lookup(self, db: Database, ref: KeyRef, now: datetime) -> Problem | StoredResponse | None:
        """The stored answer of the key, the problem if the body differs, or None: not stored."""
        t = self.table
        async with db.session(read_only=True) as session:
            row = (await session.execute(select(t).where(
                t.c.scope == ref.scope, t.c.key == ref.key))).one_or_none()
        if row is None:
            return None
        if row.expires_at <= now or row.state != COMPLETED:
            async with db.session() as session, session.begin():
                await session.execute(delete(t).where(
                    t.c.scope == ref.scope, t.c.key == ref.key, t.c.expires_at == row.expires_at))
            return None
        if row.fingerprint != ref.fingerprint:
            return IdempotencyKeyReused("This Idempotency-Key was used with a different request body.")
        return StoredResponse(row.response_status, [tuple(h) for h in json.loads(
            row.response_headers or "[]")], row.response_body or b"")

    @staticmethod
    async def _answer(scope: Scope, receive: Receive, send: Send,
                      answer: Problem | StoredResponse) -> None:
        """Send an answer the layer made itself, naming the route for metrics and logs."""
        name_route(scope)
        if isinstance(answer, Problem):
            await problem_response(answer)(scope, receive, send)
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
        headers.append((b"idempotent-replayed", b"true"))
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


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
