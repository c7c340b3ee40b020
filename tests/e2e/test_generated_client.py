"""Clients generated from the live OpenAPI documents read o2c's answers (issue 13).

`o2c run` (real processes); openapi-python-client, in a venv of its own (it pins an older
httpx than the services use), generates a client from each service's `/openapi.json` with
no warning; then that venv runs tests/e2e/generated_client_walk.py, which calls the API only
through the generated functions and models: a 404, a 409 `guard_failed`, a 412 and a 422
each parse into the `ProblemBody` model with their members; `Idempotency-Key` and
`If-Match` are parameters of the generated functions; states are enums.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.settings import SERVICES

# What a generated client makes of o2c's documents and answers is the same whichever
# database the services keep; the PostgreSQL run skips it (2-3 minutes).
pytestmark = pytest.mark.backend_independent

REPO = Path(__file__).resolve().parents[2]
GENERATOR = "openapi-python-client==0.29.1"
TOOL_VENV = REPO / ".venv" / "tools" / "openapi-python-client"
# What an integrator passes too: the import's CSV body as a file upload (README).
CLIENT_CONFIG = REPO / "deploy" / "clients" / "openapi-python-client.yaml"


def _generator() -> Path:
    """The generator's venv (made once; `.venv` is the project's, never committed)."""
    python = TOOL_VENV / "bin" / "python"
    stamp = TOOL_VENV / f".{GENERATOR}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOL_VENV)], check=True)
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", GENERATOR],
                             capture_output=True, text=True, timeout=300)
        assert pip.returncode == 0, pip.stdout + pip.stderr
        stamp.touch()
    return python


def test_generated_clients_parse_problems_and_take_the_headers(o2c_run, tmp_path):
    python = _generator()
    base, keys = o2c_run["base"], o2c_run["keys"]
    url = {s: f"http://127.0.0.1:{base + i}" for i, s in enumerate(SERVICES, start=1)}
    # The generator formats its output with ruff: the project's own.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for service in SERVICES:
        spec = tmp_path / f"{service}.json"
        spec.write_bytes(httpx.get(f"{url[service]}/openapi.json", timeout=10).content)
        made = subprocess.run(
            [str(python.with_name("openapi-python-client")), "generate", "--path", str(spec),
             "--output-path", str(tmp_path / f"o2c_{service}_client"), "--meta", "none",
             "--config", str(CLIENT_CONFIG)],
            capture_output=True, text=True, env=env, timeout=120)
        output = (made.stdout + made.stderr).strip()
        assert made.returncode == 0, output
        assert output == f"Generating {tmp_path / f'o2c_{service}_client'}", \
            f"{service}: the generator warned:\n{output}"

    walk = subprocess.run(
        [str(python), str(Path(__file__).with_name("generated_client_walk.py")), url["orders"],
         url["credit"], json.dumps(keys)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**env, "PYTHONPATH": str(tmp_path)})
    assert walk.returncode == 0, walk.stdout + walk.stderr
    found = json.loads(walk.stdout)

    assert found["customer_type"] == "CustomerPublic"
    assert found["404"]["status"] == 404 and found["404"]["code"] == "not_found"
    assert found["404"]["type"].startswith("https://")
    assert found["created"] == 201 and found["replayed"] == ["true", True]
    assert found["state"] == ["OrderState", True]
    assert found["412"]["code"] == "version_conflict"
    assert found["422"]["code"] == "validation_failed"
    assert [e["field"].removeprefix("body.") for e in found["422"]["errors"]] == [
        "payment_terms_days"]
    assert found["submitted"] is True
    assert found["409"]["status"] == 409 and found["409"]["code"] == "guard_failed"
    assert found["409"]["guard"] and found["409"]["reason"]


TS_TOOLS = REPO / ".venv" / "tools" / "openapi-typescript"
TS_PACKAGES = ("openapi-typescript@7.13.0", "typescript@5.9.3")
# What a TypeScript front end relies on, checked by the compiler against the generated types:
# problems are typed (not `unknown`), extension members optional, states a union of literals,
# Idempotency-Key and If-Match typed headers.
TS_CHECK = """
import type { components, paths } from "./orders";
type Problem = components["schemas"]["ProblemBody"];
const guardFailed: Problem = { type: "https://o2c.dev/problems/guard-failed", title: "Guard failed",
  status: 409, detail: "d", code: "guard_failed", guard: "all_departments_approved", reason: "r" };
const notFound: paths["/v1/orders/{order_id}"]["get"]["responses"][404]["content"][
  "application/problem+json"] = { type: "t", title: "Not found", status: 404, detail: "d",
  code: "not_found" };
const invalid: Problem = { ...notFound, status: 422, code: "validation_failed",
  errors: [{ field: "body.lines", message: "m" }] };
type State = components["schemas"]["OrderPublic"]["state"];
const state: State = "in_review";
// @ts-expect-error a state the machine does not have
const typo: State = "in_reveiw";
type Headers = NonNullable<paths["/v1/orders/{order_id}/submit"]["post"]["parameters"]["header"]>;
const headers: Headers = { "Idempotency-Key": "k", "If-Match": '"1"' };
export { guardFailed, invalid, state, typo, headers };
"""


def test_typescript_types_generate_without_warnings_and_compile(tmp_path):
    """openapi-typescript over each service's document; tsc --strict over what a front end
    relies on. Needs Node.js and the npm registry (both on the development and CI machines)."""
    import importlib

    from tests.harness import settings_for

    npx = TS_TOOLS / "node_modules" / ".bin"
    stamp = TS_TOOLS / ("." + "+".join(TS_PACKAGES).replace("/", "_"))
    if not stamp.exists():
        TS_TOOLS.mkdir(parents=True, exist_ok=True)
        npm = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                              "--prefix", str(TS_TOOLS), *TS_PACKAGES],
                             capture_output=True, text=True, timeout=300)
        assert npm.returncode == 0, npm.stdout + npm.stderr
        stamp.touch()
    for service in SERVICES:
        settings = settings_for(service, **{
            f"{service}_database_url": f"sqlite+aiosqlite:///{tmp_path / service}.db"})
        app = importlib.import_module(f"services.{service}.app").create_app(settings)
        spec = tmp_path / f"{service}.json"
        spec.write_text(json.dumps(app.openapi()))
        made = subprocess.run([str(npx / "openapi-typescript"), str(spec), "-o",
                               str(tmp_path / f"{service}.d.ts")],
                              capture_output=True, text=True, timeout=120)
        output = made.stdout + made.stderr
        assert made.returncode == 0, output
        assert not [line for line in output.splitlines()
                    if "openapi-typescript" not in line and "→" not in line and line.strip()], \
            f"{service}: openapi-typescript warned:\n{output}"
    (tmp_path / "check.ts").write_text(TS_CHECK)
    compiled = subprocess.run([str(npx / "tsc"), "--noEmit", "--strict", str(tmp_path / "check.ts")],
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
