"""Webhook fan-out and the event relay, through a real notifier, on SQLite and PostgreSQL.

For each database it starts a real `o2c serve notifier` on a free loopback port (SQLite in a
temporary directory; PostgreSQL in a throwaway database `o2c_bench_<pid>` on
`O2C_BENCH_POSTGRES_URL`, default the local server as user postgres, dropped at the end) and
a local sink in its own process (a bare asyncio HTTP server answering 204 at once and
recording the arrival time of each webhook). In the same run it measures:

- **the bare sink**: a client (aiohttp, keep-alive) posting straight to the sink, requests/s —
  the ceiling of this machine for a webhook round trip, for scale;
- **fan-out**: `--endpoints` webhook endpoints registered on the sink
  (`O2C_WEBHOOK_ALLOW_PRIVATE=true`), then events produced at a fixed `--rate` for
  `--seconds` and posted to `POST /v1/events` as the service principal by `--relays`
  relay-like posters, each one request at a time as an outbox relay does (`--form single`:
  one event per POST with its id as Idempotency-Key, what the relays sent before batches;
  `--form batch`: whatever a poster has queued, up to 100, in one `{"events": [...]}`).
  An event that notifier cannot take yet waits in its poster's queue, as it would in an
  outbox. It waits until every (event, endpoint) has arrived or `--drain-seconds` pass, then
  reports deliveries/s, event -> webhook latency (the event's production time to its arrival
  at the sink, so ingest delay counts) p50/p99/max, lost and duplicated deliveries, invalid
  signatures (Standard Webhooks, each checked with its endpoint's secret), attempts per
  delivery as notifier recorded them, and notifier's CPU per delivery;
- **the relay**: `--relay-events` events written to an outbox (a SQLite file, as a service
  writes them) drained by `shared.outbox.OutboxRelay` into the same notifier, events/s.
  These events are of a type no endpoint wants, so only ingest is measured.

`--replicas N` starts N notifier processes on the one database (the posters spread over them
as a load balancer would; all of them deliver): scale-out, meant for PostgreSQL.
`--profile` records the (first) loaded notifier with py-spy (`--gil`: only the thread that runs Python)
during the fan-out (`--py-spy PATH`, else `py-spy` on PATH or in the venv) and prints where
its CPU goes.

Everything is bounded: `--seconds` of posting, `--drain-seconds` of waiting, then it stops.
The machine's other load makes every figure noisy: compare figures of the same run.

    .venv/bin/python -m bench.webhooks [--db sqlite|postgresql|both] [--rate 100] [--seconds 20]
        [--endpoints 10] [--relays 3] [--form single|batch|both] [--relay-events 2000]
        [--replicas 1] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from sqlalchemy import MetaData, text

from bench.ledger_process import _free_port, _urls
from shared import migrations
from shared.auth import append_key
from shared.clock import SystemClock
from shared.db import Database
from shared.errors import DependencyUnavailable
from shared.events import Event
from shared.http import ServiceHttp, make_client
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.settings import BaseServiceSettings
from shared.webhooks import InvalidSignature, verify

ADMIN_KEY = "bench-admin"
SERVICE_KEY = "bench-service"
EVENT_TYPE = "order.approved"  # what the endpoints subscribe to
RELAY_TYPE = "order.closed"  # what the relay phase posts: nobody subscribes, ingest only


# ---------------------------------------------------------------- the sink (its own process)

class _Sink(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for webhook POSTs: 204 at once, arrival recorded.

    `GET /_count` answers the number of webhooks recorded, `GET /_dump` all of them as JSON;
    POSTs under `/ref` are answered without being recorded (the bare-sink reference)."""

    records: list[tuple[float, str, str, str, str, str]] = []

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            total = end + 4 + int(headers.get("content-length") or 0)
            if len(self.buffer) < total:
                return
            body, self.buffer = self.buffer[end + 4:total], self.buffer[total:]
            method, path = lines[0].split(" ", 2)[:2]
            self._answer(method, path, headers, body)

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        if method == "POST":
            if not path.startswith("/ref"):
                self.records.append((time.time(), path, headers.get("webhook-id", ""),
                                     headers.get("webhook-timestamp", ""),
                                     headers.get("webhook-signature", ""), body.decode()))
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            return
        if path == "/_count":
            payload = str(len(self.records)).encode()
        elif path == "/_dump":
            payload = json.dumps(self.records).encode()
        else:
            payload = b"ok"
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(payload), payload))


