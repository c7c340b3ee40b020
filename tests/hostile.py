"""Hostile input, table-driven from each service's own OpenAPI document.

The tables are built when the tests are collected, by walking `app.openapi()` of every
service: every query parameter and every body field (nested ones too) whose schema is a date
(`format: date`), a timestamp (`format: date-time`) or an integer becomes a `Target`. A date
parameter added to any route is in the tables without anyone listing it.

A request is built from the operation's own example body with the target set to the hostile
value; path parameters name real resources (a customer, an invoice, an order, a webhook
endpoint) so that the request is refused for its input, not for a missing resource.
"""

from __future__ import annotations

import copy
import importlib
import re
import tempfile
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx

from shared.settings import SERVICES
from tests.harness import HOOKS_URL, System, settings_for

# Out of range, or not an ISO 8601 string of the field's kind: 422 naming the field, for a
# date and a timestamp alike. The last two are in range on their clock but not in UTC.
EDGE_DATES: list[Any] = [
    "0001-01-01", "9999-12-31", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "0", "1e10", "2999-12-31T23:59:59-01:00", "1900-01-01T00:00:00+01:00",
]
# In a JSON body the numbers are sent as numbers as well.
EDGE_BODY_DATES: list[Any] = [*EDGE_DATES, 0, 1e10, 1_700_000_000, True]
# At the ends of the range: accepted as a value (whatever the business rules then say), and
# never a 5xx, so the arithmetic done with them cannot overflow.
IN_RANGE = {
    "date": ["1900-01-01", "2999-12-31"],
    "date-time": ["1900-01-01T00:00:00Z", "2999-12-31T23:59:59Z", "2999-12-31T23:59:59+14:00",
                  "1900-01-01T00:59:59-01:00"],
}
# Integers of a body are JSON integers: not a bool, a string or a float.
LOOSE_INTEGERS: list[Any] = [True, False, "100", 1.5, 100.0]
# Integer query and path values arrive as strings: digits only.
LOOSE_QUERY_INTEGERS = ["1.5", "true", "abc", "1e1"]


@dataclass(frozen=True)
class Target:
    """A place of a request that takes a date, a timestamp or an integer."""

    service: str
    method: str
    path: str
    where: str  # "query", "path" or "body"
    field: str  # a parameter's name, or a body path like `changes.lines[0].quantity`
    kind: str  # "date", "date-time" or "integer"

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path} {self.where}.{self.field}"

    @property
    def error_field(self) -> str:
        """How the problem+json `errors` list names it (shared.errors)."""
        return self.field if self.where == "body" else f"{self.where}.{self.field}"


