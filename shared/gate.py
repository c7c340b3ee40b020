"""The gate every request passes before anything reads its body: authentication and a size cap.

A pure ASGI middleware, inside `RequestContextMiddleware` (so its answers carry the request id
and are counted) and outside everything that reads a body (idempotency, FastAPI's parsing):

1. **Authenticate first.** Every path but the probes and the API documents needs
   `Authorization: Bearer <key>` naming a known key, and `POST /v1/inbox` needs the three
   Standard Webhooks headers (its signature covers the body, so it is verified after the
   body is read, under the cap). Without them the answer is 401 at once: the body is never
   read and the connection is closed, so a client cannot make the process hold a body it
   has no right to send. The principal found is put in the scope; `current_principal` does
   not look it up again. Roles are checked later, by the route's dependencies.
2. **Bound the body.** A declared `Content-Length` above the cap (`O2C_MAX_BODY_BYTES`,
   1 MiB by default) is refused before a byte is read; a body sent without a length (chunked)
   is counted while it streams and refused the moment it passes the cap. Either answers 413
   problem+json `payload_too_large`; nothing larger than the cap is ever buffered. A service
   may give one route a larger cap (`LargeBody`: ledger's import of open items), which then
   applies only to principals holding one of the route's roles: anyone else keeps the
   ordinary cap, so a key without the right to import cannot make the process hold more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import KeyStore
from shared.docs import ASSETS as DOCS_ASSETS
from shared.errors import PayloadTooLarge, Problem, Unauthorized, ValidationFailed, problem_response
from shared.routing import name_route

# Paths served without a key: liveness, readiness, metrics and the API documents (and, below
# DOCS_ASSETS, the scripts and styles of their pages).
PUBLIC_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/docs",
                          "/docs/oauth2-redirect", "/redoc"})
INBOX_PATH = "/v1/inbox"
_WEBHOOK_HEADERS = (b"webhook-id", b"webhook-timestamp", b"webhook-signature")


@dataclass(frozen=True)
class LargeBody:
    """`POST path` takes bodies up to `limit` bytes from principals with one of `roles`."""

    path: str
    limit: int
    roles: tuple[str, ...]


class BodyTooLarge(HTTPException):
    """Raised from the request channel when the body passes the cap (FastAPI re-raises an
    HTTPException met while parsing, so this reaches the 413 handler or the gate)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large(limit).detail)
        self.limit = limit


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.",
                           limit_bytes=limit)


class RequestGate:
    def __init__(self, app: ASGIApp, *, keys: Callable[[Scope], KeyStore], max_body_bytes: int,
                 large_bodies: Sequence[LargeBody] = ()) -> None:
        self.app = app
        self.keys = keys
        self.limit = max_body_bytes
        self.large = {large.path: large for large in large_bodies}

    def _limit(self, scope: Scope) -> int:
        large = self.large.get(scope["path"])
        if large is None or scope["method"] != "POST":
            return self.limit
        principal = scope.get("state", {}).get("principal")
        return large.limit if principal is not None and principal.has(*large.roles) else self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        path = scope["path"]
        if path not in PUBLIC_PATHS and not path.startswith(DOCS_ASSETS + "/"):
            refusal = self._authenticate(scope, headers, path)
            if refusal is not None:
                await _early_answer(scope, receive, send, refusal, headers)
                return
        nul = _nul_in_target(scope)
        if nul is not None:
            await _early_answer(scope, receive, send, nul, headers)
            return
        limit = self._limit(scope)
        declared = _content_length(headers)
        if declared is not None and declared > limit:
            await _early_answer(scope, receive, send, _too_large(limit), headers)
            return

        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, watch)
        except BodyTooLarge:
            if started:
                raise
            await _early_answer(scope, receive, send, _too_large(limit), headers)

    def _authenticate(self, scope: Scope, headers: list[tuple[bytes, bytes]], path: str) -> Problem | None:
        """None when the request may go on (principal in the scope), else the 401 to answer."""
        if path == INBOX_PATH and scope["method"] == "POST":
            names = {name for name, _ in headers}
            if all(h in names for h in _WEBHOOK_HEADERS):
                return None
            return Unauthorized("The inbox needs the Standard Webhooks headers webhook-id, "
                                "webhook-timestamp and webhook-signature.")
        auth = b""
        for name, value in headers:
            if name == b"authorization":
                auth = value
                break
        text = auth.decode("latin-1")
        scheme, _, key = text.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return Unauthorized()
        principal = self.keys(scope).lookup(key)
        if principal is None:
            return Unauthorized("The API key is not valid.")
        scope.setdefault("state", {})["principal"] = principal
        return None


def _nul_in_target(scope: Scope) -> Problem | None:
    """A NUL (%00) in the path or query: no identifier or filter holds one, and PostgreSQL
    refuses it in any text it is compared with."""
    for where, raw in (("path", scope.get("raw_path") or scope["path"].encode()),
                       ("query", scope.get("query_string", b""))):
        if b"%00" in raw or b"\x00" in raw:
            return ValidationFailed(f"The {where} may not contain the NUL character (%00).",
                                    errors=[{"field": where, "message": "contains NUL"}])
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def _early_answer(scope: Scope, receive: Receive, send: Send, problem: Problem,
                        headers: list[tuple[bytes, bytes]]) -> None:
    """Answer without reading (the rest of) the body; close the connection if one was sent,
    so the server stops taking it in."""
    name_route(scope)
    if _has_body(headers):
        problem.headers = {**(problem.headers or {}), "Connection": "close"}
    await problem_response(problem)(scope, receive, send)
