"""Static checks of the deployment files: Dockerfile, deploy/docker-compose.yml, .env.example.

No Docker engine, database or network: the compose file is parsed with PyYAML and checked
against the real CLI parser (`services.cli.build_parser`) and the real settings classes
(`services/<name>/config.py`), so a renamed setting or CLI option breaks this test rather
than a deployment.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from services.cli import build_parser
from shared.settings import DEFAULT_PORT_BASE, PORT_OFFSETS, SERVICES, BaseServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
INIT_SQL = DEPLOY / "postgres" / "init.sql"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = ROOT / "pyproject.toml"

IMAGE = "o2c:latest"
APP_SERVICES = tuple(SERVICES)
O2C_CONTAINERS = ("migrate", *APP_SERVICES)

# O2C_* variables that are read by the CLI rather than by a settings class.
CLI_ENV = {
    "O2C_HOST": "services/cli.py: default of `serve --host`",
}

_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
_BARE_VARIABLE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


# --- loading ---------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose file has no service {name!r}"
    return services[name]


def environment(name: str) -> dict[str, str]:
    """A service's `environment:`, mapping or list form, as strings (uninterpolated)."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


@cache
def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), (
            f".env.example line {number} is not NAME=value: {raw!r}")
        assert name not in values, f".env.example sets {name} twice"
        values[name] = value
    return values


def example_values() -> dict[str, str]:
    """The .env.example values, with required-but-empty ones filled as an operator would."""
    return {k: v or f"test-{k.lower()}" for k, v in env_example().items()}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `$$`."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        if op in (":-", "-"):
            return current if (current if op == ":-" else current is not None) else arg
        if op in (":?", "?"):
            if current is None or (op == ":?" and not current):
                raise AssertionError(f"${{{name}}} is required: {arg}")
            return current
        if op in (":+", "+"):
            return arg if (current if op == ":+" else current is not None) else ""
        return current or ""

    parts = value.split("$$")
    return "$".join(_INTERPOLATION.sub(substitute, part) for part in parts)


