"""`o2c`: run, serve and migrate the services, and manage API keys (DESIGN.md §2)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shared.settings import DEFAULT_PORT_BASE, PORT_OFFSETS, SERVICES, BaseServiceSettings

DEV_PRINCIPALS: list[tuple[str, list[str], str | None]] = [
    ("admin", ["admin"], None),
    ("sales", ["sales"], None),
    ("sales-alice", ["sales"], "S-ALICE"),
    ("production", ["production"], None),
    ("technical", ["technical"], None),
    ("quality", ["quality"], None),
    ("finance", ["finance"], None),
    ("credit-manager", ["credit_manager"], None),
    ("auditor", ["auditor"], None),
]


def _settings(service: str) -> BaseServiceSettings:
    module = importlib.import_module(f"services.{service}.config")
    cls = next(v for k, v in vars(module).items()
               if k.endswith("Settings") and k != "BaseServiceSettings")
    return cls()


def _create_app(service: str, settings: BaseServiceSettings) -> Any:
    return importlib.import_module(f"services.{service}.app").create_app(settings)


def _services(arg: str) -> list[str]:
    if arg == "all":
        return list(SERVICES)
    if arg not in SERVICES:
        raise SystemExit(f"unknown service {arg!r}; choose one of {', '.join(SERVICES)} or all")
    return [arg]


async def _migrate(services: list[str]) -> None:
    from shared import migrations
    from shared.db import Database

    for service in services:
        settings = _settings(service)
        db = Database(settings.database_url())
        try:
            await migrations.upgrade(db.engine, service)
        finally:
            await db.dispose()
        print(f"{service}: migrated to {migrations.head_revision(service)}", file=sys.stderr)


def cmd_migrate(args: argparse.Namespace) -> int:
    asyncio.run(_migrate(_services(args.service)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from shared.observability import configure_logging, set_service

    (service,) = _services(args.service)
    settings = _settings(service)
    configure_logging(settings.log_level, settings.log_json)
    set_service(service)
    ready_fd: int | None = args.ready_fd
    options: dict[str, Any] = {"host": args.host, "port": args.port, "log_config": None,
                               "access_log": False, "timeout_graceful_shutdown": 10}
    if ready_fd is None:  # as uvicorn runs it (bench/sqlcount.py wraps uvicorn.run)
        uvicorn.run(_create_app(service, settings), **options)
        return 0

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and ready_fd is not None:  # `o2c run`: this process holds its port
                os.write(ready_fd, b"up\n")
                os.close(ready_fd)

    server = Server(uvicorn.Config(_create_app(service, settings), **options))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 1


def _keys_file(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get("O2C_API_KEYS_FILE"):
        return Path(os.environ["O2C_API_KEYS_FILE"])
    return Path(os.environ.get("O2C_DATA_DIR", "./var")) / "api-keys.toml"


def cmd_keys_create(args: argparse.Namespace) -> int:
    from shared.auth import append_key, generate_key

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    if not roles:
        raise SystemExit("--roles needs at least one role")
    path = _keys_file(args.file)
    key = generate_key()
    try:
        append_key(path, key, args.principal, roles, args.salesperson)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    print(key)
    print(f"(shown once; its SHA-256 was appended to {path})", file=sys.stderr)
    return 0


RUN_LOCK = "o2c-run.lock"


def _hold_data_dir(data_dir: Path) -> int | str:
    """Lock `data_dir` for this `o2c run` (an flock, released by the kernel when the process
    dies, however it dies); the lock's fd, or why another copy has it."""
    import fcntl

    fd = os.open(data_dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        return (f"data dir {data_dir} is in use by another `o2c run` (pid {holder}); stop it, "
                f"or pass another --data-dir")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _busy_ports(host: str, port_base: int) -> str | None:
    """Why the services' ports cannot be bound, or None when all four are free."""
    import socket

    busy = []
    for service, offset in PORT_OFFSETS.items():
        port = port_base + offset
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind((host, port))
            except OSError as exc:
                busy.append(f"{port} ({service}: {exc.strerror or exc})")
    if not busy:
        return None
    return (f"port{'s' if len(busy) > 1 else ''} {', '.join(busy)} on {host} already in use; "
            f"stop what holds {'them' if len(busy) > 1 else 'it'}, or pass another --port-base")


_output = threading.Lock()  # the banner is printed whole, never with a service's line inside


def _relay_output(stream: Any) -> None:
    """Copy a service's log lines to our stderr, a line at a time."""
    for line in iter(stream.readline, b""):
        with _output:
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
    stream.close()


def cmd_run(args: argparse.Namespace) -> int:
    from shared.auth import append_key, generate_key

    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # Refuse before touching anything (the keys file of a copy already running above all).
    lock = _hold_data_dir(data_dir)
    if isinstance(lock, str):
        print(f"o2c run: {lock}", file=sys.stderr)
        return 1
    busy = _busy_ports(os.environ.get("O2C_HOST", "127.0.0.1"), args.port_base)
    if busy:
        print(f"o2c run: {busy}", file=sys.stderr)
        os.close(lock)
        return 1
    env = dict(os.environ)
    env["O2C_DATA_DIR"] = str(data_dir)
    for service, offset in PORT_OFFSETS.items():
        env[f"O2C_{service.upper()}_URL"] = f"http://127.0.0.1:{args.port_base + offset}"
    env.setdefault("O2C_WEBHOOK_ALLOW_PRIVATE", "true")  # dev: local receivers are fine
    if args.test_clock:
        env["O2C_TEST_CLOCK"] = "true"
    generated: list[tuple[str, str, list[str], str | None]] = []
    if not env.get("O2C_SERVICE_KEY"):
        env["O2C_SERVICE_KEY"] = generate_key("o2csvc")
    if not env.get("O2C_API_KEYS_FILE"):
        keys_file = data_dir / "api-keys.toml"
        keys_file.write_text("# development keys written by `o2c run`; SHA-256 only\n\n")
        for principal, roles, salesperson in DEV_PRINCIPALS:
            key = generate_key()
            append_key(keys_file, key, principal, roles, salesperson)
            generated.append((principal, key, roles, salesperson))
        env["O2C_API_KEYS_FILE"] = str(keys_file)

    os.environ.update(env)
    asyncio.run(_migrate(list(SERVICES)))

    def _interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    # Both signals stop the services, even where SIGINT arrives ignored (a shell starts a
    # background job with SIGINT ignored, and Python then keeps it so): as uvicorn does.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    bound: dict[str, int] = {}  # the read end of each service's "I hold my port" pipe
    relays: list[threading.Thread] = []
    code = 0
    try:
        for service in SERVICES:
            port = args.port_base + PORT_OFFSETS[service]
            read_end, write_end = os.pipe()
            procs[service] = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", service, "--port", str(port),
                 "--ready-fd", str(write_end)],
                env=env, start_new_session=True, pass_fds=(write_end,), stderr=subprocess.PIPE)
            os.close(write_end)
            os.set_blocking(read_end, False)
            bound[service] = read_end
            relays.append(threading.Thread(target=_relay_output, args=(procs[service].stderr,),
                                           daemon=True, name=f"log-{service}"))
            relays[-1].start()
        if not _wait_ready(env, procs, bound,
                           timeout=float(env.get("O2C_RUN_START_TIMEOUT", "60"))):
            print("o2c: the services did not become ready; see the log lines above",
                  file=sys.stderr)
            return 1
        with _output:
            _print_banner(env, data_dir, generated, args.port_base)
        while True:
            for service, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{service} exited with code {proc.returncode}; stopping the others",
                          file=sys.stderr)
                    return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\no2c: stopping…", file=sys.stderr)
    finally:
        _terminate(procs)
        for relay in relays:
            relay.join(timeout=2)
        for read_end in bound.values():
            os.close(read_end)
        print("o2c stopped.", file=sys.stderr)
        os.close(lock)
    return code


