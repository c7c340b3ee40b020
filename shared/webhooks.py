"""Standard Webhooks signing and verification (`webhook-id`, `-timestamp`, `-signature`).

The secret is `whsec_` + base64 of 24 random bytes; the signature is
`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. Subscribers (credit, orders, the
tests' receivers) verify with `verify`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 300


class InvalidSignature(Exception):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def verify(secrets_: str | list[str], headers: Mapping[str, str], body: bytes,
           now: datetime | None = None, tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise `InvalidSignature` unless one of the signatures matches one of the secrets."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("missing or malformed webhook headers") from exc
    if now is not None and abs(now.timestamp() - timestamp) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance window")
    candidates = [secrets_] if isinstance(secrets_, str) else secrets_
    for secret in candidates:
        expected = sign(secret, msg_id, timestamp, body)
        if any(hmac.compare_digest(expected, s) for s in signatures):
            return
    raise InvalidSignature("no signature matches")
