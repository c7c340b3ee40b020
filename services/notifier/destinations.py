"""Where webhooks may go: http(s) URLs, and no private, loopback, link-local or reserved
addresses unless allowed (an SSRF guard, applied when a URL is set and again at delivery).

A hostname is resolved in a thread with a short timeout; one that does not resolve (yet) is
accepted, because the delivery-time check resolves it again before anything is sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook destination at all, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "not a valid URL"
    if parts.scheme.lower() not in SCHEMES:
        return "the scheme must be http or https"
    if not parts.hostname:
        return "the URL needs a host"
    return None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


async def private_address_problem(url: str, *, dns_timeout: float) -> str | None:
    """Why `url` points at a non-public address, or None (also when its host does not resolve)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "the host is loopback"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return "the address is private, loopback, link-local or reserved" if _refused(literal) else None
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = await asyncio.wait_for(
            asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
            timeout=dns_timeout)
    except (OSError, TimeoutError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if _refused(address):
            return f"the host resolves to a non-public address ({address})"
    return None