@cache
def spec(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, from an app that is built but never started."""
    module = importlib.import_module(f"services.{service}.app")
    settings = settings_for(service, data_dir=tempfile.mkdtemp(prefix="o2c-openapi-"),
                            workers_enabled=False)
    return module.create_app(settings).openapi()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _kind(schema: dict[str, Any]) -> str | None:
    if schema.get("format") in ("date", "date-time"):
        return schema["format"]
    if schema.get("type") == "integer":
        return "integer"
    return None


def _leaves(document: dict[str, Any], schema: dict[str, Any], path: str,
            seen: frozenset[str] = frozenset()) -> list[tuple[str, str | None]]:
    """(path, kind) of every field under `schema`; kind None for fields of other types."""
    ref = schema.get("$ref")
    if ref in seen:
        return []
    seen = seen | {ref} if ref else seen
    schema = _resolve(document, schema)
    found: list[tuple[str, str | None]] = []
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        found += _leaves(document, alternative, path, seen)
    if schema.get("type") == "object" or "properties" in schema:
        for name, prop in schema.get("properties", {}).items():
            found += _leaves(document, prop, f"{path}.{name}" if path else name, seen)
    elif schema.get("type") == "array" and "items" in schema:
        found += _leaves(document, schema["items"], f"{path}[0]", seen)
    elif path:
        found.append((path, _kind(schema)))
    return found


def _operations(service: str):
    for path, methods in spec(service)["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def _body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    return content["schema"] if content else None


def _param_kind(document: dict[str, Any], schema: dict[str, Any]) -> str | None:
    kinds = {_kind(_resolve(document, s)) for s in schema.get("anyOf", [schema])} - {None}
    return kinds.pop() if kinds else None


def targets(kinds: tuple[str, ...], *, where: tuple[str, ...] = ("query", "path", "body"),
            methods: tuple[str, ...] | None = None, services: tuple[str, ...] = SERVICES
            ) -> list[Target]:
    """Every place of the services' requests taking one of `kinds`, in document order."""
    found: dict[Target, None] = {}
    for service in services:
        document = spec(service)
        for path, method, op in _operations(service):
            if methods is not None and method not in methods:
                continue
            for param in op.get("parameters", []):
                kind = _param_kind(document, param["schema"])
                if kind in kinds and param["in"] in where:
                    found[Target(service, method, path, param["in"], param["name"], kind)] = None
            body = _body_schema(op)
            if body is not None and "body" in where:
                for field, kind in _leaves(document, body, ""):
                    if kind in kinds:
                        found[Target(service, method, path, "body", field, kind)] = None
    return list(found)


def body_fields(service: str, method: str, path: str) -> list[str]:
    """Every field path of the operation's body (nested fields and list items included)."""
    body = _body_schema(spec(service)["paths"][path][method])
    if body is None:
        return []
    return list(dict.fromkeys(field for field, _ in _leaves(spec(service), body, "")))


def operations_with_body(services: tuple[str, ...] = SERVICES, methods: tuple[str, ...] = (
        "post", "put", "patch")) -> list[tuple[str, str, str]]:
    return [(service, method, path) for service in services
            for path, method, op in _operations(service)
            if method in methods and _body_schema(op) is not None]


def _examples(document: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    found = list(schema.get("examples", []))
    resolved = _resolve(document, schema)
    if resolved is not schema:
        found += resolved.get("examples", [])
    for alternative in resolved.get("anyOf", []) + resolved.get("oneOf", []):
        found += _examples(document, alternative)
    return found


def example_body(service: str, method: str, path: str, field: str = "") -> dict[str, Any]:
    """A copy of the operation's first example that has the field's top-level member."""
    content = spec(service)["paths"][path][method]["requestBody"]["content"]["application/json"]
    examples = [e for e in _examples(spec(service), content["schema"]) if isinstance(e, dict)]
    examples += [e["value"] for e in content.get("examples", {}).values()
                 if isinstance(e.get("value"), dict)]
    top = re.split(r"[.\[]", field, maxsplit=1)[0]
    chosen = next((e for e in examples if top in e), examples[0] if examples else {})
    return copy.deepcopy(chosen)


def set_path(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`body` with `field` (`a.b[0].c`) set to `value`; missing containers are created."""
    parts = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", field)]
    node: Any = body
    for part, following in zip(parts, parts[1:], strict=False):
        empty: Any = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(node) <= part:
                node.append(copy.deepcopy(empty))
            if not isinstance(node[part], type(empty)):
                node[part] = empty
        elif not isinstance(node.get(part), type(empty)):
            node[part] = empty
        node = node[part]
    last = parts[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value
    return body


class Resources:
    """Real resources for the path parameters, made on first use in the system."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.ids: dict[str, str] = {}

    async def _made(self, name: str) -> str:
        if name in self.ids:
            return self.ids[name]
        system = self.system
        if name == "customer_id":
            r = await system.client("credit", "credit_manager").post(
                "/v1/customers", json={"name": "Hostile Input Ltd", "salesperson_id": "S-ALICE"})
        elif name == "order_id":
            r = await system.client("orders", "sales").post("/v1/orders", json={
                "customer_id": await self._made("customer_id"), "currency": "CNY",
                "lines": [{"name": "Board", "quantity": "10", "unit_price_minor": 100}]})
        elif name == "invoice_id":
            r = await system.client("ledger", "finance").post("/v1/invoices", json={
                "order_id": str(uuid.uuid4()), "customer_id": await self._made("customer_id"),
                "currency": "CNY", "amount_minor": 125000, "due_date": "2026-02-04"})
        elif name == "endpoint_id":
            r = await system.client("notifier", "admin").post("/v1/webhook-endpoints", json={
                "url": HOOKS_URL + "/hostile", "event_types": ["*"]})
        elif name == "salesperson_id":
            return "S-ALICE"
        else:  # an id the route only reads after validating the body (e.g. write_off_id)
            return str(uuid.uuid4())
        assert r.status_code == 201, r.text
        self.ids[name] = r.json()["id"]
        return self.ids[name]

    async def url(self, path: str) -> str:
        for name in re.findall(r"\{(\w+)\}", path):
            path = path.replace(f"{{{name}}}", await self._made(name))
        return path


async def send(system: System, resources: Resources, target: Target, value: Any,
               principal: str = "admin") -> httpx.Response:
    """The operation's example request with `value` at the target."""
    path = target.path
    if target.where == "path":
        path = path.replace(f"{{{target.field}}}", str(value))
    url = await resources.url(path)
    client = system.client(target.service, principal)
    if target.where == "query":
        return await client.request(target.method.upper(), url, params={target.field: value})
    if target.where == "path":
        return await client.request(target.method.upper(), url)
    body = set_path(example_body(target.service, target.method, target.path, target.field),
                    target.field, value)
    return await client.request(target.method.upper(), url, json=body)


def named_fields(response: httpx.Response) -> list[str]:
    """The fields a 422 names; a batch's (207) per-item fields prefixed with `events[i].`."""
    body = response.json()
    if response.status_code == 207:
        return [f"events[{i}].{e['field']}" for i, result in enumerate(body["results"])
                if result["status"] == 422 for e in result["errors"] or []]
    return [e["field"] for e in body.get("errors") or []]


def refused_naming(response: httpx.Response, target: Target) -> str | None:
    """None when the response is a 422 `validation_failed` naming the target; else why not."""
    if response.status_code == 207:
        if target.error_field in named_fields(response):
            return None
    elif response.status_code == 422 and response.json().get("code") == "validation_failed":
        if target.error_field in named_fields(response):
            return None
    return f"{response.status_code} {response.text[:300]}"


# ---------------------------------------------------------------- the checks the tests run

_TYPE_MESSAGES = ("Input should be a date", "Input should be an ISO 8601", "Input should be a time",
                  "Input should be a valid", "Input should have timezone")


async def check_edge_dates(system: System, target: Target) -> None:
    """Every edge value is a 422 naming the field; the ends of the range pass as values and
    never answer 5xx."""
    resources = Resources(system)
    failures = []
    for value in EDGE_DATES if target.where == "query" else EDGE_BODY_DATES:
        why = refused_naming(await send(system, resources, target, value), target)
        if why:
            failures.append(f"{value!r} was not refused naming {target.error_field}: {why}")
    for value in IN_RANGE[target.kind]:
        r = await send(system, resources, target, value)
        if r.status_code >= 500:
            failures.append(f"{value!r} (in range) answered {r.status_code} {r.text[:300]}")
        elif r.status_code == 422:
            refused = [e["message"] for e in r.json().get("errors") or []
                       if e["field"] == target.error_field and e["message"].startswith(_TYPE_MESSAGES)]
            if refused:
                failures.append(f"{value!r} (in range) refused as a value: {refused}")
    assert not failures, f"{target.id}:\n" + "\n".join(failures)


async def check_loose_integers(system: System, target: Target) -> None:
    """A body integer refuses bools, strings and floats (422 naming it)."""
    resources = Resources(system)
    failures = []
    for value in LOOSE_INTEGERS:
        why = refused_naming(await send(system, resources, target, value), target)
        if why:
            failures.append(f"{value!r} was not refused naming {target.error_field}: {why}")
    assert not failures, f"{target.id}:\n" + "\n".join(failures)


async def check_query_integers(system: System, service: str) -> None:
    """Every integer query or path parameter of the service takes digits ("10") and refuses
    "1.5", "true", "abc" and "1e1"."""
    resources = Resources(system)
    failures = []
    for target in targets(("integer",), where=("query", "path"), services=(service,)):
        for value in LOOSE_QUERY_INTEGERS:
            why = refused_naming(await send(system, resources, target, value), target)
            if why:
                failures.append(f"{target.id} = {value!r} not refused: {why}")
        r = await send(system, resources, target, "10")
        if r.status_code >= 500 or target.error_field in (
                named_fields(r) if r.status_code in (207, 422) else []):
            failures.append(f"{target.id} = '10' refused: {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)


async def check_nulls(system: System, service: str, method: str, path: str) -> list[str]:
    """`null` in each field of the operation's example body, one at a time: never a 5xx.
    Returns the fields that were refused (422 naming them)."""
    resources = Resources(system)
    failures, refused = [], []
    target = Target(service, method, path, "body", "", "")
    for field in body_fields(service, method, path):
        body = set_path(example_body(service, method, path, field), field, None)
        r = await system.client(service, "admin").request(
            method.upper(), await resources.url(path), json=body)
        if r.status_code >= 500:
            failures.append(f"{field}: null answered {r.status_code} {r.text[:300]}")
        elif r.status_code in (207, 422) and field in named_fields(r):
            refused.append(field)
    assert not failures, f"{target.id}:\n" + "\n".join(failures)
    return refused
