"""A second `o2c run` on the data dir or ports of one already running refuses at once, in one
line, and touches nothing: the first copy's keys file stays byte for byte (issue 13)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from tests.e2e.conftest import _free_port_base, run_env

# The refusal comes before the second copy opens any database: the PostgreSQL run skips it.
pytestmark = pytest.mark.backend_independent

REFUSAL_TIMEOUT = 20  # a refusal comes before any migration or service start


def _second_run(o2c_run, database_urls, *, base: int, data_dir) -> tuple[subprocess.CompletedProcess,
                                                                           float]:
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "--port-base", str(base),
         "--data-dir", str(data_dir)],
        env=run_env(database_urls), capture_output=True, text=True, timeout=REFUSAL_TIMEOUT)
    return second, time.monotonic() - started


def _first_still_serves(o2c_run) -> None:
    assert o2c_run["proc"].poll() is None
    orders = f"http://127.0.0.1:{o2c_run['base'] + 1}"
    r = httpx.get(f"{orders}/v1/orders", headers={
        "Authorization": f"Bearer {o2c_run['keys']['admin']}"}, timeout=10)
    assert r.status_code == 200, r.text  # its printed keys still work


def test_same_data_dir_and_ports_is_refused_and_touches_nothing(o2c_run, database_urls):
    keys_file = o2c_run["data_dir"] / "api-keys.toml"
    before = keys_file.read_bytes()
    second, took = _second_run(o2c_run, database_urls, base=o2c_run["base"],
                               data_dir=o2c_run["data_dir"])
    assert second.returncode != 0
    assert took < REFUSAL_TIMEOUT
    assert second.stdout == ""  # no banner, no keys
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("o2c run: data dir ") and "in use by another `o2c run`" in lines[0]
    assert f"(pid {o2c_run['proc'].pid})" in lines[0]
    assert keys_file.read_bytes() == before
    _first_still_serves(o2c_run)


def test_same_ports_on_another_data_dir_is_refused(o2c_run, database_urls, tmp_path):
    second, _ = _second_run(o2c_run, database_urls, base=o2c_run["base"],
                            data_dir=tmp_path / "other")
    assert second.returncode != 0
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("o2c run: ports ") and "already in use" in line, line
    assert f"{o2c_run['base'] + 1} (orders" in line
    assert not (tmp_path / "other" / "api-keys.toml").exists()
    _first_still_serves(o2c_run)


def test_same_data_dir_on_other_ports_is_refused(o2c_run, database_urls):
    keys_file = o2c_run["data_dir"] / "api-keys.toml"
    before = keys_file.read_bytes()
    second, _ = _second_run(o2c_run, database_urls, base=_free_port_base(),
                            data_dir=o2c_run["data_dir"])
    assert second.returncode != 0
    assert "in use by another `o2c run`" in second.stderr
    assert keys_file.read_bytes() == before
    _first_still_serves(o2c_run)
