"""The OpenAPI document as DESIGN.md §3 writes the contract, for clients generated from it.

FastAPI documents what a route declares; what the shared plumbing does for every route is
added here, once, when the document is first built:

- every 4xx/5xx answer is `application/problem+json` with the `ProblemBody` schema (FastAPI's
  own 422 entry, `HTTPValidationError` under `application/json`, is a body never sent);
- every POST takes `Idempotency-Key` (shared.idempotency) and may answer
  `Idempotent-Replayed: true`;
- answers whose body carries a `version` send it as `ETag` (shared.versioning).

`If-Match` is read by the routes that check it, so they declare it: `openapi_extra=IF_MATCH`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from shared.errors import PROBLEM_JSON, ProblemBody

_REF = "#/components/schemas/"
PROBLEM_SCHEMA = {"$ref": _REF + "ProblemBody"}

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Same key and same body within 24 h replays the stored response "
                   "(`Idempotent-Replayed: true`); the same key with another body is 422 "
                   "`idempotency_key_reused`. Keys are scoped per principal.",
}
IF_MATCH_PARAMETER: dict[str, Any] = {
    # No length or pattern: any other value is a 412, so a client is told nothing stricter.
    "name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The `ETag` you read (e.g. `\"3\"`); another version is 412 `version_conflict`.",
}
# `openapi_extra` of a route that checks If-Match (FastAPI appends the parameter to its own).
IF_MATCH: dict[str, Any] = {"parameters": [IF_MATCH_PARAMETER]}

ETAG_HEADER: dict[str, Any] = {
    "description": "The resource's `version`, quoted: send it back as `If-Match`.",
    "schema": {"type": "string", "example": '"1"'},
}
REPLAYED_HEADER: dict[str, Any] = {
    "description": "`true` when this is the stored response of an earlier request with the "
                   "same `Idempotency-Key`.",
    "schema": {"type": "string", "enum": ["true"]},
}
_UNSENT = ("HTTPValidationError", "ValidationError")
# Bodies routes read themselves (`read_body`): their schemas join the components of every
# document whose paths name them.
_READ_BODIES: dict[str, type[BaseModel]] = {}


def read_body(json_model: type[BaseModel], **other_media: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` of a route that reads its body itself (after its role check, or in more
    than one media type): the body is `json_model` as JSON, or one of `other_media`."""
    _READ_BODIES[json_model.__name__] = json_model
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": _REF + json_model.__name__}}, **other_media}}}


def document_contract(app: FastAPI) -> None:
    """Make `app.openapi()` document the problem bodies and headers every route has."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemBody.model_json_schema(ref_template=_REF + "{model}", mode="serialization")
    for member in problem["properties"].values():
        # An extension member is absent when it does not apply, not null: no default, or
        # openapi-typescript types it as always present.
        member.pop("default", None)
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemBody"] = problem
    for methods in spec.get("paths", {}).values():
        for method, op in methods.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            if method == "post":
                _add_parameter(op, IDEMPOTENCY_KEY)
                # a key of 0 or 256+ characters, or reused with another body
                op["responses"].setdefault("422", {"description": "Validation failed"})
            for code, response in op["responses"].items():
                if code[0] in "45":
                    response["content"] = {PROBLEM_JSON: {"schema": dict(PROBLEM_SCHEMA)}}
                    continue
                headers = response.setdefault("headers", {})
                if _carries_version(spec, response):
                    headers.setdefault("ETag", ETAG_HEADER)
                if method == "post":
                    headers.setdefault("Idempotent-Replayed", REPLAYED_HEADER)
                if not headers:
                    del response["headers"]
    text = repr(spec["paths"])
    for name, model in _READ_BODIES.items():
        if f"'{_REF}{name}'" in text:
            body = model.model_json_schema(ref_template=_REF + "{model}")
            schemas.update(body.pop("$defs", {}))
            schemas[name] = body
    for name in _UNSENT:
        if f"'{_REF}{name}'" not in text:
            schemas.pop(name, None)
    return spec


def _add_parameter(op: dict[str, Any], parameter: dict[str, Any]) -> None:
    parameters = op.setdefault("parameters", [])
    if not any(p.get("in") == "header" and p.get("name", "").lower() == parameter["name"].lower()
               for p in parameters):
        parameters.append(parameter)


def _carries_version(spec: dict[str, Any], response: dict[str, Any]) -> bool:
    """The body is one resource with a `version` (a list page sends no ETag)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if not ref.startswith(_REF):
        return False
    target = spec["components"]["schemas"].get(ref.removeprefix(_REF), {})
    return "version" in target.get("properties", {})
