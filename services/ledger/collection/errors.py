"""Domain errors of collection work."""

from __future__ import annotations

from datetime import date

from shared.errors import Conflict, DependencyUnavailable, NotFound, ValidationFailed


class ScanDateInFuture(ValidationFailed):
    def __init__(self, as_of: date, today: date) -> None:
        super().__init__(f"as_of {as_of.isoformat()} is in the future (today is {today.isoformat()}); "
                         "an overdue scan can only look at today or the past.",
                         errors=[{"field": "as_of", "message": "must not be after today"}])


class ScanNotFound(NotFound):
    def __init__(self, scan_id: str) -> None:
        super().__init__(f"Overdue scan {scan_id} not found.")


class ScanInterrupted(DependencyUnavailable):
    """A batch of the scan failed; what earlier batches emitted stays, a new scan resumes."""

    def __init__(self, scan_id: str, batches_done: int) -> None:
        super().__init__(f"Overdue scan {scan_id} stopped after {batches_done} batch(es); what they "
                         "emitted is kept. Run the scan again for the same as_of to finish it "
                         "(nothing is emitted twice).", dependency="database", scan_id=scan_id)


class DisputeNotFound(NotFound):
    def __init__(self, dispute_id: str) -> None:
        super().__init__(f"Dispute {dispute_id} not found on this invoice.")


class DisputeAlreadyOpen(Conflict):
    def __init__(self, number: str, dispute_id: str | None) -> None:
        super().__init__(f"Invoice {number} already has an open dispute; resolve it before "
                         "opening another.", dispute_id=dispute_id)


class DisputeNotOpen(Conflict):
    def __init__(self, dispute_id: str, status: str) -> None:
        super().__init__(f"Dispute {dispute_id} is {status}, not open.", dispute_status=status)


class InvoiceClosed(Conflict):
    """Collection work on an invoice with nothing left to collect."""

    def __init__(self, number: str, status: str, what: str) -> None:
        super().__init__(f"Invoice {number} is {status}: nothing is outstanding to {what}.",
                         invoice_status=status)


class PromiseRefused(ValidationFailed):
    def __init__(self, errors: list[dict[str, str]]) -> None:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        super().__init__(f"The promise to pay cannot be recorded: {detail}.", errors=errors)
