"""Fixtures of the end-to-end tests: real `o2c run` processes on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import PG_URL

START_TIMEOUT = 90


def draft_order(customer_id: str) -> dict[str, object]:
    """A credit order of ten boards (125,500 minor units), due for delivery in 30 days."""
    return {"customer_id": customer_id, "currency": "CNY", "payment_method": "credit",
            "payment_terms_days": 30,
            "delivery_date": (date.today() + timedelta(days=30)).isoformat(),
            "delivery_place": "Shenzhen warehouse 3",
            "lines": [{"sku": "PCB-1", "name": "Controller board", "quantity": "10",
                       "unit_price_minor": 12550}]}


def _free_port_base() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 4 > 65535:
            continue
        try:
            sockets = []
            for offset in range(1, 5):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no four free consecutive ports")


def run_env(database_urls: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of an `o2c run` under test: ours without O2C_ settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("O2C_") or k.startswith("O2C_TEST_")}
    env.update({"O2C_OUTBOX_POLL_SECONDS": "0.2", "O2C_LOG_LEVEL": "WARNING", **extra})
    if PG_URL:
        for service, url in database_urls.items():
            env[f"O2C_{service.upper()}_DATABASE_URL"] = url
    return env


@pytest.fixture
def o2c_run_options() -> dict:
    """Override in a test module: `env` (extra variables), `args` (more `o2c run` options,
    e.g. `["--test-clock"]`), `merge_output` (the services' log lines into `output`, in the
    order they were written, as a terminal shows them)."""
    return {}


def _start(base: int, tmp_path: Path, env: dict[str, str], options: dict):
    merge = options.get("merge_output", False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--port-base", str(base),
         "--data-dir", str(tmp_path / "var"), *options.get("args", [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        text=True)
    lines: list[str] = []
    errors: list[str] = []  # the services' log lines (stderr), drained so they never block
    started = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                started.set()
        started.set()

    threading.Thread(target=read, daemon=True).start()
    if not merge:
        threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    return proc, lines, errors, started


@pytest.fixture
def o2c_run(tmp_path: Path, database_urls: dict[str, str], o2c_run_options: dict):
    env = run_env(database_urls, **o2c_run_options.get("env", {}))
    for attempt in range(3):  # another process may take a port between the probe and the bind
        base = _free_port_base()
        proc, lines, errors, started = _start(base, tmp_path, env, o2c_run_options)
        started.wait(START_TIMEOUT)
        if proc.poll() is None or "already in use" not in "".join(lines + errors) or attempt == 2:
            break
        proc.wait()
    try:
        assert started.wait(START_TIMEOUT), "o2c run did not start in time"
        assert proc.poll() is None, "o2c run exited:\n" + "".join(lines + errors)
        keys = dict(re.findall(r"^\s+([a-z-]+)\s+(o2c_\S+)\s+roles=", "".join(lines), re.M))
        yield {"base": base, "keys": keys, "proc": proc, "output": "".join(lines),
               "log": errors, "lines": lines, "data_dir": tmp_path / "var", "env": env}
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C, then SIGTERM, and SIGKILL last: the services run in their own sessions, so
    killing `o2c run` outright would leave them serving the test databases."""
    for stop in (lambda: proc.send_signal(signal.SIGINT), proc.terminate, proc.kill):
        if proc.poll() is not None:
            return
        stop()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            continue
