"""Request ids, structured JSON logs, Prometheus metrics and the probes every service has.

`RequestContextMiddleware` is a pure ASGI middleware: it accepts or generates
`X-Request-ID`, puts it in a context variable (every log line and downstream call reads it
from there), echoes it, records request counts and latencies by route template and status,
writes one access-log line, and turns an unexpected exception into a problem+json 500 that
carries the request id and nothing internal.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "o2c_request_id", default=None
)
_service: contextvars.ContextVar[str | None] = contextvars.ContextVar("o2c_service", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
access_log = logging.getLogger("o2c.access")
log = logging.getLogger("o2c.errors")


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token[str | None]:
    return _request_id.set(value)


def set_service(name: str) -> None:
    """Name the service on log lines outside requests (workers started from the lifespan)."""
    _service.set(name)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def work_request_id() -> Iterator[str]:
    """One request id for a unit of background work (a worker pass): its log lines and the
    calls it makes downstream share it. A request that runs the work keeps its own id."""
    token = _request_id.set(_request_id.get() or new_request_id())
    try:
        yield _request_id.get() or ""
    finally:
        _request_id.reset(token)


_base_record_factory = logging.getLogRecordFactory()


def _record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Stamp every log record, when it is made, with the service and request it belongs to."""
    record = _base_record_factory(*args, **kwargs)
    record.request_id = _request_id.get()
    record.service = _service.get()
    return record


logging.setLogRecordFactory(_record_factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with time, level, logger, message, service and request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": getattr(record, "service", None) or _service.get(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for key in ("method", "path", "route", "status", "duration_ms", "event_id", "attempt"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Route the root logger (and uvicorn's) through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our access log replaces uvicorn's, which would print the raw query string.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every call between services at INFO, with its full URL and query: one line
    # per call (several per request) that the callee's access line already tells, by route.
    # Alembic tells each plugin it sets up (7 lines per service and start) and `transitions`
    # each callback and state it passes (2 lines per order transition, which the order's
    # history already records): at INFO they bury what an operator reads. Warnings stay.
    for name in ("httpx", "httpcore", "alembic", "transitions"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class Metrics:
    """Prometheus collectors of one service, in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "o2c_http_requests_total", "HTTP requests by route and status",
            ["service", "method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "o2c_http_request_duration_seconds", "HTTP request latency by route",
            ["service", "method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.queue_depth = Gauge(
            "o2c_queue_depth", "Rows waiting in a work queue (outbox, deliveries, ...)",
            ["service", "queue"], registry=self.registry,
        )


def _route_template(scope: Scope) -> str:
    """The matched route's path template, for metrics and the access log.

    FastAPI's own routes put themselves in `scope["route"]`; plain Starlette routes (FastAPI's
    `/openapi.json`, `/docs`, `/docs/oauth2-redirect`, mounted static files) only leave their
    endpoint or app, so those are looked up among the app's routes.
    """
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return route.path
    endpoint = scope.get("endpoint")
    app = scope.get("app")
    if endpoint is not None and app is not None:
        for candidate in getattr(app, "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint or \
                    getattr(candidate, "app", None) is endpoint:
                return getattr(candidate, "path", None) or "unmatched"
    return "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, metrics: Metrics) -> None:
        self.app = app
        self.service = service
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if incoming and _VALID_REQUEST_ID.match(incoming) else new_request_id()
        token = _request_id.set(rid)
        stoken = _service.set(self.service)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            from shared.errors import problem_response, unexpected_problem

            problem = unexpected_problem(exc, f"{scope['method']} {scope['path']}")
            if not response_started:
                await problem_response(problem)(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.requests.labels(self.service, method, route, str(status)).inc()
            self.metrics.latency.labels(self.service, method, route).observe(elapsed)
            access_log.info(
                "%s %s %s", method, route, status,
                extra={"method": method, "path": scope["path"], "route": route,
                       "status": status, "duration_ms": round(elapsed * 1000, 2)},
            )
            _service.reset(stoken)
            _request_id.reset(token)


QueueDepthProbe = Callable[[], Awaitable[dict[str, int]]]
