"""Domain errors of the ledger service."""

from __future__ import annotations

from shared.errors import Conflict, NotFound, ValidationFailed


class AccountNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"Account {code} not found.")


class EntryNotFound(NotFound):
    def __init__(self, entry_id: str) -> None:
        super().__init__(f"Journal entry {entry_id} not found.")


class InvoiceNotFound(NotFound):
    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"Invoice {invoice_id} not found.")


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
