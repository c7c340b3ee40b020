"""Where webhooks may go: http(s) URLs, and no private, loopback, link-local or reserved
addresses unless allowed (an SSRF guard, applied when a URL is set and again at delivery).

An IPv6 address that carries an IPv4 address is judged by that IPv4 address too: IPv4-mapped
(`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, RFC 4291), IPv4-translated
(`::ffff:0:a.b.c.d`, RFC 2765), NAT64 (`64:ff9b::a.b.c.d`, RFC 6052), 6to4 (`2002::/16`)
and Teredo (`2001::/32`, server and client), because a translator or relay on the way turns
it into that IPv4 address. `[64:ff9b::7f00:1]` is 127.0.0.1 behind a NAT64 gateway.

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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes whose last 32 bits are an IPv4 address a translator on the way connects to.
# (IPv4-mapped, ::ffff:0:0/96, is `IPv6Address.ipv4_mapped`; 6to4 and Teredo have their own.)
_IPV4_IN_LAST_32_BITS = (
    ipaddress.IPv6Network("::/96"),            # IPv4-compatible (deprecated, RFC 4291)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # IPv4-translated (SIIT, RFC 2765)
    ipaddress.IPv6Network("64:ff9b::/96"),     # NAT64 well-known prefix (RFC 6052)
)
# NAT64 for local use (RFC 8215): not globally reachable (IANA), refused whatever it embeds —
# an operator may place the IPv4 address at any RFC 6052 position (/48 … /96) in it. Python's
# `is_global` knows this only from 3.12.4/3.13, so it is listed here.
_LOCAL_USE_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (NAT64, 6to4, Teredo, …); often none."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if any(address in network for network in _IPV4_IN_LAST_32_BITS):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client); Python undoes the client's obfuscation
    return found


NON_PUBLIC = "is private, loopback, link-local or reserved"


def _public(address: IPAddress) -> bool:
    return address.is_global and not address.is_multicast


def _problem(address: IPAddress) -> str | None:
    """What is wrong with `address` as a verb phrase ("is private, …"), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # on a dual-stack socket it is the IPv4 address
            return None if _public(address.ipv4_mapped) else NON_PUBLIC
        if address in _LOCAL_USE_NAT64:
            return f"is in the local-use NAT64 prefix {_LOCAL_USE_NAT64}"
        if not _public(address):
            return NON_PUBLIC
        for ipv4 in embedded_ipv4(address):
            if not _public(ipv4):
                return f"embeds the IPv4 address {ipv4}, which {NON_PUBLIC}"
        return None
    return None if _public(address) else NON_PUBLIC


def address_problem(address: IPAddress) -> str | None:
    """Why a webhook may not go to `address`, or None for a public unicast address."""
    problem = _problem(address)
    return None if problem is None else f"the address {problem}"


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
        return address_problem(literal)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = await asyncio.wait_for(
            asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
            timeout=dns_timeout)
    except (OSError, TimeoutError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        problem = _problem(address)
        if problem is not None:
            detail = "" if problem == NON_PUBLIC else f": it {problem}"
            return f"the host resolves to a non-public address ({address}){detail}"
    return None
