"""Typed clients for the services credit calls, over the app's one `ServiceHttp`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, ValidationError

from services.credit.scorecard import PaymentHistory
from shared.errors import DependencyUnavailable
from shared.http import ServiceHttp

log = logging.getLogger("o2c.credit.clients")


class LedgerExposure(BaseModel):
    """The part of ledger's `GET /v1/customers/{id}/exposure` the scorecard reads."""

    model_config = ConfigDict(extra="ignore")

    overdue_minor: int = 0
    max_days_overdue: int = 0
    invoices_paid_on_time: int = 0
    invoices_paid_late: int = 0
    avg_days_late: float | None = None


class LedgerReceivables(BaseModel):
    """The part of ledger's `GET /v1/customers/{id}/exposure` the receivables snapshot keeps."""

    model_config = ConfigDict(extra="ignore")

    open_receivables_minor: int = 0
    overdue_minor: int = 0
    max_days_overdue: int = 0


class LedgerInvoice(BaseModel):
    """The part of ledger's `GET /v1/invoices/{id}` an automatic credit hold depends on."""

    model_config = ConfigDict(extra="ignore")

    id: str
    number: str
    customer_id: str
    status: str
    outstanding_minor: int
    days_overdue: int = 0
    disputed: bool = False  # an open dispute (ledger keeps `status` for the money)

    @property
    def settled(self) -> bool:
        """Nothing is owed on it any more: paid, credited or written off."""
        return self.outstanding_minor <= 0 or self.status in ("paid", "written_off")

    @property
    def how_settled(self) -> str:
        return "written off" if self.status == "written_off" else \
            "paid" if self.status == "paid" else "settled"


@dataclass(frozen=True)
class HistoryAnswer:
    """Ledger's payment history, or None with the reason there is none."""

    history: PaymentHistory | None
    unavailable_because: str


class LedgerClient:
    """Calls to the ledger service. Payment history is advisory: no answer is not an error."""

    def __init__(self, http: ServiceHttp) -> None:
        self.http = http

    async def receivables(self, customer_id: str, currency: str) -> LedgerReceivables:
        """Ledger's open and overdue receivables of the customer in `currency`, now.

        Raises `DependencyUnavailable` when ledger does not answer or answers something other
        than the figures (an event handler then fails and notifier delivers the event again);
        404 (ledger knows nothing of the customer) is no receivables.
        """
        got = await self.http.get_model(
            "ledger", f"/v1/customers/{quote(customer_id, safe='')}/exposure", LedgerReceivables,
            what=f"the exposure of customer {customer_id}", params={"currency": currency})
        return got if got is not None else LedgerReceivables()

    async def invoice(self, invoice_id: str) -> LedgerInvoice | None:
        """Ledger's invoice as of now; None when ledger knows no such invoice (404, or 422 for an
        id it could never have given).

        Raises `DependencyUnavailable` when ledger does not answer or answers anything else.
        """
        return await self.http.get_model("ledger", f"/v1/invoices/{quote(invoice_id, safe='')}",
                                         LedgerInvoice, what=f"invoice {invoice_id}",
                                         missing=(404, 422))

    async def payment_history(self, customer_id: str, currency: str) -> HistoryAnswer:
        """How the customer pays in `currency`, from ledger; None when it has none or is down."""
        try:
            response = await self.http.call(
                "ledger", "GET", f"/v1/customers/{quote(customer_id, safe='')}/exposure",
                params={"currency": currency})
        except DependencyUnavailable as exc:
            return HistoryAnswer(None, f"ledger did not answer: {exc.detail}")
        if response.status_code == 404:
            return HistoryAnswer(None, "ledger reports no payment history for the customer")
        if response.status_code != 200:
            log.warning("ledger answered %s for the exposure of %s", response.status_code,
                        customer_id)
            return HistoryAnswer(None, f"ledger answered {response.status_code}")
        try:
            body = LedgerExposure.model_validate_json(response.content)
        except ValidationError:
            return HistoryAnswer(None, "ledger sent an exposure credit cannot read")
        return HistoryAnswer(PaymentHistory(
            invoices_paid_on_time=body.invoices_paid_on_time,
            invoices_paid_late=body.invoices_paid_late, overdue_minor=body.overdue_minor,
            max_days_overdue=body.max_days_overdue, avg_days_late=body.avg_days_late), "")
