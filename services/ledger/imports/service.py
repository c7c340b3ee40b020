"""The import of open items: validate every row, then write them all at once, or nothing.

Every row is checked before anything is written: its fields, that its number is not twice in
the file, that it was not issued in the future, and, when its number is already in the ledger,
that it was imported before with the same terms (then it is left as it is: an import sent
again changes nothing). Any error refuses the whole import, listing every bad row with its line
and field. Otherwise the new invoices, one journal entry each (Dr 1100 receivables for the
customer / Cr 3000 opening balance equity, for what is still owed, dated the day it was
issued) and their events are written as multi-row INSERTs in the request's one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.dates import start_of_day
from services.ledger.errors import ImportConflict, ImportNotFound, ImportRefused
from services.ledger.imports import repository as imports_repository
from services.ledger.imports.models import InvoiceImport
from services.ledger.imports.schemas import InvoiceImportRow, ParsedBody, ParsedRow, row_error
from services.ledger.models import EntryKind, Invoice, InvoiceStatus, counters, new_id
from services.ledger.posting import NewEntry, credit, debit, post_entries
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.failpoints import failpoint
from shared.numbering import next_number
from shared.outbox import Outbox

TERMS = ("customer_id", "salesperson_id", "currency", "amount_minor", "due_date")


async def get_import(session: AsyncSession, import_id: str) -> InvoiceImport:
    record = await imports_repository.get_import(session, import_id)
    if record is None:
        raise ImportNotFound(import_id)
    return record


def _differences(invoice: Invoice, row: InvoiceImportRow, imported_open: int) -> list[str]:
    diff = [name for name in TERMS if getattr(invoice, name) != getattr(row, name)]
    if invoice.issued_at.date() != row.issue_date:
        diff.append("issue_date")
    if imported_open != row.open_minor:
        diff.append("outstanding_minor")
    return diff


async def _plan(session: AsyncSession, clock: Clock, parsed: list[ParsedRow],
                errors: list[dict[str, Any]]) -> tuple[list[ParsedRow], int]:
    """The rows to write and how many are already imported; every further error into `errors`."""
    today = clock.today()
    by_number: dict[str, list[ParsedRow]] = defaultdict(list)
    for p in parsed:
        by_number[p.row.number].append(p)
        if p.row.issue_date > today:
            errors.append(row_error(p.line, f"{p.prefix}issue_date", "must not be in the future"))
    for number, same in by_number.items():
        if len(same) > 1:
            lines = ", ".join(str(p.line) for p in same)
            errors.extend(row_error(p.line, f"{p.prefix}number",
                                    f"number {number} is on more than one row ({lines})")
                          for p in same)
    existing = await repository.invoices_by_number(session, by_number)
    opened = await imports_repository.opening_amounts(
        session, [i.journal_entry_id for i in existing.values() if i.import_id and i.journal_entry_id])
    todo, unchanged = [], 0
    for number, same in by_number.items():
        invoice = existing.get(number)
        if invoice is None:
            todo.extend(same[:1])
        elif invoice.import_id is None:
            errors.append(row_error(same[0].line, f"{same[0].prefix}number",
                                    f"number {number} is already an invoice of this ledger"))
        elif diff := _differences(invoice, same[0].row, opened.get(invoice.journal_entry_id or "", 0)):
            errors.append(row_error(same[0].line, f"{same[0].prefix}number",
                                    f"number {number} was imported before with another "
                                    f"{', '.join(diff)}"))
        else:
            unchanged += 1
    return todo, unchanged


async def import_invoices(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, parsed: ParsedBody, fmt: str) -> InvoiceImport:
    """Validate the parsed rows (after the parser's errors) and write them, or refuse them all."""
    errors = list(parsed.errors)
    todo, unchanged = await _plan(session, clock, parsed.rows, errors)
    if errors:
        raise ImportRefused(sorted(errors, key=lambda e: e["line"]), parsed.count)
    rows = parsed.count
    now = clock.now()
    record = InvoiceImport(
        id=new_id(), number=await next_number(session, counters, "invoice_import", "IMP"),
        format=fmt, rows=rows, created=len(todo), unchanged=unchanged,
        totals=_totals(todo), created_by=principal.name, created_at=now)
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
            await _write(session, outbox, clock, principal, record, [p.row for p in todo])
    except IntegrityError as exc:  # another import wrote one of these numbers meanwhile
        raise ImportConflict() from exc
    failpoint("ledger.imports.before_commit")  # everything written, nothing committed
    return record


def _totals(todo: list[ParsedRow]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    for p in todo:
        t = totals.setdefault(p.row.currency, {"currency": p.row.currency, "invoices": 0,
                                               "amount_minor": 0, "outstanding_minor": 0})
        t["invoices"] += 1
        t["amount_minor"] += p.row.amount_minor
        t["outstanding_minor"] += p.row.open_minor
    return [totals[c] for c in sorted(totals)]


async def _write(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                 record: InvoiceImport, rows: list[InvoiceImportRow]) -> None:
    now = clock.now()
    ids = [new_id() for _ in rows]
    entries = await post_entries(session, outbox=outbox, clock=clock, created_by=principal.name,
                                 entries=[NewEntry(
        lines=[debit(chart.RECEIVABLES, row.open_minor, row.customer_id),
               credit(chart.OPENING_BALANCE_EQUITY, row.open_minor)],
        currency=row.currency, kind=EntryKind.invoice, posted_at=start_of_day(row.issue_date),
        memo=f"Opening balance: invoice {row.number} imported by {record.number}",
        source_type="invoice", source_id=invoice_id) for row, invoice_id in zip(rows, ids, strict=True)])
    invoices = [{
        "id": invoice_id, "number": row.number, "order_id": None, "import_id": record.id,
        "customer_id": row.customer_id, "salesperson_id": row.salesperson_id,
        "currency": row.currency, "amount_minor": row.amount_minor,
        "outstanding_minor": row.open_minor, "debit_notes_minor": 0,
        "paid_minor": row.amount_minor - row.open_minor, "credited_minor": 0,
        "written_off_minor": 0,
        "status": InvoiceStatus.open if row.open_minor == row.amount_minor
        else InvoiceStatus.partially_paid,
        "issued_at": entry.posted_at, "due_date": row.due_date, "paid_at": None,
        "journal_entry_id": entry.id, "version": 1, "created_at": now, "updated_at": now}
        for row, invoice_id, entry in zip(rows, ids, entries, strict=True)]
    await repository.insert_rows(session, Invoice, invoices)
    await outbox.enqueue_many(session, [new_event(
        clock, type="invoice.imported", source="ledger", subject=inv["id"], data={
            "invoice_id": inv["id"], "number": inv["number"], "order_id": None,
            "import_id": record.id, "import_number": record.number,
            "customer_id": inv["customer_id"], "salesperson_id": inv["salesperson_id"],
            "currency": inv["currency"], "amount_minor": inv["amount_minor"],
            "outstanding_minor": inv["outstanding_minor"],
            "issued_at": inv["issued_at"].isoformat(), "due_date": inv["due_date"].isoformat()})
        for inv in invoices])
