"""Typed clients for the services orders calls, over the app's one `ServiceHttp`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.errors import Conflict, DependencyUnavailable, GuardFailed
from shared.http import ServiceHttp


class CreditCustomer(BaseModel):
    """The part of credit's customer that orders relies on."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    name: str
    salesperson_id: str | None = None


class CreditProfile(BaseModel):
    """The part of credit's profile (`GET /v1/customers/{id}/credit`) the submit check reads."""

    model_config = ConfigDict(extra="ignore")

    currency: str | None = None
    status: str = "active"  # active | on_hold | blocked
    policy: str = "credit"  # credit | prepaid_only | guarantee_required


class CreditAnswer(BaseModel):
    """Credit's decision on a reservation (`POST /v1/reservations`)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    decision: Literal["reserved", "requires_guarantee", "rejected"]
    status: str | None = None
    reasons: list[str] = []


def _path(value: str) -> str:
    return quote(value, safe="")


def _unreadable(what: str, exc: Exception | None = None) -> DependencyUnavailable:
    return DependencyUnavailable(f"The credit service sent {what} orders cannot read.",
                                 dependency="credit")


class CreditClient:
    """Calls to the credit service; anything but a clear answer fails closed (503)."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    def _unexpected(self, response: httpx.Response, what: str) -> DependencyUnavailable:
        return DependencyUnavailable(
            f"The credit service answered {response.status_code} for {what}.", dependency="credit")

    async def get_customer(self, customer_id: str) -> CreditCustomer | None:
        """The customer, or None when credit does not know it."""
        return await self.http.get_model("credit", f"/v1/customers/{_path(customer_id)}",
                                         CreditCustomer, what=f"customer {customer_id}")

    async def get_profile(self, customer_id: str) -> CreditProfile | None:
        """The customer's credit profile, or None when credit does not know the customer."""
        return await self.http.get_model(
            "credit", f"/v1/customers/{_path(customer_id)}/credit", CreditProfile,
            what=f"the credit profile of customer {customer_id}")

    async def reserve(self, *, customer_id: str, order_id: str, amount_minor: int, currency: str,
                      idempotency_key: str) -> CreditAnswer:
        """Ask credit to reserve `amount_minor` for the order; the same key never reserves twice.

        A refusal of the request itself (4xx: say, credit no longer knows the customer) is
        returned as a `rejected` answer carrying credit's explanation.
        """
        response = await self.http.call("credit", "POST", "/v1/reservations", json={
            "customer_id": customer_id, "order_id": order_id, "amount_minor": amount_minor,
            "currency": currency}, idempotency_key=idempotency_key)
        if response.status_code in (200, 201):
            try:
                return CreditAnswer.model_validate_json(response.content)
            except ValidationError as exc:
                raise _unreadable("a reservation") from exc
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            return CreditAnswer(decision="rejected", reasons=[
                f"credit refused the reservation request ({response.status_code}): {_detail(response)}"])
        raise self._unexpected(response, f"the reservation of order {order_id}")

    async def convert(self, reservation_id: str, *, invoice_id: str) -> None:
        """The order was invoiced: the reservation becomes open receivables (idempotent)."""
        response = await self.http.call(
            "credit", "POST", f"/v1/reservations/{_path(reservation_id)}/convert",
            json={"invoice_id": invoice_id}, idempotency_key=f"convert:{reservation_id}")
        if response.status_code != 200:
            raise self._unexpected(response, f"the conversion of reservation {reservation_id}")

    async def change_amount(self, reservation_id: str, *, amount_minor: int) -> None:
        """Set an active reservation to `amount_minor` (`PATCH`; the same amount twice is a no-op).

        Credit refusing an increase is `guard_failed` (guard `credit_reserved`) with credit's
        reason; any other refusal is a `conflict` carrying its explanation; no answer is 503.
        """
        response = await self.http.call("credit", "PATCH", f"/v1/reservations/{_path(reservation_id)}",
                                        json={"amount_minor": amount_minor})
        if response.status_code == 200:
            return
        if response.status_code == 409:
            body = _body(response)
            if body.get("code") == "guard_failed":
                raise GuardFailed("credit_reserved", str(body.get("reason") or _detail(response)))
            raise Conflict(f"Credit refuses to change reservation {reservation_id}: {_detail(response)}")
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise Conflict(f"Credit refuses to change reservation {reservation_id} "
                           f"({response.status_code}): {_detail(response)}")
        raise self._unexpected(response, f"the change of reservation {reservation_id}")

    async def release(self, reservation_id: str) -> None:
        """Give the reserved amount back; releasing a released or unknown one is a no-op.

        Credit refuses (409) to release a reservation converted on invoicing: that is a
        `conflict` here too, not an outage.
        """
        response = await self.http.call("credit", "DELETE", f"/v1/reservations/{_path(reservation_id)}")
        if response.status_code in (200, 204, 404):
            return
        if response.status_code == 409:
            raise Conflict(f"Credit refuses to release reservation {reservation_id}: "
                           f"{_detail(response)}")
        raise self._unexpected(response, f"the release of reservation {reservation_id}")


