"""How a service receives other services' events: as a webhook endpoint of notifier.

DESIGN.md §1: credit and orders subscribe to the events they need as webhook endpoints of
their own, so there is one delivery mechanism, signed and logged. A `Subscriber`:

- registers the service with notifier (`POST /v1/webhook-endpoints`, as the service
  principal, which may use private addresses) and keeps the endpoint id and secret in the
  service's own `subscriptions` table; registration is retried by a worker until notifier
  answers, and re-done when the wanted event types change;
- serves `POST /v1/inbox`, which verifies the Standard Webhooks signature, records the event
  id in the `inbox` table (so a redelivery is acknowledged and ignored) and runs the handlers
  for the event type, in order.

DESIGN.md §9, no lock across the network: a handler that needs another service's answer is a
`TwoPhase(prepare, apply)`. The inbox runs in this order, and opens no write transaction
until every prepare is done:

1. read (a read-only session, or the cached secret): verify the signature; an event id
   already in the inbox is acknowledged as a duplicate at once, without preparing;
2. prepare: `await prepare(app, event) -> facts` for each two-phase handler, in order. It may
   read through `app.state.db.session(read_only=True)` and call other services; it writes
   nothing. If it raises, nothing is recorded and the inbox answers 5xx (503 for
   `DependencyUnavailable`), so notifier delivers the event again later;
3. write: the request's session inserts the event id into the inbox — the write transaction
   begins here — and runs each handler in order inside it: `await apply(session, app, event,
   facts)` with its own prepare's facts, or a plain handler `await handler(session, app,
   event)`. Applies write and call no service. A handler that raises rolls everything back
   (inbox row included) and the 5xx makes notifier retry later.

Two deliveries of one event racing each other may both prepare; the inbox insert decides and
only the winner applies (the other answers "duplicate"). Facts may therefore be a little
stale by the time they are applied: an apply re-checks under its own locks what it must (a
hold still active, one not placed twice), and says in a comment where staleness matters.

Plain handlers run only in step 3, inside the write transaction; one that calls another
service holds the lock across the network (orders' `invoice.paid` handler, until converted).

Several parts of a service may act on one event type: `handlers_of(a, b)` joins their maps
so each keeps its handler (a's run first) instead of one replacing the other; plain and
two-phase handlers mix freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

from shared import webhooks
from shared.db import SessionDep, UTCDateTime, dialect_insert
from shared.errors import DependencyUnavailable, Unauthorized, ValidationFailed
from shared.events import Event

log = logging.getLogger("o2c.subscriptions")

Facts = TypeVar("Facts")
PlainHandler = Callable[[AsyncSession, FastAPI, Event], Awaitable[None]]


@dataclass(frozen=True)
class TwoPhase(Generic[Facts]):
    """An event handler that asks first and writes after: `prepare` runs before any write
    transaction (read sessions and calls to other services only), `apply` inside the inbox's
    write transaction with what `prepare` returned (writes only, no calls)."""

    prepare: Callable[[FastAPI, Event], Awaitable[Facts]]
    apply: Callable[[AsyncSession, FastAPI, Event, Facts], Awaitable[None]]


Handler = PlainHandler | TwoPhase[Any]
INBOX_PATH = "/v1/inbox"


def handlers_of(*maps: Mapping[str, Handler]) -> dict[str, list[Handler]]:
    """Every map's handler for each event type, in the order the maps are given."""
    joined: dict[str, list[Handler]] = {}
    for handlers in maps:
        for event_type, handler in handlers.items():
            joined.setdefault(event_type, []).append(handler)
    return joined