async def _serve_sink(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------- processes

def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _wait_http(url: str, process: subprocess.Popen, what: str) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: ASYNC210 - start-up, before measuring
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"{what} did not answer within 30 s")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Notifier:
    """One or more `o2c serve notifier` processes (replicas) on one database."""

    bases: tuple[str, ...]
    pids: tuple[int, ...]
    db: str  # "sqlite" or "postgresql"
    url: str  # its database URL

    @property
    def base(self) -> str:
        return self.bases[0]

    @property
    def pid(self) -> int:
        return self.pids[0]


@asynccontextmanager
async def _database(kind: str, tmp: Path) -> AsyncIterator[str]:
    """A migrated notifier database: a SQLite file in `tmp`, or a throwaway PostgreSQL one."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / 'notifier.db'}"
        name = None
    else:
        name = f"o2c_bench_{os.getpid()}"
        admin, url, _ = _urls(name)
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
    try:
        db = Database(url)
        try:
            await migrations.upgrade(db.engine, "notifier")
        finally:
            await db.dispose()
        yield url
    finally:
        if name is not None:
            conn = await asyncpg.connect(_urls(name)[0])
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


@asynccontextmanager
async def _notifier(kind: str, tmp: Path, env: dict[str, str],
                    replicas: int = 1) -> AsyncIterator[Notifier]:
    async with _database(kind, tmp) as url:
        keys = tmp / "keys.toml"
        append_key(keys, ADMIN_KEY, "bench-admin", ["admin"])
        servers: list[tuple[str, subprocess.Popen]] = []
        try:
            for _ in range(replicas):
                port = _free_port()
                servers.append((f"http://127.0.0.1:{port}", subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", "services.cli", "serve", "notifier", "--port", str(port)],
                    env={**os.environ, "O2C_DATA_DIR": str(tmp), "O2C_API_KEYS_FILE": str(keys),
                         "O2C_SERVICE_KEY": SERVICE_KEY, "O2C_NOTIFIER_DATABASE_URL": url,
                         "O2C_WEBHOOK_ALLOW_PRIVATE": "true", "O2C_LOG_LEVEL": "ERROR",
                         # nothing to call: dunning never runs on these events
                         "O2C_LEDGER_URL": "http://127.0.0.1:9",
                         "O2C_CREDIT_URL": "http://127.0.0.1:9", **env})))
            for base, server in servers:
                await _wait_http(base + "/ready", server, "o2c serve notifier")
            yield Notifier(bases=tuple(b for b, _ in servers), pids=tuple(s.pid for _, s in servers),
                           db=kind, url=url)
        finally:
            for _, server in servers:
                _stop(server)


@asynccontextmanager
async def _sink() -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: ASYNC220 - start-up, before measuring
        [sys.executable, "-m", "bench.webhooks", "--sink", str(port)])
    try:
        base = f"http://127.0.0.1:{port}"
        await _wait_http(base + "/_count", process, "the sink")
        yield base, process.pid
    finally:
        _stop(process)


# ---------------------------------------------------------------- measurements

def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bare_sink_rate(sink: str, requests: int = 5000, concurrency: int = 20) -> float:
    """Webhook-sized POSTs per second straight to the sink, keep-alive, `concurrency` at once."""
    body = json.dumps({"id": str(uuid.uuid4()), "type": EVENT_TYPE, "data": {"x": "y" * 80}}).encode()
    todo = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for i in todo:
                async with session.post(f"{sink}/ref/{i % 10}", data=body, headers={
                        "content-type": "application/json", "webhook-id": "ref"}) as response:
                    assert response.status == 204
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def _register(notifier: Notifier, sink: str, count: int) -> dict[str, str]:
    """`count` endpoints on the sink; returns path -> secret."""
    secrets = {}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as session:
        for i in range(count):
            path = f"/hook/{i}"
            async with session.post(f"{notifier.base}/v1/webhook-endpoints", json={
                    "url": sink + path, "event_types": [EVENT_TYPE],
                    "description": f"bench {i}"}) as response:
                assert response.status == 201, await response.text()
                secrets[path] = (await response.json())["secret"]
    return secrets


async def _sink_count(session: aiohttp.ClientSession, sink: str) -> int:
    async with session.get(f"{sink}/_count") as response:
        return int(await response.text())


async def _delivery_stats(notifier: Notifier) -> dict[str, Any]:
    """Deliveries by status and attempts, read from notifier's database."""
    db = Database(notifier.url)
    try:
        async with db.session(read_only=True) as session:
            rows = (await session.execute(text(
                "SELECT status, count(*), sum(attempt_count) FROM deliveries GROUP BY status"))).all()
        return {status: (int(n), int(attempts or 0)) for status, n, attempts in rows}
    finally:
        await db.dispose()


