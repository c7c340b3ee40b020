"""The webhook SSRF guard and IPv4 addresses hidden in IPv6 ones (issue 12): every form that
leads a translator or relay to a private IPv4 address is refused — in the guard itself, on
POST and PATCH of an endpoint, and at delivery time — and public addresses stay accepted."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from services.notifier import destinations
from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe
from tests.harness import HOOKS_URL

# (IPv6 address, the IPv4 addresses it carries, what it is)
EMBEDDED = [
    ("::127.0.0.1", ["127.0.0.1"], "IPv4-compatible (RFC 4291), loopback"),
    ("::a9fe:a9fe", ["169.254.169.254"], "IPv4-compatible, cloud metadata"),
    ("::ffff:127.0.0.1", ["127.0.0.1"], "IPv4-mapped, loopback"),
    ("::ffff:0:127.0.0.1", ["127.0.0.1"], "IPv4-translated (RFC 2765), loopback"),
    ("::ffff:0:a00:1", ["10.0.0.1"], "IPv4-translated, private"),
    ("64:ff9b::7f00:1", ["127.0.0.1"], "NAT64 well-known prefix, loopback"),
    ("64:ff9b::a00:1", ["10.0.0.1"], "NAT64 well-known prefix, private"),
    ("64:ff9b::a9fe:a9fe", ["169.254.169.254"], "NAT64 well-known prefix, metadata"),
    ("64:ff9b::c0a8:101", ["192.168.1.1"], "NAT64 well-known prefix, private"),
    ("64:ff9b::e000:1", ["224.0.0.1"], "NAT64 well-known prefix, multicast"),
    ("2002:7f00:1::", ["127.0.0.1"], "6to4, loopback"),
    ("2002:a9fe:a9fe::", ["169.254.169.254"], "6to4, metadata"),
    ("2002:a00:1:2::3", ["10.0.0.1"], "6to4, private, with a subnet and host part"),
    ("2002:e000:1::", ["224.0.0.1"], "6to4, multicast"),
    # Teredo: server in bits 32–63, client in the last 32 bits XOR 0xffffffff
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", ["65.54.227.120", "127.0.0.1"],
     "Teredo, loopback client"),
    ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", ["127.0.0.1", "8.8.8.8"], "Teredo, loopback server"),
]

# The forms issue 12 found accepted on POST and PATCH.
REPORTED = ["::127.0.0.1", "::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe", "2002:7f00:1::", "2002:a9fe:a9fe::", "::ffff:0:127.0.0.1",
            "64:ff9b::a9fe:a9fe"]

REFUSED = [
    *(address for address, _, _ in EMBEDDED),
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215): not global, whatever it embeds
    "64:ff9b:1::808:808",
    "64:ff9b:1:7f00:0:100::",  # 127.0.0.1 at the /48 position of RFC 6052
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1", "2001:db8::1",
    "127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
]

ACCEPTED = [
    "2606:4700::1111",   # Cloudflare DNS
    "2a00:1450:4001:81c::200e",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "64:ff9b::101:101",  # NAT64 of 1.1.1.1
    "::ffff:8.8.8.8",    # IPv4-mapped public
    "8.8.8.8", "1.1.1.1",
]


def literal_url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:8443/hook"


def resolving(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """Make `socket.getaddrinfo` answer `answers[host]`; other hosts resolve as usual."""
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


# ---------------------------------------------------------------- the guard itself

@pytest.mark.parametrize(("address", "ipv4", "form"), EMBEDDED, ids=[e[2] for e in EMBEDDED])
def test_the_embedded_ipv4_is_found(address, ipv4, form):
    found = destinations.embedded_ipv4(ipaddress.IPv6Address(address))
    assert [str(a) for a in found] == ipv4, form


@pytest.mark.parametrize("address", ["2606:4700::1111", "fe80::1", "::ffff:0:0:0:1", "2003::1"])
def test_other_ipv6_addresses_carry_no_ipv4(address):
    assert destinations.embedded_ipv4(ipaddress.IPv6Address(address)) == []


@pytest.mark.parametrize("address", REFUSED)
async def test_non_public_addresses_are_refused(address):
    assert destinations.address_problem(ipaddress.ip_address(address)) is not None
    problem = await destinations.private_address_problem(literal_url(address), dns_timeout=1)
    assert problem is not None and problem.startswith("the address ")


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:a9fe:a9fe::", "::ffff:0:a00:1"])
def test_the_reason_names_the_embedded_ipv4(address):
    (ipv4,) = destinations.embedded_ipv4(ipaddress.IPv6Address(address))
    assert destinations.address_problem(ipaddress.ip_address(address)) == (
        f"the address embeds the IPv4 address {ipv4}, which is private, loopback, "
        "link-local or reserved")


@pytest.mark.parametrize("address", ACCEPTED)
async def test_public_addresses_are_accepted(address):
    assert destinations.address_problem(ipaddress.ip_address(address)) is None
    assert await destinations.private_address_problem(literal_url(address), dns_timeout=1) is None


@pytest.mark.parametrize("address", REFUSED)
async def test_a_host_resolving_to_a_non_public_form_is_refused(monkeypatch, address):
    resolving(monkeypatch, {"hooks.example.com": ["93.184.215.14", address]})
    problem = await destinations.private_address_problem(
        "https://hooks.example.com/x", dns_timeout=1)
    assert problem is not None
    canonical = ipaddress.ip_address(address)
    assert problem.startswith(f"the host resolves to a non-public address ({canonical})")


async def test_a_host_resolving_to_public_addresses_is_accepted(monkeypatch):
    resolving(monkeypatch, {"hooks.example.com": ACCEPTED})
    assert await destinations.private_address_problem(
        "https://hooks.example.com/x", dns_timeout=1) is None


# ---------------------------------------------------------------- through the API

@pytest.fixture
def system_overrides() -> dict[str, dict]:
    return {"notifier": {"webhook_allow_private": False}}


def assert_url_refused(response) -> None:
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"
    assert [e["field"] for e in response.json()["errors"]] == ["url"]


@pytest.mark.parametrize("address", [
    *REPORTED, "::ffff:127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2002:e000:1::"])
async def test_post_and_patch_refuse_an_embedded_private_ipv4(system, address):
    admin = system.client("notifier", "admin")
    assert_url_refused(await admin.post("/v1/webhook-endpoints", json={"url": literal_url(address)}))

    endpoint = await subscribe(system, "/kept")
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert_url_refused(await admin.patch(path, json={"url": literal_url(address)}))
    assert (await admin.get(path)).json()["url"] == HOOKS_URL + "/kept"


async def test_post_and_patch_refuse_a_host_resolving_to_an_embedded_form(system, monkeypatch):
    resolving(monkeypatch, {"nat64.example.com": ["64:ff9b::a9fe:a9fe"]})
    admin = system.client("notifier", "admin")
    url = "https://nat64.example.com/hook"
    assert_url_refused(await admin.post("/v1/webhook-endpoints", json={"url": url}))
    endpoint = await subscribe(system)
    assert_url_refused(await admin.patch(f"/v1/webhook-endpoints/{endpoint['id']}",
                                         json={"url": url}))


async def test_post_and_patch_accept_public_addresses(system, monkeypatch):
    resolving(monkeypatch, {"hooks.example.com": ["2606:4700::1111", "64:ff9b::808:808"]})
    admin = system.client("notifier", "admin")
    urls = [literal_url("2606:4700::1111"), literal_url("64:ff9b::808:808"),
            "https://hooks.example.com/hook"]
    for url in urls:
        created = await admin.post("/v1/webhook-endpoints", json={"url": url})
        assert created.status_code == 201, (url, created.text)
    endpoint = await subscribe(system)
    for url in urls:
        patched = await admin.patch(f"/v1/webhook-endpoints/{endpoint['id']}", json={"url": url})
        assert patched.status_code == 200, (url, patched.text)
        assert patched.json()["url"] == url


@pytest.mark.parametrize("system_overrides", [{"notifier": {"webhook_allow_private": True}}])
async def test_webhook_allow_private_still_allows_every_form(system, monkeypatch):
    """O2C_WEBHOOK_ALLOW_PRIVATE (tests, benches, dev) allows loopback sinks, these forms too."""
    admin = system.client("notifier", "admin")
    created = await admin.post("/v1/webhook-endpoints", json={
        "url": literal_url("64:ff9b::7f00:1"), "event_types": ["invoice.paid"]})
    assert created.status_code == 201, created.text
    endpoint = await subscribe(system, "/allowed")
    resolving(monkeypatch, {"hooks.test": ["64:ff9b::7f00:1"]})
    await ingest(system, envelope(system))
    await system.pump()
    assert [r["path"] for r in system.receiver.requests] == ["/allowed"]
    (delivery,) = await deliveries(system, endpoint_id=endpoint["id"])
    assert delivery["status"] == "succeeded"


# ---------------------------------------------------------------- at delivery time

@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "::ffff:0:a9fe:a9fe", "2002:a00:1::",
                                     "::a9fe:a9fe", "64:ff9b:1::a9fe:a9fe"])
async def test_a_host_that_now_resolves_to_an_embedded_form_is_not_sent_to(
        system, monkeypatch, address):
    """The URL was accepted (its host did not resolve); the delivery resolves it again."""
    endpoint = await subscribe(system, "/rebound")
    resolving(monkeypatch, {"hooks.test": [address]})
    await ingest(system, envelope(system))
    assert await system.pump() == 1
    assert system.receiver.requests == []
    (delivery,) = await deliveries(system, endpoint_id=endpoint["id"])
    assert delivery["status"] == "pending"
    error = delivery["attempts"][0]["error"]
    canonical = ipaddress.ip_address(address)
    assert error.startswith(f"not sent: the host resolves to a non-public address ({canonical})")