def cmd_clock(args: argparse.Namespace) -> int:
    """Move the test clock of all four services (DESIGN.md §10): `set` to a time, or
    `advance` by a duration from the latest of their clocks. Nothing moves unless all four
    have the test clock on and none is already past the target."""
    import httpx

    from shared.testclock import parse_duration, parse_instant

    key = args.key or os.environ.get("O2C_DEMO_KEY")
    if not key:
        raise SystemExit("o2c clock needs an admin key: --key KEY or O2C_DEMO_KEY "
                         "(`o2c run` prints one)")
    if args.port_base is not None:
        urls = {s: f"http://127.0.0.1:{args.port_base + off}" for s, off in PORT_OFFSETS.items()}
    else:
        settings = BaseServiceSettings()
        urls = {s: settings.service_url(s) for s in SERVICES}
    try:
        step = parse_duration(args.value) if args.clock_command == "advance" else None
        target = None if step is not None else parse_instant(args.value)
    except ValueError as exc:
        raise SystemExit(f"o2c clock: {exc}") from None
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {key}"}) as http:
        def call(service: str, method: str, **kw: Any) -> httpx.Response:
            try:
                return http.request(method, urls[service] + "/v1/test-clock", **kw)
            except httpx.TransportError as exc:
                raise SystemExit(f"o2c clock: no answer from {service} at {urls[service]} "
                                 f"({exc or type(exc).__name__})") from None

        def refused(service: str, r: httpx.Response) -> SystemExit:
            if r.status_code == 404:
                return SystemExit(f"o2c clock: {service} has no test clock; start the services "
                                  "with `o2c run --test-clock` (or O2C_TEST_CLOCK=true)")
            detail = r.json().get("detail", r.text) if r.headers.get(
                "content-type", "").endswith("json") else r.text[:200]
            return SystemExit(f"o2c clock: {service} answered {r.status_code}: {detail}")

        now = {}
        for service in SERVICES:
            r = call(service, "GET")
            if r.status_code != 200:
                raise refused(service, r)
            now[service] = parse_instant(r.json()["now"])
        latest = max(now.values())
        target = latest + step if step is not None else target
        if target < latest:
            ahead = ", ".join(f"{s} {t.isoformat()}" for s, t in now.items() if t > target)
            raise SystemExit(f"o2c clock: the test clock only moves forward; already later "
                             f"than {target.isoformat()}: {ahead}")
        # Those that react to events first, ledger (whose overdue scan the jump starts) last:
        # an invoice.overdue never reaches a service still living in the time before.
        for service in ("notifier", "credit", "orders", "ledger"):
            r = call(service, "PUT", json={"now": target.isoformat()})
            if r.status_code != 200:
                raise refused(service, r)
            print(f"{service:<9} {r.json()['now']}")
    return 0