async def fan_out(notifier: Notifier, sink: str, sink_pid: int, *, rate: float, seconds: float,
                  endpoints: int, drain_seconds: float, relays: int, form: str,
                  profile: tuple[str, str] | None) -> dict[str, Any]:
    """Events produced at `rate` for `seconds`, posted by `relays` relay-like posters (each
    one request at a time, as an outbox relay does; `form` "single": one event per POST,
    "batch": all it has queued, up to 100, in one `{"events": [...]}` POST); then wait for
    every (event, endpoint) at the sink."""
    secrets = await _register(notifier, sink, endpoints)
    client = make_client(BaseServiceSettings(http_timeout_seconds=30))
    https = [ServiceHttp(client, BaseServiceSettings(notifier_url=base, service_key=SERVICE_KEY,
                                                     http_retries=1, http_timeout_seconds=30))
             for base in notifier.bases]  # poster i posts to replica i mod n, as a balancer would
    total = int(rate * seconds)
    produced: dict[str, float] = {}  # event id -> when it was produced (its outbox commit)
    ingest_ms: list[float] = []
    refused: list[str] = []
    queues: list[asyncio.Queue[dict[str, Any] | None]] = [asyncio.Queue() for _ in range(relays)]
    backlog = 0

    async def post(http: ServiceHttp, events: list[dict[str, Any]]) -> None:
        """Post until accepted, as a relay does."""
        if form == "single":
            body: Any = events[0]
            key = events[0]["id"]
        else:
            body = {"events": events}
            key = "bench:" + events[0]["id"]
        for _ in range(50):
            sent = time.time()
            try:
                response = await http.call("notifier", "POST", "/v1/events", json=body,
                                           idempotency_key=key)
            except DependencyUnavailable as exc:
                refused.append(exc.detail)
                await asyncio.sleep(0.2)
                continue
            ingest_ms.append((time.time() - sent) * 1000)
            if response.status_code in (200, 201) or (
                    response.status_code == 207 and all(
                        r["status"] in (200, 201) for r in response.json()["results"])):
                return
            refused.append(f"{response.status_code} {response.text[:200]}")
            await asyncio.sleep(0.2)

    async def relay_loop(queue: asyncio.Queue[dict[str, Any] | None], http: ServiceHttp) -> None:
        nonlocal backlog
        while True:
            backlog = max(backlog, queue.qsize())
            first = await queue.get()
            if first is None:
                return
            events = [first]
            while form == "batch" and len(events) < 100 and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    await post(http, events)
                    return
                events.append(item)
            await post(http, events)

    spy = None
    if profile:
        spy = subprocess.Popen(  # noqa: ASYNC220 - started before the load, runs beside it
            [profile[0], "record", "--pid", str(notifier.pid), "--rate", "200", "--nonblocking", "--gil",
             "--duration", str(int(seconds)), "--format", "raw", "-o", profile[1]],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu = {pid: _cpu_seconds(pid) for pid in (*notifier.pids, sink_pid, os.getpid())}
    workers = [asyncio.create_task(relay_loop(q, https[i % len(https)]))
               for i, q in enumerate(queues)]
    started = time.time()
    loop_started = time.perf_counter()
    for i in range(total):
        delay = loop_started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        event = {"id": str(uuid.uuid4()), "type": EVENT_TYPE,
                 "occurred_at": datetime.now(UTC).isoformat(), "source": "orders",
                 "subject": f"SO-{i:06d}", "data": {"order_id": f"SO-{i:06d}", "n": i}}
        produced[event["id"]] = time.time()
        queues[i % relays].put_nowait(event)
    posting_ended = time.time()
    for queue in queues:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    all_posted = time.time()
    expected = total * endpoints
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline:  # polling another process
            if await _sink_count(session, sink) >= expected:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # a duplicate sent late still counts
        drained = time.time()
        used = {pid: _cpu_seconds(pid) - before for pid, before in cpu.items()}
        async with session.get(f"{sink}/_dump") as response:
            records = json.loads(await response.read())
    await client.aclose()
    if spy is not None:
        spy.wait(timeout=seconds + 30)

    first: dict[tuple[str, str], float] = {}
    duplicates = invalid = 0
    for at, path, msg_id, timestamp, signature, body in records:
        key = (msg_id, path)
        if key in first:
            duplicates += 1
            continue
        first[key] = at
        try:
            verify(secrets[path], {"webhook-id": msg_id, "webhook-timestamp": timestamp,
                                   "webhook-signature": signature}, body.encode())
        except (InvalidSignature, KeyError):
            invalid += 1
    latencies = [at - produced[msg_id] for (msg_id, _), at in first.items() if msg_id in produced]
    arrivals = sorted(first.values())
    during = sum(1 for at in arrivals if at <= posting_ended)
    last = arrivals[-1] if arrivals else drained
    delivered = len(first)
    stats = await _delivery_stats(notifier)
    missing = expected - sum(1 for (m, _) in first if m in produced)
    late = min(missing, stats.get("pending", (0, 0))[0])  # not lost: still on their way
    return {
        "events": total, "expected": expected, "delivered": delivered, "late": late,
        "lost": missing - late, "duplicated": duplicates,
        "invalid_signatures": invalid, "refused": refused,
        "rate": delivered / max(1e-9, last - started),
        "rate_while_posting": during / max(1e-9, posting_ended - started),
        "posting_seconds": posting_ended - started, "drain_seconds": last - posting_ended,
        "p50": _percentile(latencies, 0.50), "p99": _percentile(latencies, 0.99),
        "max": max(latencies, default=float("nan")),
        "all_posted_after": all_posted - posting_ended, "relay_backlog": backlog,
        "ingest_p50_ms": _percentile(ingest_ms, 0.5), "ingest_p99_ms": _percentile(ingest_ms, 0.99),
        "cpu_us_per_delivery": sum(used[p] for p in notifier.pids) / max(1, delivered) * 1e6,
        "notifier_cores": sum(used[p] for p in notifier.pids) / max(1e-9, drained - started),
        "sink_cores": used[sink_pid] / max(1e-9, drained - started),
        "bench_cores": used[os.getpid()] / max(1e-9, drained - started),
        "stats": stats,
    }


async def relay(notifier: Notifier, tmp: Path, count: int, batch_size: int) -> dict[str, Any]:
    """`count` outbox events drained by a real OutboxRelay into notifier: events/s."""
    metadata = MetaData()
    table = outbox_table(metadata)
    db = Database(f"sqlite+aiosqlite:///{tmp / 'producer.db'}")
    settings = BaseServiceSettings(notifier_url=notifier.base, service_key=SERVICE_KEY,
                                   http_retries=1)
    http = ServiceHttp(make_client(settings), settings)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        outbox = Outbox(table)
        clock = SystemClock()
        worker = OutboxRelay(db=db, outbox=outbox, http=http, clock=clock, batch_size=batch_size,
                             service="bench")
        for start in range(0, count, 500):
            async with db.session() as session, session.begin():
                await outbox.enqueue_many(session, [
                    Event(id=uuid.uuid4(), type=RELAY_TYPE, occurred_at=clock.now(),
                          source="orders", subject=f"SO-{i:06d}", data={"n": i})
                    for i in range(start, min(count, start + 500))])
        cpu = _cpu_seconds(notifier.pid)
        started = time.perf_counter()
        sent = 0
        while sent < count and time.perf_counter() - started < 120:
            moved = await worker.dispatch_once()
            sent += moved
            if moved == 0:
                await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        async with db.session() as session:
            pending = await outbox.pending(session)
        return {"sent": sent, "pending": pending, "rate": sent / elapsed,
                "cpu_us_per_event": (_cpu_seconds(notifier.pid) - cpu) / max(1, sent) * 1e6}
    finally:
        await http.client.aclose()
        await db.dispose()


def _summarize_profile(path: str, top: int = 18) -> None:
    """py-spy's raw (collapsed) stacks: the project's and the libraries' heaviest frames."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        print("  (py-spy wrote no profile)")
        return
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        print("  (empty profile)")
        return
    print(f"  py-spy: {total} samples of the thread holding the GIL (where Python's CPU goes; "
          "SQLAlchemy's greenlets show without their caller)")
    print("  heaviest own time (leaf frames):")
    for frame, n in own.most_common(top):
        print(f"    {n / total:6.1%}  {frame[:150]}")
    print("  heaviest o2c frames (inclusive):")
    ours = [(f, n) for f, n in inclusive.items() if "services/" in f or "shared/" in f]
    for frame, n in sorted(ours, key=lambda x: -x[1])[:top]:
        print(f"    {n / total:6.1%}  {frame[:150]}")


def _py_spy(explicit: str | None) -> str | None:
    for candidate in (explicit, str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _report(kind: str, form: str, result: dict[str, Any], rate: float, endpoints: int,
            replicas: int) -> None:
    r = result
    print(f"\n== {kind}, {form} posts, {replicas} notifier process{'es' if replicas > 1 else ''}: "
          f"{r['events']} events at {rate:g}/s to {endpoints} endpoints "
          f"({r['expected']} deliveries asked, {rate * endpoints:g}/s)")
    print(f"  deliveries/s, first post to last     : {r['rate']:8.0f} /s   "
          f"(while posting: {r['rate_while_posting']:.0f}/s; drain after posting "
          f"{r['drain_seconds']:.1f} s)")
    print(f"  event -> webhook latency             : p50 {r['p50']:.3f} s   p99 {r['p99']:.3f} s"
          f"   max {r['max']:.3f} s")
    print(f"  posters                              : all posted {r['all_posted_after']:.1f} s "
          f"after the last event was produced; largest queue {r['relay_backlog']}")
    print(f"  ingest POST /v1/events               : p50 {r['ingest_p50_ms']:.1f} ms   "
          f"p99 {r['ingest_p99_ms']:.1f} ms   failed tries {len(r['refused'])}"
          + (f" (first: {r['refused'][0]})" if r['refused'] else ""))
    print(f"  delivered {r['delivered']} of {r['expected']}: lost {r['lost']}, duplicated "
          f"{r['duplicated']}, invalid signatures {r['invalid_signatures']}"
          + (f"; {r['late']} still pending when the drain ended (the latencies above are of "
             "those that arrived)" if r["late"] else ""))
    stats = ", ".join(f"{s} {n} ({a} attempts)" for s, (n, a) in sorted(r["stats"].items()))
    print(f"  notifier's deliveries                : {stats}")
    print(f"  notifier CPU (all processes)         : {r['cpu_us_per_delivery']:8.0f} µs per delivery"
          f" (ingest included), {r['notifier_cores']:.2f} cores; sink {r['sink_cores']:.2f}, "
          f"bench client {r['bench_cores']:.2f}")


async def main(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    forms = ["single", "batch"] if args.form == "both" else [args.form]
    spy = _py_spy(args.py_spy) if args.profile else None
    if args.profile and spy is None:
        print("py-spy not found (pip install py-spy, or --py-spy PATH): profiling skipped")
    env = dict(item.split("=", 1) for item in args.env)
    for kind in kinds:
        for form in forms:
            with tempfile.TemporaryDirectory() as tmp:
                async with _sink() as (sink, sink_pid), \
                        _notifier(kind, Path(tmp), env, args.replicas) as notifier:
                    bare = await bare_sink_rate(sink)
                    profile = (spy, str(Path(tmp) / "profile.txt")) if spy else None
                    result = await fan_out(notifier, sink, sink_pid, rate=args.rate,
                                           seconds=args.seconds, endpoints=args.endpoints,
                                           drain_seconds=args.drain_seconds, relays=args.relays,
                                           form=form, profile=profile)
                    relayed = (await relay(notifier, Path(tmp), args.relay_events, args.relay_batch)
                               if args.relay_events and form == forms[-1] else None)
                    _report(kind, form, result, args.rate, args.endpoints, args.replicas)
                    print(f"  bare sink (aiohttp client -> sink)   : {bare:8.0f} requests/s "
                          "(the same sink, no notifier: the round trip's ceiling here)")
                    if relayed is not None:
                        print(f"  outbox relay -> POST /v1/events      : {relayed['rate']:8.0f} "
                              f"events/s   ({relayed['sent']} sent, {relayed['pending']} left; "
                              f"notifier {relayed['cpu_us_per_event']:.0f} µs CPU per event)")
                    if profile:
                        _summarize_profile(profile[1])
    print("\n(2 cores shared by notifier, the database, the sink and this client, and whatever "
          "else runs: figures are noisy; compare those of one run)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long events are posted")
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--drain-seconds", type=float, default=300.0,
                        help="how long to wait for the last deliveries after posting")
    parser.add_argument("--replicas", type=int, default=1,
                        help="notifier processes on the one database (scale-out; PostgreSQL)")
    parser.add_argument("--relays", type=int, default=3,
                        help="posters, each one request at a time (the services' relays)")
    parser.add_argument("--form", choices=("single", "batch", "both"), default="single",
                        help="one event per POST, or a poster's queue in one batch POST")
    parser.add_argument("--relay-events", type=int, default=2000,
                        help="events drained through an OutboxRelay (0: skip)")
    parser.add_argument("--relay-batch", type=int, default=100, help="the relay's batch size")
    parser.add_argument("--profile", action="store_true", help="py-spy the notifier under load")
    parser.add_argument("--py-spy", help="path of the py-spy binary")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the notifier process (e.g. O2C_DB_POOL_SIZE=20)")
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.sink:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asyncio.run(_serve_sink(parsed.sink))
    else:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped: still clean up
        logging.getLogger("o2c.http").setLevel(logging.ERROR)  # retries are counted instead
        asyncio.run(main(parsed))
