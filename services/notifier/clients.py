"""Typed clients for the services dunning reads and writes, over the app's one `ServiceHttp`.

Anything but a clear answer raises `DependencyUnavailable`: the dunning worker keeps the work
pending and tries again later.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from shared.errors import DependencyUnavailable
from shared.http import ServiceHttp


def _path(value: str) -> str:
    return quote(value, safe="")


def _unexpected(service: str, response: httpx.Response, what: str) -> DependencyUnavailable:
    return DependencyUnavailable(f"The {service} service answered {response.status_code} for {what}.",
                                 dependency=service)


class Contact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    role: str
    email: str | None = None


class Customer(BaseModel):
    """The part of credit's customer dunning needs: its name and contacts."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str | None = None
    name: str
    salesperson_id: str | None = None
    contacts: list[Contact] = []

    def contact(self, role: str) -> Contact | None:
        """The first contact with `role`, preferring one with an email address."""
        matching = [c for c in self.contacts if c.role == role]
        return next((c for c in matching if c.email), matching[0] if matching else None)


class Invoice(BaseModel):
    """The part of ledger's invoice dunning needs (`disputed` may be absent: not disputed)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    customer_id: str
    salesperson_id: str | None = None
    currency: str
    amount_minor: int
    outstanding_minor: int
    status: str
    due_date: date
    disputed: bool = False
    days_overdue: int = 0
    debit_notes_minor: int = 0  # interest and fees charged on it


class DebitNote(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    reason: str | None = None


class CreditClient:
    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    async def get_customer(self, customer_id: str) -> Customer | None:
        """The customer with its contacts, or None when credit does not know it."""
        return await self.http.get_model("credit", f"/v1/customers/{_path(customer_id)}",
                                         Customer, what=f"customer {customer_id}")


class LedgerClient:
    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    async def get_invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice as ledger sees it now, or None when ledger does not know it."""
        return await self.http.get_model("ledger", f"/v1/invoices/{_path(invoice_id)}", Invoice,
                                         what=f"invoice {invoice_id}", missing=(404, 422))

    async def overdue_invoices(self, customer_id: str, limit: int = 200) -> list[Invoice]:
        """The customer's invoices past due with money outstanding (disputed ones too), as
        ledger sees them now, oldest due first; at most `limit` (a letter lists no more)."""
        response = await self.http.call("ledger", "GET", "/v1/invoices", params={
            "customer_id": customer_id, "status": "overdue", "limit": limit})
        if response.status_code != 200:
            raise _unexpected("ledger", response, f"the overdue invoices of customer {customer_id}")
        try:
            items = [Invoice.model_validate(item) for item in response.json().get("items", [])]
        except (ValueError, AttributeError) as exc:
            raise DependencyUnavailable("The ledger service sent invoices notifier cannot read.",
                                        dependency="ledger") from exc
        return sorted(items, key=lambda i: (i.due_date, i.number))

    async def find_debit_note(self, invoice_id: str, marker: str) -> str | None:
        """The id of a debit note of the invoice whose reason carries `marker`, if any."""
        cursor: str | None = None
        while True:
            params = {"invoice_id": invoice_id, "limit": 200, **({"cursor": cursor} if cursor else {})}
            response = await self.http.call("ledger", "GET", "/v1/debit-notes", params=params)
            if response.status_code != 200:
                raise _unexpected("ledger", response, f"the debit notes of invoice {invoice_id}")
            page = response.json()
            for item in page.get("items", []):
                note = DebitNote.model_validate(item)
                if note.reason and marker in note.reason:
                    return note.id
            cursor = page.get("next_cursor")
            if not cursor:
                return None

    async def issue_debit_note(self, *, invoice_id: str, amount_minor: int, kind: str, reason: str,
                               idempotency_key: str) -> tuple[str | None, str | None]:
        """Ask ledger for a debit note; returns (note id, None) or (None, ledger's refusal)."""
        response = await self.http.call("ledger", "POST", "/v1/debit-notes", json={
            "invoice_id": invoice_id, "amount_minor": amount_minor, "kind": kind,
            "reason": reason}, idempotency_key=idempotency_key)
        if response.status_code in (200, 201):
            return str(response.json()["id"]), None
        if response.status_code in (404, 409, 422):
            try:
                detail = response.json().get("detail") or response.text
            except ValueError:
                detail = response.text
            return None, f"ledger refused the debit note ({response.status_code}): {detail}"[:900]
        raise _unexpected("ledger", response, f"a debit note on invoice {invoice_id}")
