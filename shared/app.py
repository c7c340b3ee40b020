"""Assembles a service's FastAPI app from its routers, tables and workers.

Every service gets the same plumbing: problem+json errors, request ids and metrics,
idempotency, API-key auth state, `/health`, `/ready`, `/metrics`, one database, one HTTP
client for the other services, the outbox relay and any workers of its own, started and
stopped with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared import migrations, testclock
from shared.auth import KeyStore
from shared.clock import Clock, SystemClock, TestClock, pause
from shared.db import Database
from shared.docs import serve_docs
from shared.errors import DependencyUnavailable, install_problem_handlers, problem_response
from shared.gate import LargeBody, RequestGate
from shared.http import ServiceHttp, make_client
from shared.idempotency import IdempotencyMiddleware, purge_expired
from shared.observability import Metrics, RequestContextMiddleware, set_service
from shared.openapi import document_contract
from shared.outbox import Outbox, OutboxRelay
from shared.polling import SchemaWait
from shared.settings import BaseServiceSettings
from shared.subscriptions import Subscriber

log = logging.getLogger("o2c.app")

Worker = Callable[[FastAPI, asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class Periodic:
    """A pass a service repeats in the background and also runs on request.

    `run(app, **options)` is one pass. The app puts it on `app.state.jobs[name]`, where its
    route (an operator's "run it now"), tests and the worker loop all call the same thing;
    with workers enabled, `repeat` runs it every `settings.<every>` seconds."""

    name: str
    run: Callable[..., Awaitable[Any]]
    every: str  # the settings field holding the interval, in seconds


Job = Callable[..., Awaitable[Any]]


def job(name: str) -> Any:
    """A route's dependency on the pass of the periodic job `name` (`Periodic`), as in
    `run: Annotated[Job, job("overdue-scan")]`."""
    def dependency(request: Request) -> Job:
        return request.app.state.jobs[name]

    return Depends(dependency)
QueueProbe = Callable[[AsyncSession], Awaitable[dict[str, int]]]


@dataclass
class ServiceSpec:
    """What a service brings to the common app."""

    name: str
    title: str
    description: str
    metadata: MetaData
    idempotency: Table
    routers: Sequence[APIRouter]
    outbox: Table | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    workers: Sequence[Worker] = ()
    periodic: Sequence[Periodic] = ()  # passes repeated in the background, run on request
    queue_probe: QueueProbe | None = None
    on_startup: Callable[[FastAPI], Awaitable[None]] | None = None
    on_shutdown: Callable[[FastAPI], Awaitable[None]] | None = None  # after workers stopped
    subscriber: Subscriber | None = None  # events from the other services, via notifier
    # Routes taking bodies above O2C_MAX_BODY_BYTES: (path, settings field of the cap, roles)
    large_bodies: Sequence[tuple[str, str, tuple[str, ...]]] = ()


def _state(app: FastAPI) -> tuple[Database, Clock, KeyStore, BaseServiceSettings]:
    s = app.state
    return s.db, s.clock, s.keys, s.settings


SCHEMA_RETRY_SECONDS = 5.0  # a worker whose database is not migrated yet tries again this soon


async def run_periodically(stop: asyncio.Event, interval: float,
                           step: Callable[[], Awaitable[Any]], name: str,
                           clock: Clock | None = None) -> None:
    """Call `step` every `interval` seconds until `stop` is set; errors are logged, not fatal.

    A jump of the test clock (`clock`, DESIGN.md §10) starts the next step at once.

    While the database is not migrated (a service started before `o2c migrate`) the step is
    tried again every few seconds, not at its interval (a day, for the overdue scan), and
    that is one warning line, not a traceback per try."""
    waiting = SchemaWait(log, f"worker {name}")
    while not stop.is_set():
        wait = interval
        try:
            await step()
        except Exception as exc:
            if waiting.failed(exc):
                wait = min(interval, SCHEMA_RETRY_SECONDS)
            else:
                log.exception("worker %s failed; trying again in %.0fs", name, interval)
        else:
            waiting.succeeded()
        await pause(stop, wait, clock)


async def repeat(app: FastAPI, periodic: Periodic, stop: asyncio.Event) -> None:
    """The worker loop of `periodic`: the pass on `app.state.jobs` every `settings.<every>`
    seconds until `stop` is set."""
    await run_periodically(stop, getattr(app.state.settings, periodic.every),
                           lambda: app.state.jobs[periodic.name](), periodic.name, app.state.clock)


def create_service_app(spec: ServiceSpec, settings: BaseServiceSettings, *,
                       clock: Clock | None = None,
                       http_mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> FastAPI:
    """The FastAPI app of one service. `clock` and `http_mounts` are for tests."""
    metrics = Metrics(spec.name)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        set_service(spec.name)
        app.state.db = Database(settings.database_url(), pool_size=settings.db_pool_size,
                                busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                                write_wait_seconds=settings.sqlite_write_wait_seconds,
                                pre_ping=settings.db_pool_pre_ping)
        app.state.http_client = make_client(settings, http_mounts)
        app.state.http = ServiceHttp(app.state.http_client, settings)
        if settings.migrate_on_startup:
            await migrations.upgrade(app.state.db.engine, spec.name)
        if spec.outbox is not None:
            app.state.relay = OutboxRelay(
                db=app.state.db, outbox=app.state.outbox, http=app.state.http, clock=app.state.clock,
                batch_size=settings.outbox_batch_size, lease_seconds=settings.outbox_lease_seconds,
                max_backoff_seconds=settings.outbox_max_backoff_seconds,
                poll_seconds=settings.outbox_poll_seconds, service=spec.name)
        if spec.on_startup is not None:
            await spec.on_startup(app)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if settings.workers_enabled:
            if spec.outbox is not None:
                tasks.append(asyncio.create_task(app.state.relay.run(stop), name="outbox"))
            tasks.append(asyncio.create_task(run_periodically(
                stop, 3600, lambda: purge_expired(app.state.db, spec.idempotency, app.state.clock),
                "idempotency-purge", app.state.clock), name="idempotency-purge"))
            if spec.subscriber is not None:
                tasks.append(asyncio.create_task(
                    spec.subscriber.keep_registered(app, stop), name="subscription"))
            for worker in spec.workers:
                tasks.append(asyncio.create_task(worker(app, stop), name=worker.__name__))
            for periodic in spec.periodic:
                tasks.append(asyncio.create_task(repeat(app, periodic, stop), name=periodic.name))
        if isinstance(app.state.clock, TestClock):
            log.warning("%s: the test clock is on (O2C_TEST_CLOCK): PUT /v1/test-clock moves "
                        "business time; integration testing only", spec.name)
            with contextlib.suppress(Exception):  # not migrated yet: keep_in_step waits for it
                app.state.clock.apply(await testclock.stored_offset(
                    app.state.db, app.state.test_clock_table))
            tasks.append(asyncio.create_task(testclock.keep_in_step(app, stop), name="test-clock"))
        try:
            yield
        finally:
            stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=10)
                for task in pending:
                    task.cancel()
            if spec.on_shutdown is not None:
                await spec.on_shutdown(app)
            await app.state.http_client.aclose()
            await app.state.db.dispose()

    app = FastAPI(
        title=spec.title, description=spec.description, version="1.0.0", lifespan=lifespan,
        openapi_tags=[*spec.tags, {"name": "operations", "description": "Probes and metrics."}],
        generate_unique_id_function=lambda route: f"{spec.name}_{route.name}",
        docs_url=None, redoc_url=None,  # serve_docs: the same pages, without a CDN
    )
    serve_docs(app)
    app.state.settings = settings
    app.state.clock = clock or (TestClock() if settings.test_clock else SystemClock())
    if isinstance(app.state.clock, TestClock):
        app.state.test_clock_table = spec.metadata.tables[testclock.TABLE]
    app.state.metrics = metrics
    app.state.service = spec.name
    app.state.http_mounts = http_mounts  # services with clients of their own route through these
    app.state.keys = KeyStore(settings.api_keys_file,
                              settings.service_key.get_secret_value() if settings.service_key else None)
    app.state.outbox = Outbox(spec.outbox) if spec.outbox is not None else None
    app.state.subscriber = spec.subscriber
    app.state.jobs = {job.name: functools.partial(job.run, app) for job in spec.periodic}

    install_problem_handlers(app)
    document_contract(app)
    app.add_middleware(IdempotencyMiddleware, table=spec.idempotency, get_state=_state)
    app.add_middleware(RequestGate, keys=lambda scope: scope["app"].state.keys,
                       max_body_bytes=settings.max_body_bytes,
                       large_bodies=[LargeBody(path, getattr(settings, cap), roles)
                                     for path, cap, roles in spec.large_bodies])
    app.add_middleware(RequestContextMiddleware, service=spec.name, metrics=metrics)

    for router in spec.routers:
        app.include_router(router)
    if isinstance(app.state.clock, TestClock):
        app.include_router(testclock.router(app.state.test_clock_table))
    if spec.subscriber is not None:
        app.include_router(spec.subscriber.router)
    app.include_router(_operations_router(spec, metrics))
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.summary:
            route.summary = route.name.replace("_", " ").capitalize()
    return app


def _operations_router(spec: ServiceSpec, metrics: Metrics) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health", summary="Liveness")
    async def health() -> dict[str, str]:
        """The process is up and serving requests."""
        return {"status": "ok", "service": spec.name}

    @router.get("/ready", summary="Readiness", responses={503: {"description": "Not ready"}})
    async def ready(request: Request) -> Response:
        """The database answers and its migrations are at head."""
        db: Database = request.app.state.db
        try:
            await db.ping()
            current = await migrations.current_revision(db.read_engine)
        except Exception:
            log.warning("readiness: database unreachable", exc_info=True)
            return problem_response(DependencyUnavailable("The database is not reachable.",
                                                          dependency="database"))
        head = migrations.head_revision(spec.name)
        if current != head:
            return problem_response(DependencyUnavailable(
                f"Database migrations are at {current or 'none'}, expected {head}; "
                f"run `o2c migrate {spec.name}`.", dependency="migrations"))
        return JSONResponse({"status": "ready", "service": spec.name, "migration": current,
                             "test_clock": isinstance(request.app.state.clock, TestClock)})

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics_endpoint(request: Request) -> Response:
        """Request counts and latencies by route and status, and queue depths."""
        db: Database = request.app.state.db
        try:
            async with db.session(read_only=True) as session:
                depths: dict[str, int] = {}
                outbox: Outbox | None = request.app.state.outbox
                if outbox is not None:
                    depths["outbox"] = await outbox.pending(session)
                if spec.queue_probe is not None:
                    depths.update(await spec.queue_probe(session))
            for queue, depth in depths.items():
                metrics.queue_depth.labels(spec.name, queue).set(depth)
        except Exception:
            log.warning("metrics: could not read queue depths", exc_info=True)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
