"""What `o2c run` shows an operator at INFO, on one terminal (stdout and stderr merged): the
banner whole and last at start, no alembic or `transitions` chatter (issue 13)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.e2e.conftest import draft_order


@pytest.fixture
def o2c_run_options() -> dict:
    return {"env": {"O2C_LOG_LEVEL": "INFO"}, "merge_output": True}


def _loggers(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        if line.startswith("{"):
            names.add(json.loads(line)["logger"])
    return names


def test_the_banner_is_whole_and_the_libraries_are_quiet(o2c_run):
    base, keys = o2c_run["base"], o2c_run["keys"]
    url = {s: f"http://127.0.0.1:{base + i}" for i, s in
           enumerate(["orders", "credit", "ledger", "notifier"], start=1)}
    with httpx.Client(timeout=10) as http:  # one order transition: draft → submitted
        auth = {"Authorization": f"Bearer {keys['admin']}"}
        customer = http.post(f"{url['credit']}/v1/customers", headers=auth,
                             json={"name": "Quiet Logs Ltd", "salesperson_id": "S-ALICE"})
        assert customer.status_code == 201, customer.text
        order = http.post(f"{url['orders']}/v1/orders", headers=auth, json=draft_order(customer.json()["id"]))
        assert order.status_code == 201, order.text
        submitted = http.post(f"{url['orders']}/v1/orders/{order.json()['id']}/submit",
                              headers=auth)
        assert submitted.status_code == 200, submitted.text
    lines = o2c_run["lines"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("/submit" in line for line in lines):
        time.sleep(0.1)  # the access line of the submit says its log lines are all in
    text = "".join(lines)
    assert "/submit" in text, text

    loggers = _loggers(lines)
    assert "o2c.access" in loggers  # INFO is on: we do see what an operator reads
    assert not {n for n in loggers if n.startswith(("alembic", "transitions"))}, loggers

    start = next(i for i, line in enumerate(lines) if line.startswith("o2c is running"))
    end = next(i for i, line in enumerate(lines) if "Press Ctrl-C to stop" in line)
    banner = lines[start:end + 1]
    assert not [line for line in banner if line.startswith("{")], "".join(banner)
    assert sum(" roles=" in line for line in banner) == len(keys) >= 9
    for service, u in url.items():
        assert any(line.strip().startswith(service) and u in line for line in banner)
