"""The rules that keep the codebase one shape (issue 14), read from the source with `ast`:

- no service imports another service (they talk over HTTP);
- a transaction is committed by the request's session dependency, the idempotency layer,
  migrations and the orders step runner only (named below, with why);
- an order's or change request's state is assigned by its machine only;
- services raise no HTTPException (problems are shared.errors classes);
- a service queries its database in its repositories only (`shared/` is the plumbing);
- a service's core modules do not import its subpackages (subpackages depend downward), and
  a ledger subpackage imports only the core's public pieces;
- a test module imports no other test module (what tests share is in `tests/fixtures`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import SERVICES

REPO = Path(__file__).resolve().parents[2]
CODE = [p for p in sorted((REPO / "services").rglob("*.py")) + sorted((REPO / "shared").rglob("*.py"))
        if "migrations" not in p.parts]


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imports(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def test_no_service_imports_another():
    crossing = []
    for path in CODE:
        parts = path.relative_to(REPO).parts
        if parts[0] != "services" or len(parts) < 3:
            continue
        own = parts[1]
        for name in _imports(_tree(path)):
            other = name.split(".")
            if other[0] == "services" and len(other) > 1 and other[1] in SERVICES \
                    and other[1] != own:
                crossing.append(f"{_rel(path)} imports {name}")
    assert not crossing, "\n".join(crossing)


COMMITTERS = {
    "shared/db.py": "the request's session dependency, and checkpoint() before a remote call",
    "shared/idempotency.py": "a keyed POST's effect commits with its stored answer",
    "shared/migrations.py": "alembic's own connection",
    "services/orders/steps.py": "the step runner records a step's intent before calling out",
}


def test_commits_happen_in_the_named_places_only():
    found = []
    for path in CODE:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr == "commit" and _rel(path) not in COMMITTERS:
                found.append(f"{_rel(path)}:{node.lineno}")
    assert not found, "commit() outside " + ", ".join(COMMITTERS) + ":\n" + "\n".join(found)


MACHINES = {"services/orders/lifecycle.py", "services/orders/changes/lifecycle.py"}


def test_only_the_machines_assign_a_state():
    found = []
    for path in CODE:
        if not _rel(path).startswith("services/orders/") or _rel(path) in MACHINES:
            continue
        for node in ast.walk(_tree(path)):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign | ast.AugAssign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state" \
                        and not (isinstance(target.value, ast.Name) and target.value.id in
                                 ("request", "app", "scope")):
                    found.append(f"{_rel(path)}:{node.lineno}")
    assert not found, "\n".join(found)


def test_services_raise_no_http_exception():
    found = [f"{_rel(p)}: {name}" for p in CODE if _rel(p).startswith("services/")
             for name in _imports(_tree(p)) if name.endswith(".HTTPException")
             and name.startswith(("fastapi", "starlette"))]
    assert not found, "\n".join(found)


QUERIES = {"execute", "scalar", "scalars", "stream", "stream_scalars", "get"}


def test_queries_run_in_repositories_only():
    """`<session>.execute(…)` and its kin, outside a `repository.py`, is a query in the wrong place."""
    found = []
    for path in CODE:
        if path.relative_to(REPO).parts[0] != "services" or path.name == "repository.py":
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in QUERIES and "session" in ast.unparse(node.func.value):
                found.append(f"{_rel(path)}:{node.lineno} {ast.unparse(node.func)}(…)")
    assert not found, "\n".join(found)


# A service's core (the modules directly in it) never imports one of its subpackages (issue
# 14, part 4): the subpackages build on the core. `app.py`, where a service is put together,
# may import every part of it, and so may the package's `__init__.py`, which loads every
# part's tables (ledger's schema spans its subpackages).
def _upward_imports() -> set[str]:
    found = set()
    for service in SERVICES:
        root = REPO / "services" / service
        subpackages = {p.parent.name for p in root.glob("*/__init__.py")
                       if p.parent.name != "migrations"}
        for path in sorted(root.glob("*.py")):  # the core: modules directly in the service
            if path.name in ("app.py", "__init__.py"):
                continue
            for name in _imports(_tree(path)):
                parts = name.split(".")
                if parts[:2] == ["services", service] and len(parts) > 2 \
                        and parts[2] in subpackages:
                    found.add(f"{_rel(path)} -> {'.'.join(parts[:3])}")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_core_modules_do_not_import_subpackages(service):
    upward = sorted(u for u in _upward_imports() if u.startswith(f"services/{service}/"))
    assert not upward, "\n".join(upward)


# What a ledger subpackage may take from the ledger core (STYLE.md: models, repository,
# posting, errors, deps, dates), plus `chart` (the account codes a posting names) and
# `config` (the settings, whose field types such as GradeRule a report reads). Orders'
# `changes/` is an extension of the order machine and builds on its pieces (lifecycle,
# machine, steps, …), so it has no such list.
LEDGER_PUBLIC = {"models", "repository", "posting", "errors", "deps", "dates", "chart", "config"}


def test_ledger_subpackages_import_only_the_cores_public_pieces():
    root = REPO / "services" / "ledger"
    subpackages = {p.parent.name for p in root.glob("*/__init__.py") if p.parent.name != "migrations"}
    private = []
    for sub in sorted(subpackages):
        for path in sorted((root / sub).rglob("*.py")):
            for node in ast.walk(_tree(path)):
                if not isinstance(node, ast.ImportFrom) or not node.module:
                    continue
                parts = node.module.split(".")
                if parts[:2] != ["services", "ledger"]:
                    continue
                pieces = [a.name for a in node.names] if len(parts) == 2 else [parts[2]]
                private += [f"{_rel(path)} imports services.ledger.{p}" for p in pieces
                            if p not in subpackages and p not in LEDGER_PUBLIC]
                if len(parts) == 3 and parts[2] in LEDGER_PUBLIC:
                    private += [f"{_rel(path)} imports {node.module}.{a.name}"
                                for a in node.names if a.name.startswith("_")]
    assert not private, "\n".join(private)


def test_no_test_module_imports_another():
    importing = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for name in _imports(_tree(path)):
            if name.startswith("tests.") and name.split(".")[-1].startswith("test_"):
                importing.append(f"{_rel(path)} imports {name}")
    assert not importing, "\n".join(importing)
