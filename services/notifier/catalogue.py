"""The event catalogue: every event type the four services emit (DESIGN.md §8 and the
extensions the services publish besides). Webhook endpoints may filter only on these, or on
"*" for every type; a test keeps the list in step with the producers' code."""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    # orders
    "order.created", "order.updated", "order.submitted", "order.approved", "order.rejected",
    "order.contracted", "order.fulfillment_started", "order.delivered", "order.returned",
    "order.invoiced", "order.closed", "order.cancelled", "order.review_overdue",
    "order.exception_opened", "order.exception_overdue", "order.exception_resolved",
    "order.change_requested", "order.change_request_approved",
    "order.change_request_rejected", "order.change_request_withdrawn", "order.changed",
    # credit
    "customer.created", "customer.updated", "credit.reservation_decided",
    "credit.hold_placed", "credit.hold_released", "credit.limit_changed",
    # ledger
    "journal_entry.posted", "invoice.issued", "invoice.imported", "invoice.overdue", "invoice.paid",
    "invoice.disputed", "invoice.dispute_resolved", "payment.received", "payment.reversed",
    "unapplied_cash.applied", "credit_note.issued", "debit_note.issued", "promise.broken",
    "writeoff.proposed", "writeoff.approved", "writeoff.rejected", "writeoff.recovered",
    "refund.proposed", "refund.posted", "refund.rejected", "refund.reversed",
    # notifier
    "dunning.escalated",
)
KNOWN = frozenset(EVENT_TYPES)
