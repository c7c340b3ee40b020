"""Scale-out of the write paths on PostgreSQL (issue 11): one replica against two, in one run.

It starts the four services as bench/write_paths.py does (bench/cluster.py: `python -m
services.cli serve SERVICE`, workers on, throwaway databases `o2c_bench_<pid>_rep<N>_<service>`
on `O2C_BENCH_POSTGRES_URL`, created and dropped), with two processes (replicas) of each service
in `--scale` (orders and ledger) on that service's one database, each on a port of its own, and
one process of credit and notifier. Every process gets the same pool, `O2C_DB_POOL_SIZE` =
`--pool-size` (10: two replicas of two services plus credit and notifier stay well within
max_connections = 100, and the same pool size serves one replica and two).

The bench's clients spread their requests round-robin over the replicas, as a load balancer
would: over replica 0 alone for a one-replica phase, over both for a two-replica phase. The
phases alternate in one cluster — for each clients count and path, `--rounds` rounds of
(1, 2), the order reversed every other round (1 2 2 1) — because the host's CPU speed drifts
(the same piece of Python takes 12 ms of CPU one minute and 22 ms the next: `probe`), so two
clusters measured a minute apart differ by more than a replica does. In a one-replica phase the
second replica idles (its workers poll; its CPU is shown). `--separate` instead starts a cluster
of its own for each replica count, one after the other. The services themselves call replica 0
only (each has one URL per service, `O2C_<SERVICE>_URL`): orders' calls to credit, credit's to
ledger, notifier's deliveries to the inboxes, the subscriptions every replica (re)registers.

Set-up with write_paths' helpers: `--customers` customers with a large credit limit and
enough open invoices for every payment of the run. Paths, as in write_paths: POST /v1/orders
(create; orders asks credit for the customer), POST /v1/orders/{id}/submit (of the drafts the
create phase of the same replica count and round made: credit reserves), POST /v1/payments
(ledger; oldest open invoice first); each phase a warm-up, then `--requests` requests from
each of `--clients` (16, 32). Reported: req/s, p50, p99, 5xx and transport errors (0
expected); the CPU of every process (/proc/<pid>/stat) per request, from the first request
until the outbox and delivery queues are empty again (read from the databases, so the polling
costs the services nothing): each replica, the other services, the PostgreSQL server (its
processes on this run's databases; its own processes; other databases' backends, kept apart),
the bench client; the machine's busy cores while the requests ran (/proc/stat) against those
it has, what this run's processes account for of them and the busiest single process;
`ceiling` = cores / CPU seconds per request of this run's processes, the rate at which the
machine's cores are the limit; HTTP requests between the services per request.

    .venv/bin/python -m bench.replicas [--replicas 1,2] [--rounds 2] [--separate]
        [--clients 16,32] [--requests 300] [--warmup 40] [--customers 64] [--pool-size 10]
        [--scale orders,ledger] [--paths orders,submit,payments] [--phase-timeout 30]

Bounded: fixed request counts, no request started after a phase's deadline (`--phase-timeout`
for the warm-up, again for the measured part; the rate is then of what was sent), a bounded
wait for the queues, every process started here stopped by its pid (on SIGTERM too), the
databases dropped on the way out. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.cluster import REPO, SERVICES, Cluster, cpu_seconds, pg_connections, tree_commit
from bench.write_paths import (
    DRAIN_LIMIT,
    INVOICE_MINOR,
    LABELS,
    PAYMENT_MINOR,
    REQUEST_TIMEOUT,
    Api,
    Load,
    Work,
    client_connector,
    drive,
    request_for,
    setup_o2c,
    wait_subscribed,
)

PATHS = ("orders", "submit", "payments")
TICK = os.sysconf("SC_CLK_TCK")
PG_PARTS = ("pg", "pg srv", "pg others")
NOT_OURS = frozenset({"pg others"})  # other databases' backends: another user's load


class Balancer(dict[str, list[str]]):
    """Service -> its replicas' URLs; each lookup answers the next replica (round-robin), so
    `Api.call` spreads its requests as a load balancer in front of the replicas would; with
    `active = n`, over the first n of them only."""

    def __init__(self, urls: dict[str, list[str]]) -> None:
        super().__init__(urls)
        self.turn: Counter[str] = Counter()
        self.active: int | None = None

    def __getitem__(self, service: str) -> str:  # type: ignore[override]
        urls = super().__getitem__(service)[:self.active]
        self.turn[service] += 1
        return urls[(self.turn[service] - 1) % len(urls)]


def probe() -> float:
    """CPU milliseconds of a fixed piece of pure Python: how fast the machine's CPU is just now
    (on a shared host the same work can take twice as long from one minute to the next)."""
    started = time.process_time()
    x = 0
    for i in range(300_000):
        x += i * i % 7
    return (time.process_time() - started) * 1000


# --- CPU from /proc ------------------------------------------------------------------------


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all the machine's CPUs since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait, total


@dataclass
class PgSnapshot:
    """The local PostgreSQL server's processes: pid -> (part, CPU ticks so far), and what its
    postmaster reaped of exited children (cutime + cstime)."""

    procs: dict[int, tuple[str, int]]
    reaped: int


def postgres_snapshot(databases: list[str]) -> PgSnapshot | None:
    """Each `postgres` process as "pg" (working on one of `databases`: backends, autovacuum),
    "pg srv" (the server's own: postmaster, WAL writer, checkpointer, background writer, ...)
    or "pg others" (backends of other databases). None when no postgres process is visible
    (a server on another machine)."""
    procs: dict[int, tuple[str, int]] = {}
    parents: dict[int, int] = {}
    reaped: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            raw = (d / "stat").read_text()
            if raw[raw.index("(") + 1:raw.rindex(")")] != "postgres":
                continue
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
        fields = raw.rsplit(")", 1)[1].split()
        pid = int(d.name)
        if any(f" {db} " in cmdline + " " for db in databases):
            part = "pg"
        elif "(" in cmdline or "[local]" in cmdline:  # a client backend: "user db host(port) ..."
            part = "pg others"
        else:
            part = "pg srv"
        procs[pid] = (part, int(fields[11]) + int(fields[12]))
        parents[pid] = int(fields[1])
        reaped[pid] = int(fields[13]) + int(fields[14])
    if not procs:
        return None
    return PgSnapshot(procs, sum(reaped[pid] for pid, ppid in parents.items() if ppid not in procs))


def postgres_spent(a: PgSnapshot, b: PgSnapshot) -> dict[str, float]:
    """CPU seconds of each part between two snapshots. A process that exited in between (an
    autovacuum worker, another user's short connection) is known only through the postmaster's
    reaped total: what it used after `a` goes to "pg others" (our pools keep their connections,
    so it is not this run's backends)."""
    out = dict.fromkeys(PG_PARTS, 0)
    for pid, (part, ticks) in b.procs.items():
        before = a.procs.get(pid)
        out[part] += ticks - (before[1] if before and before[0] == part else 0)
    gone = sum(ticks for pid, (_, ticks) in a.procs.items() if pid not in b.procs)
    out["pg others"] += max(0, b.reaped - a.reaped - gone)
    return {k: v / TICK for k, v in out.items()}


@dataclass
class Sample:
    at: float
    procs: dict[str, float]  # process name -> CPU seconds so far
    pg: PgSnapshot | None
    client: float
    busy: int
    total: int


def sample(cluster: Cluster) -> Sample:
    busy, total = machine_jiffies()
    return Sample(time.perf_counter(), cluster.cpu(), postgres_snapshot(cluster.db_names),
                  cpu_seconds(os.getpid()), busy, total)


def spent(a: Sample, b: Sample) -> dict[str, float]:
    """CPU seconds between two samples: each service process, PostgreSQL (this run's
    databases, the server's own processes, other databases' backends), the bench client."""
    out = {name: b.procs[name] - a.procs[name] for name in b.procs}
    if a.pg is not None and b.pg is not None:
        out.update(postgres_spent(a.pg, b.pg))
    out["client"] = b.client - a.client
    return out


# --- One phase -----------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase: `requests` requests of a path from `clients` clients spread over
    `replicas` replicas, in round `round`; CPU seconds as totals."""

    path: str
    clients: int
    replicas: int
    round: int
    load: Load
    statuses: Counter[str]
    failures: list[str]
    cpu: dict[str, float]  # CPU seconds of each process, first request until the queues were empty
    during: dict[str, float]  # CPU seconds of each process while the requests ran
    busy: int  # the machine's busy ticks while the requests ran
    ticks: int  # of its total ticks
    tail: float  # seconds from the last answer until the queues were empty
    drained: bool
    internal_5xx: int
    between: int  # HTTP requests the services sent one another (their /metrics less the bench's)
    event_posts: int  # of which POST /v1/events to notifier (the outbox relays' batches)
    unapplied: int
    probe: float  # CPU ms of `probe()` just before the phase


@dataclass
class Result:
    """The phases of one (path, clients, replicas), over the rounds."""

    phases: list[Phase]

    @property
    def done(self) -> int:
        return sum(len(p.load.latencies) for p in self.phases)

    @property
    def rate(self) -> float:
        seconds = sum(p.load.seconds for p in self.phases)
        return self.done / seconds if seconds else 0.0

    def pct(self, q: float) -> float:
        merged = Load(0, 0.0, [t for p in self.phases for t in p.load.latencies], 0.0)
        return merged.pct(q)

    def statuses(self) -> Counter[str]:
        return sum((p.statuses for p in self.phases), Counter())

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses().items() if s.isdigit() and int(s) >= 500)

    @property
    def transport_errors(self) -> int:
        return sum(n for s, n in self.statuses().items() if s.startswith("error:"))

    @property
    def cpu(self) -> dict[str, float]:
        """CPU seconds per request of each process."""
        total: Counter[str] = Counter()
        for p in self.phases:
            total.update(p.cpu)
        return {k: v / max(1, self.done) for k, v in total.items()}

    @property
    def total(self) -> float:
        """CPU seconds per request of this run's processes: services, PostgreSQL, client."""
        return sum(v for k, v in self.cpu.items() if k not in NOT_OURS)

    @property
    def ceiling(self) -> float:
        return (os.cpu_count() or 1) / self.total if self.total else float("nan")

    @property
    def window(self) -> float:
        return max(1e-9, sum(p.load.seconds for p in self.phases))

    @property
    def machine(self) -> float:
        """The machine's busy cores while the requests ran."""
        ticks = sum(p.ticks for p in self.phases)
        return sum(p.busy for p in self.phases) / max(1, ticks) * (os.cpu_count() or 1)

    def cores(self) -> Counter[str]:
        """Cores each process used while the requests ran."""
        total: Counter[str] = Counter()
        for p in self.phases:
            total.update(p.during)
        return Counter({k: v / self.window for k, v in total.items()})

    @property
    def accounted(self) -> float:
        return sum(v for k, v in self.cores().items() if k not in NOT_OURS)

    def busiest(self, services: set[str]) -> tuple[str, float]:
        return max(((k, v) for k, v in self.cores().items() if k in services),
                   key=lambda kv: kv[1], default=("-", 0.0))

    @property
    def probe(self) -> float:
        return statistics.median(p.probe for p in self.phases)

    def note(self) -> str:
        notes = []
        skipped = sum(p.load.skipped for p in self.phases)
        if skipped:
            notes.append(f"{skipped} not sent (phase deadline)")
        if not all(p.drained for p in self.phases):
            notes.append(f"queues not drained {DRAIN_LIMIT:.0f} s after the last answer")
        unapplied = sum(p.unapplied for p in self.phases)
        if unapplied:
            notes.append(f"{unapplied} payments found no open invoice")
        statuses = self.statuses()
        if any(not (s.isdigit() and 200 <= int(s) < 300) for s in statuses):
            failures = [f for p in self.phases for f in p.failures]
            notes.append(f"statuses {dict(statuses)}; {'; '.join(failures[:3])}")
        return "; ".join(notes)


async def measure(path: str, clients: int, replicas: int, round_no: int, api: Api, work: Work,
                  cluster: Cluster, http: aiohttp.ClientSession, args: argparse.Namespace) -> Phase:
    n = args.requests
    one = request_for(path, api, work, lambda i: None)
    warm, todo = list(range(n, n + args.warmup)), list(range(n))
    if path == "submit":  # only the drafts the create phase made (a failed create made none)
        warm = [i for i in warm if i in work.orders]
        todo = [i for i in todo if i in work.orders]
    missing = n - len(todo)
    await drive(len(warm), clients, lambda j: one(warm[j]), time.monotonic() + args.phase_timeout)
    await cluster.drain(http, within=DRAIN_LIMIT)
    api.reset()
    work.unapplied = 0
    m0, _ = await cluster.metrics(http)
    speed = probe()
    s0 = sample(cluster)
    load = await drive(len(todo), clients, lambda j: one(todo[j]),
                       time.monotonic() + args.phase_timeout)
    s1 = sample(cluster)
    tail_started = time.perf_counter()
    drained = await cluster.drain(http, within=DRAIN_LIMIT)
    tail = time.perf_counter() - tail_started
    s2 = sample(cluster)
    m1, _ = await cluster.metrics(http)
    diff = m1 - m0
    inbound = sum(v for (_s, _m, route, _st), v in diff.items() if route != "/metrics")
    statuses = Counter(api.statuses)
    if missing:
        statuses["no draft order, not sent"] += missing
    return Phase(
        path=path, clients=clients, replicas=replicas, round=round_no, load=load,
        statuses=statuses, failures=list(api.failures), cpu=spent(s0, s2),
        during=spent(s0, s1), busy=s1.busy - s0.busy, ticks=s1.total - s0.total, tail=tail,
        drained=drained, unapplied=work.unapplied, probe=speed,
        between=inbound - sum(api.sent.values()) - api.polls,
        event_posts=sum(v for (svc, method, route, _st), v in diff.items()
                        if svc == "notifier" and method == "POST" and route == "/v1/events"),
        internal_5xx=sum(v for (_s, _m, route, status), v in diff.items()
                         if status.startswith("5") and route != "/metrics"))


async def run_cluster(counts: list[int], args: argparse.Namespace, started: float,
                      ) -> tuple[list[Phase], list[str], dict[str, list[str]]]:
    """One cluster with max(counts) processes of each `--scale` service; for each clients,
    path and round, a phase for each replica count (the clients spread over the first n
    replicas), in the order of `counts` in even rounds and reversed in odd ones; then stop
    and drop everything."""
    most = max(counts)
    cluster = Cluster("postgres", f"rep{most}", db_drain=True,
                      replicas={s: most for s in args.scale},
                      extra_env={"O2C_DB_POOL_SIZE": str(args.pool_size)})
    phases: list[Phase] = []
    notes: list[str] = []
    layout: dict[str, list[str]] = {}
    connector = client_connector(max(args.clients) * 2)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                                     connector=connector) as http:
        try:
            used, limit = await pg_connections()
            notes.append(f"cluster with {most} replica(s): {used} of max_connections {limit} "
                         "PostgreSQL connections in use before it started")
            await cluster.start()
            layout = {s: cluster.replica_names(s) for s in SERVICES}
            balancer = Balancer({s: cluster.urls(s) for s in SERVICES})
            api = Api(http, balancer, cluster.keys)
            await wait_subscribed(api)
            # payment i of a phase pays customer i mod customers: at most this many per phase
            each = math.ceil(args.requests / args.customers) + math.ceil(args.warmup / args.customers)
            phases_paying = len(args.clients) * args.rounds * len(counts)
            invoices_each = math.ceil(each * phases_paying * PAYMENT_MINOR / INVOICE_MINOR) + 1
            base = Work(run=f"r{os.getpid()}n{most}")
            await setup_o2c(api, base, args.customers, invoices_each, max(args.clients),
                            time.monotonic() + 4 * args.phase_timeout)
            await cluster.drain(http, within=DRAIN_LIMIT)
            print(f"  cluster with {most} replica(s) of {', '.join(args.scale)}: started, "
                  f"{args.customers} customers, {args.customers * invoices_each} open invoices "
                  f"({time.monotonic() - started:.0f} s)", flush=True)
            works: dict[tuple[int, int, int], Work] = {}
            for clients in args.clients:
                for path in args.paths:
                    for round_no in range(args.rounds):
                        for n in (counts if round_no % 2 == 0 else counts[::-1]):
                            work = works.setdefault((clients, round_no, n), Work(
                                run=f"{base.run}c{clients}r{round_no}n{n}",
                                customers=base.customers))
                            balancer.active = n
                            phase = await measure(path, clients, n, round_no, api, work, cluster,
                                                  http, args)
                            phases.append(phase)
                            print(f"  {LABELS[path]:<28} {clients:3d} clients, {n} replica(s), "
                                  f"round {round_no + 1}: {phase.load.rate:6.1f}/s, machine "
                                  f"{phase.busy / max(1, phase.ticks) * (os.cpu_count() or 1):.2f}"
                                  f" cores, probe {phase.probe:4.1f} ms "
                                  f"({time.monotonic() - started:.0f} s)", flush=True)
            balancer.active = None
            used, limit = await pg_connections()
            notes.append(f"cluster with {most} replica(s): {used} of max_connections {limit} "
                         "PostgreSQL connections in use at its end (every pool opened)")
            notes += [f"cluster with {most} replica(s), log: {line}"
                      for line in cluster.log_problems()]
        finally:
            await cluster.close()
            await cluster.drop()
            shutil.rmtree(cluster.directory, ignore_errors=True)
    return phases, notes, layout


# --- Report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f}" if seconds == seconds else "     -"


def print_report(phases: list[Phase], notes: list[str], layouts: list[dict[str, list[str]]],
                 args: argparse.Namespace, seconds: float) -> None:
    cores = os.cpu_count() or 1
    counts = sorted({p.replicas for p in phases})
    results: dict[tuple[str, int, int], Result] = {}
    for p in phases:
        results.setdefault((p.path, p.clients, p.replicas), Result([])).phases.append(p)
    how = ("one cluster per replica count, one after the other" if args.separate else
           f"one cluster with {max(counts)} replicas, the clients spread over the first n "
           f"of them, the counts alternating phase by phase ({'/'.join(map(str, counts))}, "
           f"then reversed)")
    print(f"\n### PostgreSQL, scale-out: {args.requests} requests per phase after {args.warmup} "
          f"warm-up, {args.rounds} round(s), spread over {args.customers} customers; "
          f"O2C_DB_POOL_SIZE={args.pool_size} in every process; replicated: "
          f"{', '.join(args.scale)}; {how}; {cores} CPUs; run took {seconds:.0f} s")
    head = f"{'path':<28}| {'clients':>7} |"
    for n in counts:
        head += f" {n} repl. {'req/s':>6} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} {'err':>3} |"
    if len(counts) >= 2:
        head += f" gain {counts[-1]}/{counts[0]} | by round"
    print(head)
    for path in args.paths:
        for clients in args.clients:
            row = f"{LABELS[path]:<28}| {clients:7d} |"
            for n in counts:
                r = results.get((path, clients, n))
                if r is None:
                    row += f" {'-':>37} |"
                    continue
                row += (f" {'':>7}{r.rate:6.1f} {_ms(r.pct(0.5)):>7} "
                        f"{_ms(r.pct(0.99)):>7} {r.server_errors:4d} {r.transport_errors:3d} |")
            first = results.get((path, clients, counts[0]))
            last = results.get((path, clients, counts[-1]))
            if len(counts) >= 2 and first and last and first.rate:
                rounds = []
                for a, b in zip(first.phases, last.phases, strict=False):
                    if a.load.rate:
                        rounds.append(f"{a.load.rate:.0f}->{b.load.rate:.0f} "
                                      f"{b.load.rate / a.load.rate:.2f}x")
                row += f" {last.rate / first.rate:7.2f}x | {', '.join(rounds)}"
            print(row)
    print("  (req/s: all rounds' requests over all rounds' seconds; p50/p99 of all their answers; "
          "5xx: answers >= 500 to the bench; err: transport errors, no answer;\n   by round: "
          f"req/s of {counts[0]} -> {counts[-1]} replica(s) and their gain in each round)")

    names: list[str] = []
    short: dict[str, str] = {}
    for s in SERVICES:
        mine = max((layout.get(s, []) for layout in layouts), key=len)
        names += mine
        short.update({name: f"{s}#{k}" if len(mine) > 1 else s for k, name in enumerate(mine)})
    print(f"\nCPU ms per request, from the first request until the outbox and delivery queues "
          f"were empty again (each replica, busy or idle; pg = PostgreSQL's processes on this\n"
          f"run's databases: backends, autovacuum; pg srv = the server's own: WAL writer, "
          f"checkpointer, ...; pg oth = backends of other databases and processes that exited\n"
          f"meanwhile, not this run's, not in total). While the requests ran: machine = busy "
          f"cores of {cores} (/proc/stat), ours = of which this run's processes,\nbusiest = the "
          f"service process that used the most cores (one process can use one core). ceiling = "
          f"{cores} cores / total: the rate at which\nthis run's CPU per request would fill the "
          f"machine. probe = CPU ms of a fixed piece of Python before each phase (median): the "
          f"host's speed.")
    head = f"{'path':<28}| {'cl':>3} {'rep':>3} |" + "".join(f" {short[n]:>8}" for n in names)
    head += (f" {'pg':>6} {'pg srv':>6} {'client':>6} | {'total':>6} | {'pg oth':>6} |"
             f" {'machine':>7} {'ours':>5} {'busiest':>14} | {'ceiling':>7} {'req/s':>6} |"
             f" {'tail s':>6} {'http':>5} {'events':>6} {'int5xx':>6} {'probe':>5}")
    print(head)
    nan = float("nan")
    for path in args.paths:
        for clients in args.clients:
            for n in counts:
                r = results.get((path, clients, n))
                if r is None:
                    continue
                cpu = r.cpu
                who, used = r.busiest(set(names))
                row = f"{LABELS[path]:<28}| {clients:3d} {n:3d} |"
                row += "".join(f"   {_ms(cpu[name])}" if name in cpu else f" {'':>8}"
                               for name in names)
                row += (f" {_ms(cpu.get('pg', nan))} {_ms(cpu.get('pg srv', nan))}"
                        f" {_ms(cpu['client'])} | {_ms(r.total)} | {_ms(cpu.get('pg others', nan))} |"
                        f" {r.machine:4.2f}/{cores} {r.accounted:5.2f}"
                        f" {short.get(who, who):>9} {used:4.2f} |"
                        f" {r.ceiling:7.1f} {r.rate:6.1f} |"
                        f" {statistics.mean(p.tail for p in r.phases):6.1f}"
                        f" {sum(p.between for p in r.phases) / max(1, r.done):5.2f}"
                        f" {sum(p.event_posts for p in r.phases) / max(1, r.done):6.2f}"
                        f" {sum(p.internal_5xx for p in r.phases):6d} {r.probe:5.1f}")
                print(row)
    print("  (http: HTTP requests between the services per request, events: of which POST "
          "/v1/events to notifier, the outbox relays' batches; int5xx: 5xx the services\n"
          "   answered one another; all from their /metrics. The services call replica 0 of "
          "orders and ledger.)")
    for (path, clients, n), r in results.items():
        if r.note():
            print(f"  ! {n} replica(s) {LABELS[path]} {clients} clients: {r.note()}")
    for line in notes:
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2",
                        help="replica counts compared (their order: the first round's)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="phases per (path, clients, replica count); the order of the counts "
                             "is reversed every other round")
    parser.add_argument("--separate", action="store_true",
                        help="a cluster of its own for each replica count, one after the other, "
                             "instead of one cluster with the most replicas")
    parser.add_argument("--clients", default="16,32", help="concurrent clients, comma-separated")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per phase")
    parser.add_argument("--warmup", type=int, default=40, help="warm-up requests per phase")
    parser.add_argument("--customers", type=int, default=64,
                        help="customers the requests spread over (a submit locks its customer's "
                             "credit profile, a payment its invoices: more clients than customers "
                             "would wait on one another's locks)")
    parser.add_argument("--pool-size", type=int, default=10,
                        help="O2C_DB_POOL_SIZE of every process, for every replica count")
    parser.add_argument("--scale", default="orders,ledger", help="the services replicated")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--phase-timeout", type=float, default=30.0,
                        help="seconds after which a warm-up or a measured phase starts no more "
                             "requests")
    args = parser.parse_args()
    args.replicas = list(dict.fromkeys(int(x) for x in args.replicas.split(",") if x.strip()))
    args.clients = [int(x) for x in args.clients.split(",") if x.strip()]
    args.scale = [s.strip() for s in args.scale.split(",") if s.strip()]
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if set(args.paths) - set(PATHS):
        parser.error(f"unknown paths {sorted(set(args.paths) - set(PATHS))}; choose from "
                     f"{', '.join(PATHS)}")
    if set(args.scale) - set(SERVICES):
        parser.error(f"unknown services {sorted(set(args.scale) - set(SERVICES))}")
    if "submit" in args.paths and "orders" not in args.paths:
        parser.error("submit needs the orders path (it submits the orders that path created)")
    if not args.replicas or min(args.replicas) < 1 or not args.clients or args.rounds < 1:
        parser.error("--replicas, --clients and --rounds need positive numbers")
    # SIGTERM as Ctrl-C: the clusters' `finally` stops their processes and drops the databases.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    commit = tree_commit(REPO)
    load = os.getloadavg()
    print(f"bench.replicas: o2c at {commit}; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          + ("  (busy machine: figures will be noisy)" if load[0] > 1.5 else ""), flush=True)
    started = time.monotonic()
    phases: list[Phase] = []
    notes: list[str] = []
    layouts: list[dict[str, list[str]]] = []
    for counts in ([[n] for n in args.replicas] if args.separate else [args.replicas]):
        got, more, layout = asyncio.run(run_cluster(counts, args, started))
        phases += got
        notes += more
        layouts.append(layout)
    print_report(phases, notes, layouts, args, time.monotonic() - started)


if __name__ == "__main__":
    main()
