"""`o2c serve` with a tally of the SQL it runs, for bench/write_paths.py's counting pass.

Run as a script (so it works for another checkout's `services` on PYTHONPATH too):

    python bench/sqlcount.py serve SERVICE --port N

It installs SQLAlchemy listeners on every engine and pool (`before_cursor_execute`, `commit`,
`rollback`, pool `checkout`, and the dialects' `do_ping`), wraps the ASGI app handed to
`uvicorn.run` so that each statement is booked under where it ran, then runs `services.cli.main`
unchanged:

- `sync`: inside a request whose `X-Request-ID` starts with `bench-` — the client's request and
  the calls other services made while serving it (they pass the request id on);
- `in:METHOD /route`: inside any other request (the outbox relay's `POST /v1/events`, notifier's
  deliveries to `/v1/inbox`, ...): work the client's request caused after it was answered;
- `task:NAME`: in a background task (outbox relay, deliveries, ...), outside any request;
- `probe`: `/metrics`, `/ready`, `/health` and requests whose id starts with `benchpoll-` (the
  bench's own polling; not reported).

`GET /__bench/sql` answers the tally as JSON (`?reset=1` then empties it). Transactions are
counted at commit/rollback when at least one statement ran in them; pool checkouts are counted,
and pool pre-pings (SQLAlchemy `pool_pre_ping`, `O2C_DB_POOL_PRE_PING`: `BEGIN; ;ROLLBACK` on
asyncpg) when the services have them on. Only the bench's counting pass uses this; the measured
processes are plain `o2c serve`.
"""

from __future__ import annotations

import contextvars
import json
import re
import sys
from collections import Counter, defaultdict
from typing import Any

import uvicorn
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Engine
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.pool import Pool

_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("bench_origin", default=None)
_ID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SPACE = re.compile(r"\s+")
PROBES = frozenset({"/metrics", "/ready", "/health"})
LOG_LIMIT = 5000


def route_of(path: str) -> str:
    return _ID.sub("/{id}", path)


def kind_of(statement: str) -> str:
    text = statement.lstrip().upper()
    word = text.split(None, 1)[0] if text else ""
    if word == "SELECT" and "FOR UPDATE" in text:
        return "SELECT FOR UPDATE"
    if word in ("WITH",):
        return "SELECT" if "INSERT" not in text and "UPDATE" not in text else "WITH…WRITE"
    return word


class Tally:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.stmts: dict[str, Counter[str]] = defaultdict(Counter)  # origin -> kind -> n
        self.texts: dict[str, Counter[str]] = defaultdict(Counter)  # origin -> statement -> n
        self.xacts: Counter[str] = Counter()
        self.rollbacks: Counter[str] = Counter()
        self.checkouts: Counter[str] = Counter()
        self.pings: Counter[str] = Counter()  # pool pre-pings (O2C_DB_POOL_PRE_PING)
        self.requests: Counter[str] = Counter()  # "origin|METHOD /route" -> n
        self.log: list[tuple[str, str, str]] = []  # (origin, what, statement), in order

    def note(self, origin: str, what: str, text: str = "") -> None:
        if len(self.log) < LOG_LIMIT and origin != "probe":
            self.log.append((origin, what, text))

    def as_json(self) -> dict[str, Any]:
        return {"stmts": {o: dict(c) for o, c in self.stmts.items()},
                "texts": {o: dict(c) for o, c in self.texts.items()},
                "xacts": dict(self.xacts), "rollbacks": dict(self.rollbacks),
                "checkouts": dict(self.checkouts), "pings": dict(self.pings),
                "requests": dict(self.requests),
                "log": self.log,
                "services_module": sys.modules["services"].__file__
                if "services" in sys.modules else None}


TALLY = Tally()


def _where() -> str:
    origin = _origin.get()
    if origin is not None:
        return origin
    try:
        import asyncio

        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return f"task:{task.get_name()}" if task is not None else "thread"


@event.listens_for(Engine, "before_cursor_execute")
def _statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
    where = _where()
    kind = kind_of(statement)
    TALLY.stmts[where][kind + (" (executemany)" if executemany else "")] += 1
    text = _SPACE.sub(" ", statement.strip())
    TALLY.texts[where][text] += 1
    TALLY.note(where, "stmt", text)
    if kind not in ("BEGIN", "COMMIT", "ROLLBACK"):
        conn.info["bench_pending"] = conn.info.get("bench_pending", 0) + 1


def _ended(conn: Any, counter: Counter[str], what: str) -> None:
    if conn.info.pop("bench_pending", 0):
        where = _where()
        counter[where] += 1
        TALLY.note(where, what)


event.listen(Engine, "commit", lambda conn: _ended(conn, TALLY.xacts, "COMMIT"))
event.listen(Engine, "rollback", lambda conn: _ended(conn, TALLY.rollbacks, "ROLLBACK"))


@event.listens_for(Pool, "checkout")
def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    where = _where()
    TALLY.checkouts[where] += 1
    TALLY.note(where, "checkout")


def _count_pings(dialect: type) -> None:
    """Book every pool pre-ping (it runs on the raw DBAPI connection, outside the cursor events)."""
    real = dialect.do_ping

    def do_ping(self: Any, dbapi_connection: Any) -> bool:
        where = _where()
        TALLY.pings[where] += 1
        TALLY.note(where, "ping")
        return real(self, dbapi_connection)

    dialect.do_ping = do_ping


_count_pings(DefaultDialect)
_count_pings(PGDialect_asyncpg)


class CountingApp:
    """The service's ASGI app, with each request booked under its origin and `/__bench/sql`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/__bench/sql":
            body = json.dumps(TALLY.as_json()).encode()
            if b"reset=1" in scope.get("query_string", b""):
                TALLY.reset()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        headers = dict(scope.get("headers", []))
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        route = f"{scope['method']} {route_of(path)}"
        if path in PROBES or rid.startswith("benchpoll-"):
            origin = "probe"
        elif rid.startswith("bench-"):
            origin = "sync"
        else:
            origin = f"in:{route}"
        # The bench's own requests say so (X-Bench-Client); the rest came from another service.
        sender = "client" if b"x-bench-client" in headers and origin == "sync" else origin
        TALLY.requests[f"{sender}|{route}"] += 1
        token = _origin.set(origin)
        try:
            await self.app(scope, receive, send)
        finally:
            _origin.reset(token)


def main() -> int:
    real_run = uvicorn.run

    def run(app: Any, *args: Any, **kwargs: Any) -> Any:
        return real_run(CountingApp(app), *args, **kwargs)

    uvicorn.run = run
    from services import cli

    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
