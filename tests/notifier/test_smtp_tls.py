"""SMTP credentials never travel in clear (issue 12): with a username configured, the email
worker authenticates only on an implicit-TLS or STARTTLS-upgraded connection; otherwise it
sends no AUTH and no message, and the notification stays pending with the reason. Without
credentials, plain SMTP (a local relay) still delivers. A real aiosmtpd server on 127.0.0.1
records every AUTH and MAIL command it gets and whether the session was encrypted then."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from tests.fixtures.dunning import (
    SmtpServer,
    by_role,
    customer,
    invoice,
    notifications,
    overdue_event,
    overrides,
    salesperson,
)
from tests.fixtures.notifier import ingest

USERNAME = "o2c-mailer"
PASSWORD = "s3cret-smtp-password"
CREDENTIALS = {"smtp_username": USERNAME, "smtp_password": PASSWORD}
FINANCE = {"name": "Li Na", "role": "finance", "email": "li.na@brightway.example"}
NO_STARTTLS = ("the SMTP server did not offer STARTTLS; o2c does not send credentials over an "
               "unencrypted connection")


def encrypted(server: SMTP) -> bool:
    """Whether the session is in TLS now (implicit, or after STARTTLS)."""
    return server.transport is not None and server.transport.get_extra_info("sslcontext") is not None


class RecordingSMTP(SMTP):
    """aiosmtpd's server, noting each AUTH and MAIL command and whether TLS was on for it."""

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command name
        self.event_handler.commands.append(("AUTH", encrypted(self)))
        await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802
        self.event_handler.commands.append(("MAIL", encrypted(self)))
        await super().smtp_MAIL(arg)


class RecordingController(Controller):
    def factory(self) -> SMTP:
        return RecordingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class AuthSmtpServer(SmtpServer):
    """Advertises AUTH PLAIN/LOGIN even without TLS (`auth_require_tls=False`) and accepts any
    credentials, keeping them; offers STARTTLS with `starttls`, or speaks TLS from the first
    byte with `implicit_tls`."""

    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    commands: list[tuple[str, bool]] = field(default_factory=list)
    credentials: list[tuple[str, str, str, bool]] = field(default_factory=list)

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        self.credentials.append((mechanism, auth_data.login.decode(),
                                 auth_data.password.decode(), encrypted(server)))
        return AuthResult(success=True)

    def start(self) -> None:
        if self._controller is None:
            self._controller = RecordingController(
                self, hostname="127.0.0.1", port=self.port, authenticator=self.authenticate,
                auth_require_tls=False, tls_context=self.starttls, ssl_context=self.implicit_tls)
            self._controller.start()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command) and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30)
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def server_tls() -> str | None:
    """What the server offers: None (plain SMTP with AUTH), "starttls" or "implicit"."""
    return None


@pytest.fixture
def mailer() -> dict[str, Any]:
    """The notifier's SMTP settings besides host and port."""
    return dict(CREDENTIALS)


@pytest.fixture
def smtp(request: pytest.FixtureRequest, server_tls: str | None, monkeypatch: pytest.MonkeyPatch):
    context = None
    if server_tls is not None:
        certificate = request.getfixturevalue("certificate")
        context = server_context(certificate)
        # the worker validates certificates (the default): trust the test one, as a CA would
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    server = AuthSmtpServer(starttls=context if server_tls == "starttls" else None,
                            implicit_tls=context if server_tls == "implicit" else None)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def system_overrides(smtp: AuthSmtpServer, mailer: dict[str, Any]) -> dict[str, dict]:
    return overrides(smtp, **mailer)


async def pending_emails(system) -> None:
    """A day-1 overdue invoice → notifications for the salesperson and finance, not sent yet."""
    await salesperson(system)
    customer_id = await customer(system, contacts=[FINANCE])
    inv = await invoice(system, customer_id, due_in_days=-1)
    await ingest(system, overdue_event(inv["id"], 1))
    assert await system.state("notifier").dunning.run_once() == 1
    items = by_role(await notifications(system))
    assert {n["status"] for n in items.values()} == {"pending"}


@pytest.mark.parametrize(("mailer", "reason"), [
    (CREDENTIALS, NO_STARTTLS),  # the default O2C_SMTP_STARTTLS: upgrade when offered
    ({**CREDENTIALS, "smtp_starttls": False},
     "O2C_SMTP_STARTTLS is false and O2C_SMTP_TLS is not set; o2c does not send credentials "
     "over an unencrypted connection"),
    ({**CREDENTIALS, "smtp_starttls": True},
     "SMTPException: SMTP STARTTLS extension not supported by server."),
], ids=["starttls-when-offered", "starttls-off", "starttls-required"])
async def test_no_credentials_and_no_message_over_an_unencrypted_connection(system, smtp, reason):
    await pending_emails(system)
    emails = system.state("notifier").emails
    assert await emails.send_once() == 2

    assert smtp.commands == [] and smtp.credentials == [] and smtp.received == []
    items = by_role(await notifications(system))
    for note in items.values():
        assert note["status"] == "pending" and note["attempts"] == 1
        assert note["last_error"] == reason
        assert PASSWORD not in note["last_error"]
    r = await system.client("notifier", "finance").get(f"/v1/notifications/{items['finance']['id']}")
    assert r.json()["next_attempt_at"] is not None

    system.clock.advance(seconds=5)  # retried like any failed send, and refused again
    assert await emails.send_once() == 2
    assert smtp.commands == [] and smtp.credentials == [] and smtp.received == []
    assert by_role(await notifications(system))["finance"]["attempts"] == 2


@pytest.mark.parametrize("mailer", [{}])
async def test_without_credentials_plain_smtp_delivers(system, smtp):
    await pending_emails(system)
    assert await system.state("notifier").emails.send_once() == 2

    assert smtp.credentials == []
    assert smtp.commands == [("MAIL", False), ("MAIL", False)]  # no AUTH, in clear
    assert sorted(r for m in smtp.received for r in m.recipients) == [
        "alice.chen@o2c.example", "li.na@brightway.example"]
    items = by_role(await notifications(system))
    assert {n["status"] for n in items.values()} == {"sent"}
    assert all(n["last_error"] is None for n in items.values())


@pytest.mark.parametrize(("server_tls", "mailer"), [
    ("starttls", CREDENTIALS),
    ("implicit", {**CREDENTIALS, "smtp_tls": True}),
], ids=["starttls", "implicit-tls"])
async def test_credentials_go_only_over_tls(system, smtp):
    await pending_emails(system)
    assert await system.state("notifier").emails.send_once() == 2

    assert smtp.commands == [("AUTH", True), ("MAIL", True)] * 2
    assert [(login, password, encrypted) for _, login, password, encrypted in smtp.credentials] \
        == [(USERNAME, PASSWORD, True)] * 2
    assert len(smtp.received) == 2
    items = by_role(await notifications(system))
    assert {n["status"] for n in items.values()} == {"sent"}
