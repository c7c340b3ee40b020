"""RFC 9457 problem+json for every error path, with the stable codes of DESIGN.md §3.

Services raise `Problem` subclasses; one set of handlers renders every error the same way,
including FastAPI's validation errors, malformed JSON, unknown routes, wrong methods and
unexpected exceptions (a 500 that names the request id and nothing else).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.observability import current_request_id
from shared.routing import allowed_methods

log = logging.getLogger("o2c.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://o2c.dev/problems/"


def _line_when_present(schema: dict[str, Any]) -> None:
    """`line` is sent only by imports: absent elsewhere, never null (so generated clients type
    it as an optional integer)."""
    schema["properties"]["line"] = {k: v for k, v in schema["properties"]["line"].items()
                                    if k not in ("anyOf", "default")} | {"type": "integer"}
    schema["required"] = [name for name in schema.get("required", []) if name != "line"]


class FieldError(BaseModel):
    model_config = ConfigDict(json_schema_extra=_line_when_present)

    field: str
    message: str
    line: int | None = Field(default=None, description="Imports: the row's line in the file "
                                                       "(CSV, the header is line 1) or its "
                                                       "position from 1 (JSON); 0 for the body "
                                                       "as a whole.")


class ProblemBody(BaseModel):
    """The problem+json body (RFC 9457); extension members depend on the code, and others may
    be added: a client keeps what it does not know."""

    model_config = ConfigDict(extra="allow", title="ProblemBody")

    type: str = Field(description="A URI naming the problem type, e.g. "
                                  "`https://o2c.dev/problems/not-found`.")
    title: str
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request, for a person to read.")
    code: str = Field(description="Stable machine code: validation_failed, not_found, unauthorized, "
                                  "forbidden, invalid_transition, guard_failed, version_conflict, "
                                  "idempotency_key_reused, conflict, dependency_unavailable, ...")
    errors: list[FieldError] | None = Field(
        default=None, description="validation_failed: every field refused, with why.")
    request_id: str | None = Field(default=None, description="The request's `X-Request-ID`.")
    guard: str | None = Field(default=None, description="guard_failed: the guard that refused.")
    reason: str | None = Field(default=None, description="guard_failed: why it refused.")
    state: str | None = Field(default=None, description="invalid_transition: the current state.")
    allowed: list[str] | None = Field(
        default=None, description="invalid_transition: the triggers the current state allows.")
    limit_bytes: int | None = Field(default=None, description="payload_too_large: the body limit.")


class Problem(Exception):
    """A domain error that renders as problem+json. Subclasses fix status, code, title."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        reserved = extra.keys() & {"type", "title", "status", "detail", "code"}
        assert not reserved, f"extension members may not overwrite {sorted(reserved)}"
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code.replace("_", "-"),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        rid = current_request_id()
        if rid:
            body["request_id"] = rid
        return body


class ValidationFailed(Problem):
    status, code, title = 422, "validation_failed", "Validation failed"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "A valid API key is required.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Forbidden"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class InvalidTransition(Problem):
    status, code, title = 409, "invalid_transition", "Invalid transition"

    def __init__(self, detail: str, *, state: str, allowed: list[str], **kw: Any) -> None:
        super().__init__(detail, state=state, allowed=allowed, **kw)


class GuardFailed(Problem):
    status, code, title = 409, "guard_failed", "Guard failed"

    def __init__(self, guard: str, reason: str, **kw: Any) -> None:
        super().__init__(reason, guard=guard, reason=reason, **kw)


class VersionConflict(Problem):
    status, code, title = 412, "version_conflict", "Version conflict"


class IdempotencyKeyReused(Problem):
    status, code, title = 422, "idempotency_key_reused", "Idempotency key reused"


class DependencyUnavailable(Problem):
    status, code, title = 503, "dependency_unavailable", "Dependency unavailable"


class PayloadTooLarge(Problem):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class MethodNotAllowed(Problem):
    status, code, title = 405, "method_not_allowed", "Method not allowed"


class InternalError(Problem):
    status, code, title = 500, "internal_error", "Internal server error"


