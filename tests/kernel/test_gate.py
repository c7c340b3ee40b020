"""The request gate (shared.gate): no body is read before authentication, and none is taken
beyond the cap; bodies that do not decode are input errors, not server errors.

The ASGI-level tests call each app with a `receive` that records whether it was called, so
"not read" is observed, not inferred from a status code. The same guarantees against a real
process, with 200 MB bodies and its RSS, are in tests/e2e/test_hostile_bodies.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.settings import SERVICES

BODY_METHODS = ("post", "put", "patch")


def _operations_with_body(spec: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            if method in BODY_METHODS and "requestBody" in op:
                found.append((method.upper(), path.replace("{", "").replace("}", "")))
    return found


async def _asgi(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
                chunks: list[bytes]) -> tuple[int, dict[str, str], bytes, int]:
    """Run one request through `app`; answer status, headers, body and how many body chunks
    the app asked for."""
    asked = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal asked
        asked += 1
        if asked <= len(chunks):
            return {"type": "http.request", "body": chunks[asked - 1],
                    "more_body": asked < len(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body, asked)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_operation_with_a_body_answers_401_without_reading_it(system, service):
    app = system.apps[service]
    operations = _operations_with_body(app.openapi())
    assert operations
    for method, path in operations:
        for auth in ([], [(b"authorization", b"Bearer not-a-key")],
                     [(b"authorization", b"Basic YWRtaW46YWRtaW4=")]):
            status, headers, body, asked = await _asgi(
                app, method, path,
                [(b"content-type", b"application/json"), (b"content-length", b"4"), *auth],
                [b"{bad"])
            where = f"{service} {method} {path} {auth}"
            assert status == 401, where
            assert asked == 0, f"{where}: the body was read before authentication"
            problem = json.loads(body)
            assert problem["code"] == "unauthorized", where
            assert headers["content-type"] == "application/problem+json", where
            assert headers["connection"] == "close", where
            assert "x-request-id" in headers, where


@pytest.mark.parametrize("service", ["orders", "credit"])
async def test_inbox_without_signature_headers_is_401_unread(system, service):
    status, _, body, asked = await _asgi(
        system.apps[service], "POST", "/v1/inbox",
        [(b"content-type", b"application/json"), (b"content-length", b"2")], [b"{}"])
    assert (status, asked) == (401, 0)
    assert json.loads(body)["code"] == "unauthorized"


async def test_probes_and_documents_need_no_key(system):
    client = system.client("ledger", None)
    for path in ("/health", "/openapi.json"):
        assert (await client.get(path)).status_code == 200, path


@pytest.mark.parametrize("service", SERVICES)
async def test_declared_length_over_the_cap_is_413_unread(system, service):
    app = system.apps[service]
    limit = app.state.settings.max_body_bytes
    method, path = _operations_with_body(app.openapi())[0]
    status, headers, body, asked = await _asgi(
        app, method, path,
        [(b"authorization", f"Bearer {system.keys['admin']}".encode()),
         (b"content-type", b"application/json"), (b"content-length", str(limit + 1).encode())],
        [b"x" * (limit + 1)])
    assert (status, asked) == (413, 0), f"{service} {method} {path}"
    problem = json.loads(body)
    assert problem["code"] == "payload_too_large"
    assert problem["limit_bytes"] == limit
    assert headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("service", "method", "path", "idempotency"), [
    ("credit", "POST", "/v1/customers", False),
    ("credit", "POST", "/v1/customers", True),  # the idempotency layer reads the body first
    ("ledger", "POST", "/v1/payments", True),
    ("notifier", "POST", "/v1/webhook-endpoints", False),
])
async def test_streamed_body_is_refused_as_soon_as_it_passes_the_cap(system, service, method,
                                                                      path, idempotency):
    app = system.apps[service]
    limit = app.state.settings.max_body_bytes
    chunk = b" " * 65536
    chunks = [chunk] * (limit // len(chunk) * 4)  # four times the cap, never all asked for
    headers = [(b"authorization", f"Bearer {system.keys['admin']}".encode()),
               (b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    if idempotency:
        headers.append((b"idempotency-key", b"gate-test"))
    status, _, body, asked = await _asgi(app, method, path, headers, chunks)
    assert status == 413
    assert json.loads(body)["code"] == "payload_too_large"
    assert asked * len(chunk) <= limit + len(chunk), "read on after the cap was passed"


async def test_body_at_the_cap_is_taken(system):
    limit = system.apps["credit"].state.settings.max_body_bytes
    body = json.dumps({"name": "x"})
    padded = body[:-1] + " " * (limit - len(body)) + "}"
    assert len(padded) == limit
    response = await system.client("credit").post(
        "/v1/customers", content=padded, headers={"content-type": "application/json"})
    assert response.status_code != 413, response.text


@pytest.mark.parametrize(("service", "path"), [
    ("credit", "/v1/customers"), ("ledger", "/v1/payments"), ("orders", "/v1/orders"),
    ("notifier", "/v1/webhook-endpoints")])
@pytest.mark.parametrize(("raw", "field"), [
    (b'{"name": "\xff\xfe"}', "body"), (b"\xc3\x28", "body"), (b'{"name": "ok\x80"}', "body"),
    # A UTF-16 surrogate encoded as UTF-8 (CESU-8) decodes, as its JSON escape does; the
    # string field refuses it (no database column can hold it).
    (b'{"name": "\xed\xa0\x80"}', "name"), (b'{"name": "\\ud800"}', "name")])
async def test_invalid_utf8_is_validation_failed(system, service, path, raw, field):
    response = await system.client(service).post(
        path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    if field == "body" or service == "credit":
        assert problem["errors"][0]["field"] == field, problem


@pytest.mark.parametrize("service", SERVICES)
async def test_options_and_unserved_methods_name_every_documented_method(system, service):
    spec = system.apps[service].openapi()
    client = system.client(service)
    for path, methods in spec["paths"].items():
        concrete = path.replace("{", "x").replace("}", "")
        documented = sorted(m.upper() for m in methods)
        for method in ("OPTIONS", *(m for m in ("DELETE", "PUT", "PATCH") if m not in documented)):
            response = await client.request(method, concrete)
            where = f"{service} {method} {path}"
            assert response.status_code == 405, where
            assert response.json()["code"] == "method_not_allowed", where
            assert sorted(response.headers["allow"].split(", ")) == documented, where


@pytest.mark.parametrize(("target", "field"), [
    ("/v1/customers?name=a%00b", "query"), ("/v1/customers/a%00b", "path"),
    ("/v1/customers?limit=1&cursor=%00", "query")])
async def test_nul_in_path_or_query_is_validation_failed(system, target, field):
    response = await system.client("credit").get(target)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": field, "message": "contains NUL"}]


async def test_nul_needs_a_key_first(system):
    assert (await system.client("credit", None).get("/v1/customers/a%00b")).status_code == 401
