"""Hostile bodies against a real `o2c serve` process: answered before they are read, never held.

One notifier process (the service whose RSS went from 154 MB to 1.58 GB under three 200 MB
bodies) on a free loopback port. Raw sockets, so the test controls exactly how much of a
body is sent before it reads the answer:

- without a key, a request declaring 200 MB is answered 401 after its first 64 KiB were sent
  (the server cannot have waited for the body), and the connection is closed;
- with a key, a declared 200 MB is 413 `payload_too_large` the same way; a chunked body with
  no length is refused soon after it passes the 1 MiB cap, however much more is offered;
- three full 200 MB bodies pushed at it, with and without a key, grow its RSS by < 50 MB.

Bounded: every socket has a timeout, every body stops at 200 MB, the process is stopped by
its pid.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL
from tests.harness import write_keys

MB = 1024 * 1024
BIG = 200 * MB
CHUNK = 64 * 1024
START_TIMEOUT = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def notifier(tmp_path: Path, database_urls: dict[str, str]):
    keys_file = tmp_path / "api-keys.toml"
    keys = write_keys(keys_file)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("O2C_")}
    env.update({"O2C_DATA_DIR": str(tmp_path / "var"), "O2C_API_KEYS_FILE": str(keys_file),
                "O2C_MIGRATE_ON_STARTUP": "true", "O2C_WORKERS_ENABLED": "false",
                "O2C_LOG_LEVEL": "WARNING"})
    if PG_URL:
        env["O2C_NOTIFIER_DATABASE_URL"] = database_urls["notifier"]
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "notifier",
                             "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, "notifier exited: " + proc.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "notifier did not become ready"
            time.sleep(0.2)  # polling a starting process, not synchronising with it
        yield {"port": port, "pid": proc.pid, "admin": keys["admin"]}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _head(port: int, key: str | None, length: int | None) -> bytes:
    lines = ["POST /v1/webhook-endpoints HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/json"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], dict]:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        assert part, "connection closed without an answer"
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip()
               for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        part = sock.recv(65536)
        assert part, "connection closed inside the answer"
        rest += part
    return int(status_line.split()[1]), headers, json.loads(rest[:length] or b"{}")


def _closed(sock: socket.socket) -> bool:
    """The server closed the connection (EOF or reset), rather than waiting for more body."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False if isinstance(sys.exc_info()[1], TimeoutError) else True


def _send_all(sock: socket.socket, body_bytes: int, chunked: bool) -> int:
    """Offer up to `body_bytes` of body; answer how much the server took before refusing."""
    sent = 0
    block = b" " * CHUNK
    frame = f"{CHUNK:x}\r\n".encode() + block + b"\r\n" if chunked else block
    try:
        while sent < body_bytes:
            sock.sendall(frame)
            sent += CHUNK
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


@pytest.mark.parametrize("with_key", [False, True])
def test_a_200mb_declared_body_is_answered_after_64k(notifier, with_key):
    key = notifier["admin"] if with_key else None
    with socket.create_connection(("127.0.0.1", notifier["port"]), timeout=10) as sock:
        sock.sendall(_head(notifier["port"], key, BIG) + b" " * CHUNK)
        status, headers, problem = _answer(sock)
        assert status == (413 if with_key else 401)
        assert problem["code"] == ("payload_too_large" if with_key else "unauthorized")
        assert headers["content-type"] == "application/problem+json"
        assert headers["connection"] == "close"
        assert _closed(sock), "the server kept the connection open for the rest of the body"


def test_a_chunked_body_is_refused_soon_after_the_cap(notifier):
    with socket.create_connection(("127.0.0.1", notifier["port"]), timeout=10) as sock:
        sock.sendall(_head(notifier["port"], notifier["admin"], None))
        taken = _send_all(sock, BIG, chunked=True)
        status, _, problem = _answer(sock)
    assert status == 413 and problem["code"] == "payload_too_large"
    assert problem["limit_bytes"] == MB
    # The cap, plus what the kernel's socket buffers hold on both sides, not the 200 MB.
    assert taken < 32 * MB, f"the server took {taken / MB:.0f} MB before refusing"


def test_three_200mb_bodies_do_not_grow_the_process(notifier):
    pid, port = notifier["pid"], notifier["port"]
    # A warm-up request of each kind first, so the allocator's first-use growth is not counted.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        client.get("/v1/webhook-endpoints", headers={"Authorization": f"Bearer {notifier['admin']}"})
        client.post("/v1/webhook-endpoints", content=b"{}")
    before = _rss_bytes(pid)
    for key, chunked in ((None, False), (notifier["admin"], False), (notifier["admin"], True)):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(_head(port, key, None if chunked else BIG))
            _send_all(sock, BIG, chunked)
            status, _, _ = _answer(sock)
            assert status in (401, 413)
    grown = _rss_bytes(pid) - before
    assert grown < 50 * MB, f"RSS grew by {grown / MB:.1f} MB"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/health").status_code == 200
