"""API-key authentication, roles and the sales row-level rule (DESIGN.md §2–3).

Keys are looked up by their SHA-256 in the TOML keys file (re-read when it changes); the
service key (`O2C_SERVICE_KEY`) is principal `service` with role `service`. A key itself is
never stored, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.errors import Forbidden, NotFound, Unauthorized


class Role(StrEnum):
    admin = "admin"
    sales = "sales"
    production = "production"
    technical = "technical"
    quality = "quality"
    finance = "finance"
    credit_manager = "credit_manager"
    auditor = "auditor"
    service = "service"


HUMAN_ROLES = tuple(r for r in Role if r is not Role.service)
READERS = (Role.auditor,)  # read-only everywhere


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    salesperson_id: str | None = None

    def has(self, *roles: str) -> bool:
        return Role.admin in self.roles or any(r in self.roles for r in roles)

    @property
    def restricted_to_salesperson(self) -> str | None:
        """The salesperson whose rows alone this principal may see, or None for all rows.

        A sales principal with a salesperson id is limited to that salesperson's orders,
        invoices and customers; admin, service and every other role see everything.
        """
        if not self.salesperson_id or Role.sales not in self.roles:
            return None
        broader = self.roles - {Role.sales}
        return None if broader & {Role.admin, Role.service, Role.auditor, Role.finance,
                                  Role.credit_manager} else self.salesperson_id

    def salesperson_scope(self, requested: str | None) -> tuple[bool, str | None]:
        """Apply the row-level rule to a requested salesperson (a list filter or a new row's).

        Returns whether anything is visible and the salesperson to use: a restricted principal
        gets its own id, and nothing when it asked for another salesperson's rows.
        """
        own = self.restricted_to_salesperson
        if own is None:
            return True, requested
        return requested in (None, own), own

    def can_see(self, salesperson_id: str | None) -> bool:
        limit = self.restricted_to_salesperson
        return limit is None or limit == salesperson_id


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(prefix: str = "o2c") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class KeyRecord:
    principal: str
    roles: frozenset[str]
    salesperson_id: str | None


class KeyStore:
    """The keys file, indexed by SHA-256, reloaded when its modification time changes."""

    def __init__(self, path: Path | None, service_key: str | None) -> None:
        self.path = path
        self._service_hash = hash_key(service_key) if service_key else None
        self._mtime: float | None = None
        self._keys: dict[str, KeyRecord] = {}

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._keys, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        data = tomllib.loads(self.path.read_text())
        keys: dict[str, KeyRecord] = {}
        for entry in data.get("keys", []):
            roles = frozenset(entry.get("roles", []))
            unknown = roles - {r.value for r in Role}
            if unknown:
                raise ValueError(f"keys file {self.path}: unknown roles {sorted(unknown)}")
            keys[entry["key_sha256"].lower()] = KeyRecord(
                entry["principal"], roles, entry.get("salesperson_id")
            )
        self._keys, self._mtime = keys, mtime

    def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
        if self._service_hash and hmac.compare_digest(digest, self._service_hash):
            return Principal("service", frozenset({Role.service}))
        self._reload()
        record = self._keys.get(digest)
        if record is None:
            return None
        return Principal(record.principal, record.roles, record.salesperson_id)


def append_key(path: Path, key: str, principal: str, roles: list[str],
               salesperson_id: str | None = None) -> None:
    """Append a key's SHA-256 entry to the TOML keys file (the key itself is not written)."""
    unknown = set(roles) - {r.value for r in Role}
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["[[keys]]", f'key_sha256 = "{hash_key(key)}"', f"principal = {_toml_str(principal)}",
             "roles = [" + ", ".join(_toml_str(r) for r in roles) + "]"]
    if salesperson_id:
        lines.append(f"salesperson_id = {_toml_str(salesperson_id)}")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n\n")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized()
    resolved: Principal | None = getattr(request.state, "principal", None)  # by idempotency
    if resolved is not None:
        return resolved
    principal = request.app.state.keys.lookup(credentials.credentials)
    if principal is None:
        raise Unauthorized("The API key is not valid.")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(*roles: str):
    """Dependency: the principal must hold one of `roles` (admin always may)."""

    allowed = tuple(str(r) for r in roles)

    async def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.has(*allowed):
            raise Forbidden(
                f"This operation needs one of the roles: {', '.join(allowed) or 'admin'}."
            )
        return principal

    _check.__name__ = "require_" + "_".join(allowed or ("admin",))
    return Depends(_check)


def ensure_visible(principal: Principal, salesperson_id: str | None, what: str, ident: str) -> None:
    """The sales row-level rule: rows of another salesperson look as if they did not exist."""
    if not principal.can_see(salesperson_id):
        raise NotFound(f"{what} {ident} not found.")