def subscription_table(metadata: MetaData) -> Table:
    return Table(
        "subscriptions", metadata,
        Column("name", String(50), primary_key=True),
        Column("endpoint_id", String(36), nullable=False),
        Column("secret", String(100), nullable=False),
        Column("url", String(2000), nullable=False),
        Column("event_types", JSON, nullable=False),
        Column("registered_at", UTCDateTime, nullable=False),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox", metadata,
        Column("event_id", String(36), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
    )


class Subscriber:
    """One service's subscription to events delivered by notifier."""

    def __init__(self, *, service: str, handlers: Mapping[str, Handler | Sequence[Handler]],
                 subscriptions: Table, inbox: Table) -> None:
        self.service = service
        self.handlers: dict[str, tuple[Handler, ...]] = {
            event_type: tuple(h) if isinstance(h, Sequence) else (h,)
            for event_type, h in handlers.items()}
        self.subscriptions = subscriptions
        self.inbox = inbox
        self.router = self._router()

    @property
    def event_types(self) -> list[str]:
        return sorted(self.handlers)

    async def registered(self, app: FastAPI) -> bool:
        async with app.state.db.session(read_only=True) as session:
            row = (await session.execute(select(self.subscriptions).where(
                self.subscriptions.c.name == self.service))).one_or_none()
        return row is not None and row.event_types == self.event_types and \
            row.url == self._url(app)

    def _url(self, app: FastAPI) -> str:
        return app.state.settings.service_url(self.service) + INBOX_PATH

    async def register(self, app: FastAPI) -> None:
        """Create or update this service's endpoint at notifier; raise if it does not answer.

        A known endpoint is updated on every start, enabled included: one that an earlier
        version let notifier disable for failing is switched back on."""
        url, types = self._url(app), self.event_types
        http = app.state.http
        async with app.state.db.session(read_only=True) as session:
            row = (await session.execute(select(self.subscriptions).where(
                self.subscriptions.c.name == self.service))).one_or_none()
        if row is not None:
            response = await http.call("notifier", "PATCH", f"/v1/webhook-endpoints/{row.endpoint_id}",
                                       json={"url": url, "event_types": types, "enabled": True})
            if response.status_code == 200:
                await self._store(app, row.endpoint_id, row.secret, url, types)
                return
            if response.status_code != 404:
                raise DependencyUnavailable(f"notifier refused the subscription update: "
                                            f"{response.status_code}", dependency="notifier")
        key = f"subscribe:{self.service}:{url}:{','.join(types)}"
        response = await http.call("notifier", "POST", "/v1/webhook-endpoints", json={
            "url": url, "event_types": types,
            "description": f"o2c {self.service}: events it acts on"}, idempotency_key=key[:255])
        if response.status_code not in (200, 201):
            raise DependencyUnavailable(f"notifier refused the subscription: {response.status_code}"
                                        f" {response.text[:200]}", dependency="notifier")
        body = response.json()
        await self._store(app, body["id"], body["secret"], url, types)
        log.info("subscribed %s to %s", self.service, ", ".join(types))

    async def _store(self, app: FastAPI, endpoint_id: str, secret: str, url: str,
                     types: list[str]) -> None:
        t = self.subscriptions
        async with app.state.db.session() as session, session.begin():
            await session.execute(t.delete().where(t.c.name == self.service))
            await session.execute(t.insert().values(
                name=self.service, endpoint_id=endpoint_id, secret=secret, url=url,
                event_types=types, registered_at=app.state.clock.now()))
        app.state.subscription_secret = secret

    async def _current_secret(self, app: FastAPI, session: AsyncSession) -> str | None:
        # Kept per app, not on this object: a Subscriber is module-level and outlives an app.
        secret = getattr(app.state, "subscription_secret", None)
        if secret is None:
            secret = app.state.subscription_secret = (await session.execute(
                select(self.subscriptions.c.secret).where(
                    self.subscriptions.c.name == self.service))).scalar_one_or_none()
        return secret

    async def _verified(self, app: FastAPI, headers: Headers, body: bytes) -> tuple[Event, bool]:
        """The delivered event and whether the inbox has it already, read without a write
        transaction (step 1); raises 401 for a bad signature, 422 for a body that is no event."""
        async with app.state.db.session(read_only=True) as reads:
            secret = await self._current_secret(app, reads)
            if secret is None:
                raise Unauthorized("This service has not subscribed yet.")
            try:
                webhooks.verify(secret, headers, body, now=app.state.clock.wall_now())
            except webhooks.InvalidSignature as exc:
                raise Unauthorized(f"Invalid webhook signature: {exc}.") from exc
            try:
                event = Event.model_validate(json.loads(body))
            except ValueError as exc:
                raise ValidationFailed("The delivery is not an o2c event envelope.") from exc
            seen = (await reads.execute(select(self.inbox.c.event_id).where(
                self.inbox.c.event_id == str(event.id)))).first() is not None
        return event, seen

    def _router(self) -> APIRouter:
        router = APIRouter(tags=["inbox"])
        subscriber = self

        @router.post(INBOX_PATH, summary="Receive an event from notifier",
                     openapi_extra={"x-o2c-auth": "standard-webhooks-signature"},
                     responses={401: {"description": "Missing or invalid webhook signature"}})
        async def receive_event(request: Request, session: SessionDep) -> JSONResponse:
            """Events this service subscribed to, signed by notifier per Standard Webhooks."""
            app = request.app
            event, seen = await subscriber._verified(app, request.headers, await request.body())
            duplicate = JSONResponse({"event_id": str(event.id), "status": "duplicate"})
            if seen:
                return duplicate
            handlers = subscriber.handlers.get(event.type, ())
            facts = [await handler.prepare(app, event) if isinstance(handler, TwoPhase) else None
                     for handler in handlers]
            # The write transaction begins here, at the request session's first statement: one
            # INSERT that does nothing if the same event, delivered twice at once, got in first.
            insert = dialect_insert(session)
            stored = await session.execute(insert(subscriber.inbox).values(
                event_id=str(event.id), type=event.type,
                received_at=app.state.clock.now()).on_conflict_do_nothing())
            if stored.rowcount == 0:
                return duplicate
            for handler, prepared in zip(handlers, facts, strict=True):
                if isinstance(handler, TwoPhase):
                    await handler.apply(session, app, event, prepared)
                else:
                    await handler(session, app, event)
            return JSONResponse({"event_id": str(event.id),
                                 "status": "handled" if handlers else "ignored"})

        return router

    async def keep_registered(self, app: FastAPI, stop: asyncio.Event) -> None:
        """Worker: register at start-up, retrying (1 s, 2 s, … up to 30 s) until notifier answers."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self.register(app)
                return
            except Exception as exc:  # notifier not up yet: try again
                log.warning("subscription of %s not registered yet: %s", self.service, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(30.0, delay * 2)