def _body(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:300]
    return str(body)[:300]


class LedgerInvoice(BaseModel):
    """The part of ledger's invoice (`POST /v1/invoices`) orders keeps."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    amount_minor: int


class LedgerBalance(BaseModel):
    """What ledger says is left of an order's invoice (`GET /v1/orders/{id}/balance`)."""

    model_config = ConfigDict(extra="ignore")

    invoice_id: str
    outstanding_minor: int
    paid_minor: int = 0


class LedgerClient:
    """Calls to the ledger service; anything but a clear answer fails closed (503)."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    def _unexpected(self, response: httpx.Response, what: str) -> DependencyUnavailable:
        return DependencyUnavailable(
            f"The ledger service answered {response.status_code} for {what}: {_detail(response)}",
            dependency="ledger")

    async def issue_invoice(self, *, order_id: str, customer_id: str, salesperson_id: str | None,
                            currency: str, amount_minor: int, issued_at: datetime,
                            due_date: date) -> LedgerInvoice:
        """Issue the order's invoice; ledger answers with the same invoice for the same order.

        The caller sends the same body on every attempt (fixed when the step began). Ledger
        refusing the invoice (4xx) is a `conflict` carrying its explanation; no answer is 503.
        """
        response = await self.http.call("ledger", "POST", "/v1/invoices", json={
            "order_id": order_id, "customer_id": customer_id, "salesperson_id": salesperson_id,
            "currency": currency, "amount_minor": amount_minor, "issued_at": issued_at.isoformat(),
            "due_date": due_date.isoformat()}, idempotency_key=f"invoice:{order_id}")
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise Conflict(f"Ledger refused the invoice of order {order_id}: {_detail(response)}")
        if response.status_code not in (200, 201):
            raise self._unexpected(response, f"the invoice of order {order_id}")
        try:
            return LedgerInvoice.model_validate_json(response.content)
        except ValidationError as exc:
            raise DependencyUnavailable("The ledger service sent an invoice orders cannot read.",
                                        dependency="ledger") from exc

    async def order_balance(self, order_id: str) -> LedgerBalance | None:
        """The balance of the order's invoice, or None when ledger has no invoice for it."""
        return await self.http.get_model("ledger", f"/v1/orders/{_path(order_id)}/balance",
                                         LedgerBalance, what=f"the balance of order {order_id}")

    async def credit_note(self, *, invoice_id: str, amount_minor: int, reason: str,
                          idempotency_key: str, paid_to_unapplied: bool = False) -> str:
        """Credit the invoice (a return); the same key never credits twice. Returns the note id.
        With `paid_to_unapplied` the amount may include what was paid, which ledger gives back
        to the customer's unapplied cash (a cancelled prepaid order).

        Ledger refusing the note (4xx: say, more than is outstanding) is a `conflict` carrying
        its explanation; no answer is 503.
        """
        body: dict[str, Any] = {"invoice_id": invoice_id, "amount_minor": amount_minor,
                                "reason": reason}
        if paid_to_unapplied:
            body["paid_to_unapplied"] = True
        response = await self.http.call("ledger", "POST", "/v1/credit-notes", json=body,
                                        idempotency_key=idempotency_key)
        if response.status_code in (200, 201):
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DependencyUnavailable("The ledger service sent a credit note orders cannot "
                                            "read.", dependency="ledger") from exc
        if 400 <= response.status_code < 500 and response.status_code not in (401, 403, 429):
            raise Conflict(f"Ledger refused the credit note: {_detail(response)}")
        raise self._unexpected(response, f"a credit note on invoice {invoice_id}")