def _print_banner(env: dict[str, str], data_dir: Path,
                  generated: list[tuple[str, str, list[str], str | None]], port_base: int) -> None:
    print("\no2c is running:\n")
    for service in SERVICES:
        url = env[f"O2C_{service.upper()}_URL"]
        print(f"  {service:<9} {url}   docs: {url}/docs")
    print(f"\n  data: {data_dir}   keys file: {env['O2C_API_KEYS_FILE']}")
    if env.get("O2C_TEST_CLOCK", "").lower() in ("1", "true", "yes", "on"):
        print("\n  test clock ON (integration testing only): business time moves with "
              f"`o2c clock advance 31d --port-base {port_base} --key <admin key>`")
    if generated:
        print("\nDevelopment API keys (Authorization: Bearer <key>), shown once:\n")
        for principal, key, roles, salesperson in generated:
            extra = f" salesperson={salesperson}" if salesperson else ""
            print(f"  {principal:<15} {key}   roles={','.join(roles)}{extra}")
    print("\nPress Ctrl-C to stop.\n", flush=True)


def _terminate(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_ready(env: dict[str, str], procs: dict[str, subprocess.Popen[bytes]],
                bound: dict[str, int], timeout: float) -> bool:
    """Poll each service's /ready until all answer 200, a child dies, or time runs out.

    A service counts once its own process said it holds its port (`bound`) and then /ready
    answers 200, so whatever else answers on that port is never taken for it."""
    import http.client
    import urllib.error
    import urllib.request

    pending = set(procs)
    listening: set[str] = set()
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for service in sorted(pending):
            if procs[service].poll() is not None:
                with _output:
                    print(f"{service} exited with code {procs[service].returncode}",
                          file=sys.stderr)
                return False
            if service not in listening:
                with contextlib.suppress(BlockingIOError):
                    if os.read(bound[service], 8):
                        listening.add(service)
                if service not in listening:
                    continue
            try:
                url = env[f"O2C_{service.upper()}_URL"] + "/ready"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        pending.discard(service)
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                pass  # not ready yet
        if pending:
            time.sleep(0.1)
    return not pending


def cmd_demo(args: argparse.Namespace) -> int:
    """Walk one order from intake to close against running services, printing each step."""
    import uuid

    import httpx

    key = args.key or os.environ.get("O2C_DEMO_KEY")
    if not key:
        raise SystemExit("o2c demo needs an admin key: --key KEY or O2C_DEMO_KEY "
                         "(`o2c run` prints one)")
    url = {s: f"http://127.0.0.1:{args.port_base + off}" for s, off in PORT_OFFSETS.items()}
    run = uuid.uuid4().hex[:8]

    try:
        return _demo(args, key, url, run)
    except httpx.TransportError as exc:  # nothing listening, or it went away: one line, not a traceback
        try:
            where = f"{exc.request.url.scheme}://{exc.request.url.host}:{exc.request.url.port}"
        except RuntimeError:  # an error raised before any request was made
            where = "the services"
        raise SystemExit(f"o2c demo: no answer from {where} "
                         f"({exc or type(exc).__name__}); is `o2c run --port-base "
                         f"{args.port_base}` running?") from None


def _demo(args: argparse.Namespace, key: str, url: dict[str, str], run: str) -> int:
    from datetime import UTC, date, datetime, timedelta

    import httpx

    with httpx.Client(timeout=15, headers={"Authorization": f"Bearer {key}"}) as http:
        def step(what: str, method: str, service: str, path: str, **kw: Any) -> dict[str, Any]:
            headers = {"Idempotency-Key": f"demo-{run}-{what}"} if method == "POST" else {}
            r = http.request(method, url[service] + path, headers=headers, **kw)
            if r.status_code >= 300:
                raise SystemExit(f"{what}: {service} answered {r.status_code}: {r.text}")
            body = r.json() if r.content else {}
            state = body.get("state") or body.get("status") or ""
            print(f"  {what:<28} {service:<8} {r.status_code}  {state}")
            return body

        print(f"o2c demo {run}: one order from intake to close\n")
        today = date.today()
        customer = step("create customer", "POST", "credit", "/v1/customers", json={
            "name": f"Demo Trading {run}", "salesperson_id": "S-DEMO",
            "contacts": [{"name": "Demo Finance", "role": "finance"}]})
        cid = customer["id"]
        step("set credit limit", "PUT", "credit", f"/v1/customers/{cid}/credit-limit", json={
            "limit_minor": 50_000_000, "currency": "CNY", "terms_days": 30,
            "reason": "demo"})
        order = step("create draft order", "POST", "orders", "/v1/orders", json={
            "customer_id": cid, "currency": "CNY", "payment_method": "credit",
            "payment_terms_days": 30, "delivery_date": (today + timedelta(days=30)).isoformat(),
            "delivery_place": "Demo warehouse", "lines": [{
                "sku": "PCB-4L", "name": "4-layer PCB", "quantity": "100",
                "unit_price_minor": 1850}]})
        oid = order["id"]
        step("submit", "POST", "orders", f"/v1/orders/{oid}/submit")
        for department in ("sales", "production", "technical", "quality", "finance"):
            step(f"review: {department}", "POST", "orders", f"/v1/orders/{oid}/reviews",
                 json={"department": department, "decision": "approve",
                       "comment": f"{department} agrees"})
        now = datetime.now(UTC).isoformat()
        step("sign contract", "POST", "orders", f"/v1/orders/{oid}/contract",
             json={"contract_number": f"CT-{run}", "signed_at": now})
        step("start fulfilment", "POST", "orders", f"/v1/orders/{oid}/start-fulfillment")
        line_id = order["lines"][0]["id"]
        step("deliver everything", "POST", "orders", f"/v1/orders/{oid}/deliveries",
             json={"lines": [{"line_id": line_id, "quantity": "100"}], "delivered_at": now})
        invoiced = step("settle (invoice)", "POST", "orders", f"/v1/orders/{oid}/settle")
        step("pay the invoice", "POST", "ledger", "/v1/payments", json={
            "customer_id": cid, "amount_minor": invoiced["total_minor"], "currency": "CNY",
            "method": "bank_transfer", "reference": f"DEMO-{run}"})
        deadline = time.monotonic() + args.wait
        state = ""
        while time.monotonic() < deadline:
            state = http.get(f"{url['orders']}/v1/orders/{oid}").json()["state"]
            if state == "closed":
                break
            time.sleep(0.5)
        if state == "closed":
            print("  invoice.paid reached orders through notifier: the order closed itself")
        else:
            step("close", "POST", "orders", f"/v1/orders/{oid}/close")
        history = http.get(f"{url['orders']}/v1/orders/{oid}/history").json()["items"]
        print("\nhistory:")
        for h in history:
            # DESIGN §4 names them `from`/`to`; older services said `from_state`/`to_state`
            before, after = h.get("from", h.get("from_state")), h.get("to", h.get("to_state"))
            print(f"  {h['at']}  {before or '-':>14} → {after:<14} "
                  f"{h['trigger']:<18} by {h['actor']}")
        print(f"\norder {order['number']} closed; customer {customer['number']}.")
    return 0


def cmd_revision(args: argparse.Namespace) -> int:
    """Developers: autogenerate a migration from the service's models (SQLite scratch db)."""
    import tempfile

    from alembic import command

    from shared import migrations

    (service,) = _services(args.service)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        os.environ[f"O2C_{service.upper()}_DATABASE_URL"] = url
        asyncio.run(_migrate([service]))
        cfg = migrations.alembic_config(service, url)
        command.revision(cfg, message=args.message, autogenerate=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="o2c", description="order-to-cash services")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="migrate and start all four services on SQLite")
    run.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    run.add_argument("--data-dir", default=os.environ.get("O2C_DATA_DIR", "./var"))
    run.add_argument("--test-clock", action="store_true",
                     help="let `o2c clock` move business time (integration testing only)")
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="serve one service")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default=os.environ.get("O2C_HOST", "127.0.0.1"))
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("service", choices=[*SERVICES, "all"])
    migrate.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and append its hash")
    create.add_argument("--principal", required=True)
    create.add_argument("--roles", required=True, help="comma-separated roles")
    create.add_argument("--salesperson", default=None)
    create.add_argument("--file", default=None, help="keys file (default O2C_API_KEYS_FILE)")
    create.set_defaults(func=cmd_keys_create)

    demo = sub.add_parser("demo", help="walk one order from intake to close on running services")
    demo.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    demo.add_argument("--key", default=None, help="an admin key (default O2C_DEMO_KEY)")
    demo.add_argument("--wait", type=float, default=30.0,
                      help="seconds to wait for the automatic close")
    demo.set_defaults(func=cmd_demo)

    clock = sub.add_parser("clock", help="move the test clock of all four services "
                                         "(`o2c run --test-clock`)")
    clock_sub = clock.add_subparsers(dest="clock_command", required=True)
    for name, value, helptext in (
            ("set", "timestamp", "jump to a time, e.g. 2027-01-05T09:00:00Z"),
            ("advance", "duration", "move on by a duration, e.g. 31d, 12h, 1d6h, 90m")):
        command = clock_sub.add_parser(name, help=helptext)
        command.add_argument("value", metavar=value.upper())
        command.add_argument("--port-base", type=int, default=None,
                             help="the services at 127.0.0.1:BASE+1..4 (default: O2C_*_URL)")
        command.add_argument("--key", default=None, help="an admin key (default O2C_DEMO_KEY)")
        command.set_defaults(func=cmd_clock)

    revision = sub.add_parser("revision", help="(developers) autogenerate a migration")
    revision.add_argument("service", choices=SERVICES)
    revision.add_argument("-m", "--message", required=True)
    revision.set_defaults(func=cmd_revision)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