def unexpected_problem(exc: BaseException, what: str) -> Problem:
    """The problem an unhandled exception answers, logged: 503 and one WARNING line when the
    database is only busy (SQLite's lock, or the writer's turn not had in time: retry), else
    500 naming nothing internal, with the traceback in the log."""
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout) or (
            isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)):
        log.warning("database busy on %s: %s", what, type(exc).__name__)
        return DependencyUnavailable("The database is busy; retry the request.",
                                     dependency="database", headers={"Retry-After": "1"})
    if isinstance(exc, OSError) or isinstance(exc, DBAPIError) and (
            exc.connection_invalidated or _database_unavailable(exc.orig)):
        # A pooled connection found dead on use (the database restarted: connections are not
        # pinged on checkout, shared.db), or the database refusing connections (down, starting,
        # shutting down, out of connection slots): retry.
        log.warning("database unavailable on %s: %s", what,
                    getattr(getattr(exc, "orig", None), "sqlstate", None) or type(exc).__name__)
        return DependencyUnavailable("The database is unavailable; retry the request.",
                                     dependency="database", headers={"Retry-After": "1"})
    log.error("unhandled error on %s", what, exc_info=exc)
    return InternalError("An unexpected error occurred; quote the request id to support.")


# PostgreSQL SQLSTATE classes of a database that cannot serve right now: connection exception
# (08), insufficient resources (53: too many clients, out of memory, disk full), operator
# intervention (57P: shutting down, starting up).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def _database_unavailable(orig: BaseException | None) -> bool:
    state = getattr(orig, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers=problem.headers, media_type=PROBLEM_JSON
    )


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        source, parts = parts[0], parts[1:]
        if not parts:
            return source
        if source != "body":
            parts = [f"{source}.{parts[0]}", *parts[1:]]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def validation_errors(exc: RequestValidationError) -> Problem:
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        return ValidationFailed(
            "The request body is not valid JSON.",
            errors=[{"field": "body", "message": "malformed JSON"}],
        )
    errors = []
    for e in raw:
        message = e.get("msg", "invalid")
        if e.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.append({"field": _field_path(e.get("loc", ())), "message": message})
    return ValidationFailed(f"{len(errors)} field(s) failed validation.", errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error path of `app` as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(validation_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            problem: Problem = NotFound(f"No resource at {request.url.path}.")
        elif exc.status_code == 405:
            # Routing names the methods of the first route matching the path only; the Allow
            # header lists every method served there.
            allow = ", ".join(allowed_methods(request.app.routes, request.url.path))
            problem = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}; allowed: {allow}.",
                headers={**dict(exc.headers or {}), "Allow": allow},
            )
        elif exc.status_code == 413:
            # Closing the connection stops the server taking in the rest of the body.
            problem = PayloadTooLarge(str(exc.detail), limit_bytes=getattr(exc, "limit", None),
                                      headers={"Connection": "close"})
        elif exc.status_code == 400 and isinstance(exc.__cause__, UnicodeError):
            # FastAPI's answer to a body that does not decode (invalid UTF-8): an input error
            # like malformed JSON, so the same answer.
            problem = ValidationFailed(
                "The request body is not valid JSON: it is not UTF-8 text.",
                errors=[{"field": "body", "message": "not UTF-8 text"}])
        else:
            problem = Problem(str(exc.detail), headers=dict(exc.headers or {}))
            problem.status = exc.status_code
            problem.code = "http_error"
            problem.title = "HTTP error"
        return problem_response(problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(unexpected_problem(exc, f"{request.method} {request.url.path}"))


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json errors for the given statuses.

    The `ProblemBody` schema they name is added to every service's document by shared.openapi.
    """
    titles = {
        400: "Bad request", 401: "Missing or invalid API key", 403: "Role not allowed",
        404: "Not found", 409: "Conflict", 412: "If-Match does not match the version",
        413: "The body is larger than the limit", 415: "The body's Content-Type is not one "
                                                          "this operation takes",
        422: "Validation failed",
        503: "A dependency did not answer",
    }
    return {
        code: {"description": titles.get(code, "Error"),
               "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}}}
        for code in codes
    }