def strings(node: Any):
    """Every string value in the parsed file: what compose interpolates (not comments)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def resolved_environment(name: str) -> dict[str, str]:
    env = example_values()
    return {k: interpolate(v, env) for k, v in environment(name).items()}


@cache
def settings_class(name: str) -> type[BaseServiceSettings]:
    module = importlib.import_module(f"services.{name}.config")
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, BaseServiceSettings)
               and v.service_name == name]
    assert len(classes) == 1, f"services/{name}/config.py: expected one settings class"
    return classes[0]


def settings_classes_for(container: str) -> list[type[BaseServiceSettings]]:
    names = APP_SERVICES if container == "migrate" else (container,)
    return [settings_class(n) for n in names]


def expected_port(name: str) -> int:
    return DEFAULT_PORT_BASE + PORT_OFFSETS[name]


def parse_command(container: str):
    command = service(container).get("command")
    assert isinstance(command, list) and all(isinstance(a, str) for a in command), (
        f"{container}: command must be an exec-form list of strings, got {command!r}")
    try:
        return build_parser().parse_args(command)
    except SystemExit as exc:  # argparse reports on stderr and exits
        pytest.fail(f"{container}: `o2c {shlex.join(command)}` is rejected by the CLI ({exc})")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends in a line continuation"
    return instructions


def dockerfile(keyword: str) -> list[str]:
    return [args for kw, args in dockerfile_instructions() if kw == keyword]


def final_stage(keyword: str) -> list[str]:
    """Instructions of the last build stage only (what the image actually is)."""
    stages: list[list[tuple[str, str]]] = []
    for kw, args in dockerfile_instructions():
        if kw == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((kw, args))
    assert stages, "Dockerfile has no FROM"
    return [args for kw, args in stages[-1] if kw == keyword]


# --- the compose file ------------------------------------------------------------------


def test_compose_has_postgres_migrate_and_the_four_services() -> None:
    assert set(compose()["services"]) == {"postgres", *O2C_CONTAINERS}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_command_is_accepted_by_the_cli(name: str) -> None:
    args = parse_command(name)
    assert (args.command, args.service, args.port) == ("serve", name, expected_port(name))


def test_migrate_command_is_accepted_by_the_cli() -> None:
    args = parse_command("migrate")
    assert (args.command, args.service) == ("migrate", "all")
    assert service("migrate").get("restart", "no") == "no", "migrate is a one-shot job"


@pytest.mark.parametrize("name", O2C_CONTAINERS)
def test_o2c_containers_use_the_one_image(name: str) -> None:
    spec = service(name)
    assert spec.get("image") == IMAGE
    build = spec.get("build")
    assert isinstance(build, dict), f"{name}: build must be {{context, dockerfile}}"
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", O2C_CONTAINERS)
def test_every_o2c_variable_is_a_real_setting(name: str) -> None:
    classes = settings_classes_for(name)
    fields = {f for cls in classes for f in cls.model_fields}
    env = environment(name)
    assert env, f"{name}: no environment"
    unknown = []
    for var in env:
        assert var.startswith("O2C_"), f"{name}: unexpected variable {var} (not an o2c setting)"
        if var[len("O2C_"):].lower() in fields or var in CLI_ENV:
            continue
        unknown.append(var)
    assert not unknown, (
        f"{name}: {unknown} are not fields of {[c.__name__ for c in classes]} "
        f"nor read by the CLI; the services would silently ignore them")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_settings_accept_the_values_and_point_where_intended(name: str) -> None:
    env = resolved_environment(name)
    cls = settings_class(name)
    kwargs = {k[len("O2C_"):].lower(): v for k, v in env.items()
              if k[len("O2C_"):].lower() in cls.model_fields}
    settings = cls(**kwargs)  # validates types (bools, paths, secrets)
    url = make_url(settings.database_url())
    assert (url.drivername, url.host, url.database) == (
        "postgresql+asyncpg", "postgres", f"o2c_{name}")
    assert url.username == env_example()["POSTGRES_USER"]
    for other in APP_SERVICES:
        assert settings.service_url(other) == f"http://{other}:{expected_port(other)}", (
            f"{name}: O2C_{other.upper()}_URL must name the compose service {other}")
    assert settings.service_key is not None, f"{name}: O2C_SERVICE_KEY is not set"
    assert settings.api_keys_file is not None, f"{name}: O2C_API_KEYS_FILE is not set"
    assert settings.migrate_on_startup is False, "the migrate job migrates, not each replica"


@pytest.mark.parametrize("name", O2C_CONTAINERS)
def test_database_urls_name_their_own_service(name: str) -> None:
    env = resolved_environment(name)
    own = APP_SERVICES if name == "migrate" else (name,)
    url_vars = {k for k in env if k.endswith("_DATABASE_URL")}
    assert url_vars == {f"O2C_{s.upper()}_DATABASE_URL" for s in own}, (
        f"{name} must see exactly its own database URL(s)")
    for svc in own:
        url = make_url(env[f"O2C_{svc.upper()}_DATABASE_URL"])
        assert url.drivername == "postgresql+asyncpg"
        assert url.host == "postgres" and (url.port or 5432) == 5432
        assert url.database == f"o2c_{svc}"
        assert url.password == env_example()["POSTGRES_PASSWORD"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_port_is_published(name: str) -> None:
    port = expected_port(name)
    ports = [str(p) for p in service(name).get("ports", [])]
    assert any(p.split(":")[-2:] == [str(port), str(port)] for p in ports), (
        f"{name}: publish {port}:{port}, got {ports}")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_services_wait_for_postgres_and_migrations(name: str) -> None:
    depends_on = service(name).get("depends_on")
    assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions (mapping form)"
    assert depends_on.get("postgres", {}).get("condition") == "service_healthy"
    assert depends_on.get("migrate", {}).get("condition") == "service_completed_successfully"


def test_migrate_waits_for_healthy_postgres() -> None:
    depends_on = service("migrate").get("depends_on")
    assert isinstance(depends_on, dict)
    assert depends_on.get("postgres", {}).get("condition") == "service_healthy"


def test_postgres_healthcheck_and_init_script() -> None:
    spec = service("postgres")
    assert str(spec.get("image", "")).startswith("postgres:15")
    check = " ".join(spec["healthcheck"]["test"])
    assert "pg_isready" in check
    mounts = [str(v) for v in spec.get("volumes", [])]
    init_targets = [m.split(":")[1] for m in mounts
                    if (DEPLOY / m.split(":")[0]).resolve() == INIT_SQL]
    assert init_targets and init_targets[0].startswith("/docker-entrypoint-initdb.d/"), (
        "deploy/postgres/init.sql must be mounted into /docker-entrypoint-initdb.d/")
    assert any(m.split(":")[1] == "/var/lib/postgresql/data" for m in mounts), (
        "postgres data must live on a volume")
    assert env_example().get("POSTGRES_PASSWORD") is not None


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_healthcheck_calls_ready(name: str) -> None:
    test = service(name).get("healthcheck", {}).get("test")
    assert isinstance(test, list) and test[0] == "CMD", f"{name}: exec-form healthcheck"
    assert test[1:3] == ["python", "-c"], f"{name}: the image has python, not curl"
    code = test[3]
    compile(code, f"<{name} healthcheck>", "exec")
    assert f"http://127.0.0.1:{expected_port(name)}/ready" in code


def test_migrate_job_has_no_healthcheck() -> None:
    assert service("migrate").get("healthcheck") == {"disable": True}


def test_init_sql_creates_the_databases_the_urls_name() -> None:
    created = set(re.findall(r"(?im)^\s*CREATE\s+DATABASE\s+\"?([a-z0-9_]+)\"?",
                             INIT_SQL.read_text()))
    named = {make_url(v).database for v in resolved_environment("migrate").values()}
    assert created == named == {f"o2c_{s}" for s in APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_keys_file_lives_on_the_shared_volume(name: str) -> None:
    keys_dir = PurePosixPath(environment(name)["O2C_API_KEYS_FILE"]).parent
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service(name).get("volumes", [])}
    assert str(keys_dir) in mounts, (
        f"{name}: {keys_dir} must be a mounted volume so `keys create` reaches every service")
    assert mounts[str(keys_dir)] in (compose().get("volumes") or {})
    # The image creates the directory, so a fresh named volume is owned by the app user.
    assert str(keys_dir) in " ".join(final_stage("RUN"))


def test_env_example_and_compose_interpolations_match() -> None:
    unescaped = "\n".join(s.replace("$$", "") for s in strings(compose()))
    used = {m["name"] for m in _INTERPOLATION.finditer(unescaped)}
    bare = {m["name"] for m in _BARE_VARIABLE.finditer(unescaped)}
    assert not bare, f"use ${{VAR}} (or $$ for a literal dollar): {sorted(bare)}"
    documented = set(env_example())
    assert used - documented == set(), f"not documented in deploy/.env.example: {used - documented}"
    assert documented - used == set(), f"deploy/.env.example sets unused {documented - used}"


def test_required_secrets_fail_loudly_when_unset() -> None:
    text = COMPOSE_FILE.read_text()
    for var in ("POSTGRES_PASSWORD", "O2C_SERVICE_KEY"):
        assert re.search(rf"\$\{{{var}:\?", text), f"${{{var}:?…}} so compose refuses to start"


# --- the image -------------------------------------------------------------------------


def test_dockerfile_entrypoint_is_the_o2c_script() -> None:
    (entrypoint,) = final_stage("ENTRYPOINT")
    assert json.loads(entrypoint) == ["o2c"]
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts.get("o2c") == "services.cli:main"


def test_dockerfile_default_command_is_accepted_by_the_cli() -> None:
    (cmd,) = final_stage("CMD")
    args = build_parser().parse_args(json.loads(cmd))
    assert (args.command, args.service, args.port) == ("serve", "orders", 8000)
    assert final_stage("EXPOSE") == ["8000"]


def test_dockerfile_base_user_and_environment() -> None:
    froms = dockerfile("FROM")
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    users = final_stage("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "must run as non-root"
    env = " ".join(final_stage("ENV"))
    assert re.search(r"\bO2C_HOST=0\.0\.0\.0\b", env), "serve must bind all interfaces"
    installs = [r for r in dockerfile("RUN") if "pip install" in r]
    assert any(re.search(r"pip install (\S+ )*\.(\s|$)", r) for r in installs)
    assert not any("[test]" in r for r in installs), "no test extras in the image"
    image_vars = set(re.findall(r"\b(O2C_[A-Z0-9_]+)=", env))
    base_fields = set(BaseServiceSettings.model_fields)
    unknown = {v for v in image_vars if v not in CLI_ENV and v[4:].lower() not in base_fields}
    assert not unknown, f"Dockerfile ENV sets non-settings {unknown}"


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in (".venv", "var", ".git"):
        assert needed in entries, f".dockerignore: add {needed}"
    assert any("__pycache__" in e for e in entries)
