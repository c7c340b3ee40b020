"""Domain errors of the ledger service."""

from __future__ import annotations

from shared.errors import Conflict, DependencyUnavailable, NotFound, ValidationFailed


class AccountNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"Account {code} not found.")


class EntryNotFound(NotFound):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"Journal entry {entry_id} not found.")


class InvoiceNotFound(NotFound):
    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"Invoice {invoice_id} not found.")


class ChartNotSeeded(DependencyUnavailable):
    """A system account is missing: the ledger started before `o2c migrate ledger` and has not
    seeded its chart yet. A server-side state (503, retry), not the caller's input."""

    def __init__(self, code: str) -> None:
        super().__init__(f"The ledger's chart of accounts is not seeded yet (system account "
                         f"{code} is missing); it is seeded within seconds of `o2c migrate "
                         f"ledger`. Try again shortly.", dependency="chart_of_accounts")


class InvalidPosting(ValidationFailed):
    """A journal entry that would break double entry; `errors` names every offending line."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        detail = "; ".join(e["message"] if e["field"] == "lines" else f"{e['field']}: {e['message']}"
                           for e in errors)
        super().__init__(f"The journal entry is not valid: {detail}.", errors=errors)


class AlreadyReversed(Conflict):
    def __init__(self, entry_id: str, reversed_by: str | None) -> None:
        super().__init__(f"Journal entry {entry_id} is already reversed"
                         + (f" by {reversed_by}." if reversed_by else "."),
                         reversed_by_entry_id=reversed_by)


class ReversalOfReversal(Conflict):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"Journal entry {entry_id} is itself a reversal; post a new entry "
                         "instead of reversing it.")


class InvoiceConflict(Conflict):
    def __init__(self, order_id: str, invoice_id: str, fields: list[str]) -> None:
        super().__init__(f"Order {order_id} is already invoiced ({invoice_id}) with different "
                         f"{', '.join(fields)}.", invoice_id=invoice_id, fields=fields)


class DocumentEntry(Conflict):
    """A document's journal entry is corrected through the document, not the journal."""

    def __init__(self, number: str, source_type: str | None, how: str) -> None:
        super().__init__(f"Journal entry {number} belongs to a {source_type or 'document'}; "
                         f"{how}.", source_type=source_type)


class PaymentNotFound(NotFound):
    def __init__(self, payment_id: str) -> None:
        super().__init__(f"Payment {payment_id} not found.")


class CreditNoteNotFound(NotFound):
    def __init__(self, note_id: str) -> None:
        super().__init__(f"Credit note {note_id} not found.")


class DebitNoteNotFound(NotFound):
    def __init__(self, note_id: str) -> None:
        super().__init__(f"Debit note {note_id} not found.")


class OrderNotInvoiced(NotFound):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"Order {order_id} has no invoice in the ledger.")


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"Customer {customer_id} has no receivables in the ledger.")


class DocumentRefused(ValidationFailed):
    """A payment, allocation or note that cannot be posted; `errors` names every reason."""

    def __init__(self, what: str, errors: list[dict[str, str]]) -> None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"The {what} cannot be posted: {detail}.", errors=errors)


class CurrencyRequired(ValidationFailed):
    def __init__(self, customer_id: str, currencies: list[str]) -> None:
        super().__init__(f"Customer {customer_id} has receivables in {', '.join(currencies)}; "
                         "name one with ?currency=.",
                         errors=[{"field": "query.currency",
                                  "message": f"one of {', '.join(currencies)}"}])


class PaymentAlreadyReversed(Conflict):
    def __init__(self, number: str, reversal_entry_id: str | None) -> None:
        super().__init__(f"Payment {number} is already reversed.",
                         reversal_entry_id=reversal_entry_id)


class ImportNotFound(NotFound):
    def __init__(self, import_id: str) -> None:
        super().__init__(f"Invoice import {import_id} not found.")


class ImportRefused(ValidationFailed):
    """An import with any bad row writes nothing; `errors` lists every one, with its line."""

    def __init__(self, errors: list[dict[str, object]], rows: int) -> None:
        bad = len({e["line"] for e in errors})
        first = errors[0]
        super().__init__(
            f"The import was refused and nothing was written: {len(errors)} error(s) on "
            f"{bad} of {rows} row(s); the first, line {first['line']}, {first['field']}: "
            f"{first['message']}.", errors=errors)  # type: ignore[arg-type]


class ImportConflict(Conflict):
    def __init__(self) -> None:
        super().__init__("Another import wrote some of these invoice numbers at the same time; "
                         "nothing was written. Send the import again: the rows it already "
                         "imported with the same terms are left as they are.")
