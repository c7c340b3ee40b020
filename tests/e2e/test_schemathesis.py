"""schemathesis against the four services' OpenAPI documents, from outside, every check on.

`o2c run` (real processes, free loopback ports); then the `st` CLI for each service with the
admin key: the examples, coverage, fuzzing and stateful phases, every check schemathesis has
(schemathesis.toml at the repository root says how two of them read this API; st_hooks.py
beside this file makes each Idempotency-Key one operation's, as a client's are). A failure of
any check fails the test, with schemathesis's report (each case has a curl line to replay it).

Bounded: a fixed seed, a fixed number of examples per operation, and a time budget per
service; the whole test takes about two minutes. `O2C_FUZZ_EXAMPLES` and
`O2C_FUZZ_SECONDS` make it longer (a deeper run by hand), not the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.settings import SERVICES

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("O2C_FUZZ_EXAMPLES", "12"))
SECONDS_PER_SERVICE = int(os.environ.get("O2C_FUZZ_SECONDS", "30"))
SEED = 20261202


def _st(url: str, key: str, report: Path) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("st")), "--config-file",
        str(REPO / "schemathesis.toml"), "run", url,
        "-H", f"Authorization: Bearer {key}", "--checks", "all",
        "--max-examples", str(EXAMPLES), "--max-time", str(SECONDS_PER_SERVICE),
        "--seed", str(SEED), "--workers", "1", "--no-color",
        "--report", "junit", "--report-dir", str(report),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("st_hooks.py"))}
    return subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=SECONDS_PER_SERVICE * 3 + 60, cwd=report.parent)


def test_no_check_fails_on_any_service(o2c_run, tmp_path):
    base, admin = o2c_run["base"], o2c_run["keys"]["admin"]
    failed = {}
    for offset, service in enumerate(SERVICES, start=1):
        run = _st(f"http://127.0.0.1:{base + offset}/openapi.json", admin, tmp_path / service)
        summary = run.stdout[run.stdout.rfind("SUMMARY"):]
        assert "Test cases:" in summary, f"{service}: schemathesis did not run:\n{run.stdout}"
        if run.returncode != 0:
            failed[service] = run.stdout[-20000:]
    server_errors = [line for line in o2c_run["log"] if '"level": "error"' in line
                     or "Traceback" in line]
    assert not failed, "\n\n".join(f"=== {s}\n{out}" for s, out in failed.items())
    assert not server_errors, "".join(server_errors[:20])
