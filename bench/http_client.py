"""Inter-service call throughput: httpx's own transport vs the httpx-aiohttp transport.

Starts a real credit service (`o2c serve`, SQLite in a temporary directory) on a free
loopback port, then drives `GET /v1/customers/{id}` through `shared.http.ServiceHttp` —
the code path every service-to-service call takes — with each transport in turn.
Bounded: a fixed number of requests per round, everything stops on its own.

    .venv/bin/python -m bench.http_client [--requests 3000] [--concurrency 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

from services.credit.config import CreditSettings
from shared.auth import append_key
from shared.http import ServiceHttp, make_client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _round(http: ServiceHttp, path: str, requests: int,
                 concurrency: int) -> tuple[float, float]:
    """Requests per second, and the client's own CPU microseconds per request."""
    queue = iter(range(requests))

    async def worker() -> None:
        for _ in queue:
            response = await http.call("credit", "GET", path)
            assert response.status_code == 200, response.text

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return (requests / (time.perf_counter() - started),
            (time.process_time() - cpu) / requests * 1e6)


async def main(requests: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        keys = Path(tmp) / "keys.toml"
        append_key(keys, "bench-admin", "bench", ["admin"])
        env = {**os.environ, "O2C_DATA_DIR": tmp, "O2C_API_KEYS_FILE": str(keys),
               "O2C_SERVICE_KEY": "bench-service", "O2C_MIGRATE_ON_STARTUP": "true",
               "O2C_LOG_LEVEL": "ERROR", "O2C_WORKERS_ENABLED": "false"}
        server = subprocess.Popen(  # noqa: ASYNC220 - start-up, before measuring
            [sys.executable, "-m", "services.cli", "serve", "credit", "--port", str(port)],
            env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/ready", timeout=1)  # noqa: ASYNC210
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            settings = CreditSettings(credit_url=base, service_key="bench-service",
                                      http_retries=1)
            async with httpx.AsyncClient() as setup:
                created = await setup.post(base + "/v1/customers", json={"name": "Bench Co"},
                                           headers={"Authorization": "Bearer bench-admin"})
            path = f"/v1/customers/{created.json()['id']}"
            clients = {
                "httpx (httpcore)": httpx.AsyncClient(timeout=settings.http_timeout_seconds),
                "httpx-aiohttp": make_client(settings),
            }
            for name, client in clients.items():
                http = ServiceHttp(client, settings)
                await _round(http, path, min(500, requests), concurrency)  # warm-up
                rounds = [await _round(http, path, requests, concurrency) for _ in range(3)]
                print(f"{name:<18} {max(r for r, _ in rounds):6.0f} req/s   client CPU "
                      f"{min(c for _, c in rounds):5.0f} µs/request   (server-bound: the "
                      "rate is the credit process's; the CPU figure is the client's)")
                await client.aclose()
        finally:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
