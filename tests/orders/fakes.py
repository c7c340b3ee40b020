"""Stand-ins for credit's and ledger's clients, for tests of the steps' remote parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.orders.clients import CreditAnswer, LedgerBalance, LedgerInvoice
from shared.errors import DependencyUnavailable, GuardFailed


def _down(service: str) -> DependencyUnavailable:
    return DependencyUnavailable(f"The {service} service did not answer.", dependency=service)


@dataclass
class FakeCredit:
    """Credit's reservation API: answers with `answer`, or does not answer when `down`;
    `PATCH` of the amount refuses increases above `room`."""

    answer: CreditAnswer = field(default_factory=lambda: CreditAnswer(
        id="res-1", decision="reserved", status="active", reasons=[]))
    down: bool = False
    room: int | None = None
    reserved: list[dict[str, Any]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    converted: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, int]] = field(default_factory=list)

    async def convert(self, reservation_id: str, *, invoice_id: str) -> None:
        if self.down:
            raise _down("credit")
        self.converted.append((reservation_id, invoice_id))

    async def reserve(self, **kwargs: Any) -> CreditAnswer:
        if self.down:
            raise _down("credit")
        self.reserved.append(kwargs)
        return self.answer

    async def release(self, reservation_id: str) -> None:
        if self.down:
            raise _down("credit")
        self.released.append(reservation_id)

    async def change_amount(self, reservation_id: str, *, amount_minor: int) -> None:
        if self.down:
            raise _down("credit")
        if self.room is not None and amount_minor > self.room:
            raise GuardFailed("credit_reserved", f"increase to {amount_minor} refused: over the limit")
        self.changed.append((reservation_id, amount_minor))


@dataclass
class FakeLedger:
    """Ledger's invoices (one per order) and credit notes, or no answer when `down`."""

    down: bool = False
    issued: list[dict[str, Any]] = field(default_factory=list)
    credited: list[dict[str, Any]] = field(default_factory=list)

    async def issue_invoice(self, **kwargs: Any) -> LedgerInvoice:
        if self.down:
            raise _down("ledger")
        self.issued.append(kwargs)
        return LedgerInvoice(id="inv-1", number="INV-000001", amount_minor=kwargs["amount_minor"])

    async def order_balance(self, order_id: str) -> LedgerBalance | None:
        if self.down:
            raise _down("ledger")
        if not self.issued:
            return None
        return LedgerBalance(invoice_id="inv-1", outstanding_minor=self.issued[-1]["amount_minor"])

    async def credit_note(self, **kwargs: Any) -> str:
        if self.down:
            raise _down("ledger")
        self.credited.append(kwargs)
        return f"cn-{len(self.credited)}"
