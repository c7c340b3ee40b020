"""Each service's OpenAPI document says what a generated client needs (DESIGN.md §3): every
error is `application/problem+json` with the `ProblemBody` schema, every POST takes
`Idempotency-Key`, every route that checks `If-Match` declares it, versioned resources send
`ETag`, and states and statuses are enums. The documents are valid OpenAPI 3.1, and the
problems the services send validate against the schema they document."""

from __future__ import annotations

import importlib
import inspect
import tempfile
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from fastapi.routing import APIRoute
from schemathesis.specs.openapi.definitions import OPENAPI_31

from services.ledger.models import InvoiceStatus
from services.orders.models import ChangeRequestState, OrderState
from shared.errors import PROBLEM_JSON
from shared.settings import SERVICES
from tests import hostile
from tests.fixtures import flows
from tests.harness import settings_for

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}


def _operations(service: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in hostile.spec(service)["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def _header(op: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((p for p in op.get("parameters", [])
                 if p["in"] == "header" and p["name"].lower() == name.lower()), None)


def _routes(routes: Any) -> Iterator[APIRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _routes(included.routes)
        elif isinstance(route, APIRoute):
            yield route


def _calls(dependant: Any) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _checks_if_match(route: APIRoute) -> bool:
    """The route, or a dependency of it, reads `If-Match` (shared.versioning.check_if_match)."""
    for call in _calls(route.dependant):
        try:
            source = inspect.getsource(call)
        except (OSError, TypeError):
            continue
        if "if_match(request" in source:
            return True
    return False


def _if_match_operations(service: str) -> set[str]:
    """operationIds of the routes that check If-Match, found from their code."""
    app = importlib.import_module(f"services.{service}.app").create_app(settings_for(
        service, data_dir=tempfile.mkdtemp(prefix="o2c-openapi-"), workers_enabled=False))
    return {f"{service}_{route.name}" for route in _routes(app.routes) if _checks_if_match(route)}


def _enum_values(document: dict[str, Any], schema: dict[str, Any]) -> set[str] | None:
    for alternative in schema.get("anyOf", [schema]):
        resolved = hostile._resolve(document, alternative)
        if "enum" in resolved:
            return set(resolved["enum"])
    return None


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_is_problem_json_with_the_problem_schema(service):
    document = hostile.spec(service)
    wrong = [f"{method.upper()} {path} {code}: {response.get('content')}"
             for path, method, op in _operations(service)
             for code, response in op["responses"].items()
             if code[0] in "45" and response.get("content") != PROBLEM]
    assert not wrong, "\n".join(wrong)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["ProblemBody"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    assert not [m for m in problem["properties"].values() if "default" in m]  # absent, not null
    assert problem["additionalProperties"] is True  # extension members beyond those named
    assert {"errors", "request_id", "guard", "reason", "state", "allowed",
            "limit_bytes"} <= set(problem["properties"])
    validation = [op["responses"].get("422") for _, _, op in _operations(service)]
    assert any(validation), "FastAPI's own 422 is documented as a problem too"


@pytest.mark.parametrize("service", SERVICES)
def test_every_post_takes_an_idempotency_key_and_says_when_it_replayed(service):
    missing = []
    for path, method, op in _operations(service):
        if method != "post":
            continue
        key = _header(op, "Idempotency-Key")
        if key is None or key["required"] or key["schema"].get("maxLength") != 255:
            missing.append(f"POST {path}: {key}")
        if "422" not in op["responses"]:  # the key's own refusals: length, reuse
            missing.append(f"POST {path}: no 422")
        for code, response in op["responses"].items():
            if code[0] == "2" and "Idempotent-Replayed" not in response.get("headers", {}):
                missing.append(f"POST {path} {code}: no Idempotent-Replayed")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("service", SERVICES)
def test_if_match_is_declared_exactly_where_it_is_checked(service):
    checked = _if_match_operations(service)
    declared = {op["operationId"] for _, _, op in _operations(service) if _header(op, "If-Match")}
    assert declared == checked
    if service != "ledger":  # ledger has no PATCH or PUT
        assert checked
    unchecked = {f"{method.upper()} {path}" for path, method, op in _operations(service)
                 if method in ("patch", "put") and op["operationId"] not in checked}
    # The salesperson directory's PUT carries a version but does not check If-Match yet
    # (notifier's service replaces the entry unconditionally); nothing else is left out.
    assert unchecked <= {"PUT /v1/salespeople/{salesperson_id}"}


@pytest.mark.parametrize("service", SERVICES)
def test_versioned_resources_document_their_etag(service):
    document = hostile.spec(service)
    for path, method, op in _operations(service):
        for code, response in op["responses"].items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
            if code[0] == "2" and ref:
                body = hostile._resolve(document, {"$ref": ref})
                has_version = "version" in body.get("properties", {})
                assert ("ETag" in response.get("headers", {})) == has_version, f"{method} {path} {code}"


def test_etags_named_on_the_reads_integrators_use():
    orders = hostile.spec("orders")["paths"]
    assert "ETag" in orders["/v1/orders/{order_id}"]["get"]["responses"]["200"]["headers"]
    assert "ETag" in orders["/v1/orders/{order_id}"]["patch"]["responses"]["200"]["headers"]
    assert _header(orders["/v1/orders/{order_id}"]["patch"], "If-Match")
    assert _header(orders["/v1/orders/{order_id}/submit"]["post"], "If-Match")


ENUM_FIELDS = ("state", "status", "decision", "policy", "channel", "recipient_role", "method",
               "contact_role")


@pytest.mark.parametrize("service", SERVICES)
def test_states_and_statuses_of_responses_are_enums(service):
    document = hostile.spec(service)
    plain = []
    for name, schema in document["components"]["schemas"].items():
        if not name.endswith("Public"):
            continue
        for field, prop in schema.get("properties", {}).items():
            if field in ENUM_FIELDS and _enum_values(document, prop) is None:
                plain.append(f"{name}.{field}")
            if field == "kind" and name != "PendingStepPublic" and _enum_values(document, prop) is None:
                plain.append(f"{name}.{field}")
    assert not plain, plain


def test_enums_list_the_machine_states():
    orders = hostile.spec("orders")
    schemas = orders["components"]["schemas"]
    assert _enum_values(orders, schemas["OrderPublic"]["properties"]["state"]) == {
        s.value for s in OrderState}
    assert _enum_values(orders, schemas["ChangeRequestPublic"]["properties"]["state"]) == {
        s.value for s in ChangeRequestState}
    ledger = hostile.spec("ledger")
    assert _enum_values(ledger, ledger["components"]["schemas"]["InvoicePublic"]["properties"]["status"]) == {
        s.value for s in InvoiceStatus}


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_is_valid_openapi_3_1(service):
    """What openapi-python-client would check first (it is not installed: it pins httpx below
    what o2c uses), with the OpenAPI 3.1 meta-schema schemathesis ships."""
    errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
              for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(hostile.spec(service))]
    assert not errors, "\n".join(errors[:20])


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_loads_every_operation_without_warnings(service):
    """The document read as a client generator reads it: every operation loads, every `$ref`
    resolves, every response media type (problem+json too) has a JSON reader, every pattern
    is usable."""
    from schemathesis.core.result import Ok
    from schemathesis.specs.openapi import warnings

    operations = list(schemathesis.openapi.from_dict(hostile.spec(service)).get_all_operations())
    failed = [r for r in operations if not isinstance(r, Ok)]
    assert operations and not failed, failed[:3]
    found = []
    for result in operations:
        operation = result.ok()
        found += warnings.detect_missing_deserializers(operation)
        found += warnings.detect_unresolvable_references(operation)
        found += warnings.detect_unsupported_regex(operation)
    assert not found, [(w.operation_label, w.message) for w in found][:10]


def _problem_validator(service: str) -> Any:
    document = hostile.spec(service)
    return jsonschema_rs.Draft202012Validator(
        {"$ref": "#/components/schemas/ProblemBody", "components": document["components"]})


def _documented(service: str, method: str, path: str, status: int) -> dict[str, Any]:
    return hostile.spec(service)["paths"][path][method]["responses"][str(status)]["content"]


async def test_problems_sent_validate_against_the_documented_schema(system):
    """A 404, a 409 guard_failed and a 422 parse into the documented problem model with
    their `code`, `guard`, `reason` and `errors`, under the documented media type."""
    customer_id = await flows.make_customer(system)
    orders = system.client("orders", "sales")
    validator = _problem_validator("orders")

    missing = await orders.get("/v1/orders/no-such-order")
    order = await flows.in_fulfillment(system, customer_id)
    r = await orders.post(f"/v1/orders/{order['id']}/change-requests", json={
        "changes": {"delivery_place": "Warehouse 9"}, "reason": "moved"})
    assert r.status_code == 201, r.text
    guarded = await system.client("orders", "production").post(
        f"/v1/orders/{order['id']}/deliveries", json={
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": order["lines"][0]["quantity"]}],
            "delivered_at": flows.DELIVERED_AT})
    invalid = await orders.post("/v1/orders", json={"customer_id": customer_id, "currency": "CNY",
                                                    "salesperson_id": "no spaces"})
    cases = [(missing, 404, "get", "/v1/orders/{order_id}"),
             (guarded, 409, "post", "/v1/orders/{order_id}/deliveries"),
             (invalid, 422, "post", "/v1/orders")]
    for response, status, method, path in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].split(";")[0] in _documented("orders", method, path, status)
        body = response.json()
        errors = [e.message for e in validator.iter_errors(body)]
        assert not errors, (status, errors, body)
        assert body["status"] == status and body["request_id"]
    assert missing.json()["code"] == "not_found"
    assert (guarded.json()["code"], guarded.json()["guard"]) == ("guard_failed", "open_change_request")
    assert guarded.json()["reason"]
    assert invalid.json()["code"] == "validation_failed"
    assert [e["field"] for e in invalid.json()["errors"]] == ["salesperson_id"]
