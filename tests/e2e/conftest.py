"""Fixtures of the end-to-end tests: real `o2c run` processes on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import PG_URL

START_TIMEOUT = 90


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


@pytest.fixture
def o2c_run(tmp_path: Path, database_urls: dict[str, str]):
    base = _free_port_base()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("O2C_") or k.startswith("O2C_TEST_")}
    env.update({"O2C_OUTBOX_POLL_SECONDS": "0.2", "O2C_LOG_LEVEL": "WARNING"})
    if PG_URL:
        for service, url in database_urls.items():
            env[f"O2C_{service.upper()}_DATABASE_URL"] = url
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--port-base", str(base),
         "--data-dir", str(tmp_path / "var")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True).start()
    try:
        assert started.wait(START_TIMEOUT), "o2c run did not start in time"
        assert proc.poll() is None, "o2c run exited:\n" + "".join(lines + errors)
        keys = dict(re.findall(r"^\s+([a-z-]+)\s+(o2c_\S+)\s+roles=", "".join(lines), re.M))
        yield {"base": base, "keys": keys, "proc": proc, "output": "".join(lines),
               "log": errors}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
