"""Bodies of the open-item import: a row as JSON or as a CSV line, and the import's record."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from services.ledger.imports.models import InvoiceImport
from shared.dates import BusinessDate
from shared.money import Currency, PositiveAmountMinor
from shared.schemas import RequestModel, ResponseModel

# o2c's own series: an imported number may not look like one, so the two never collide.
OWN_SERIES = re.compile(r"INV-", re.IGNORECASE)
InvoiceNumber = Annotated[str, Field(
    min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/\-]*$",
    description="The invoice's number in the system it comes from; kept as its number here, "
                "and the key that makes an import idempotent. `INV-…` is o2c's own series "
                "and is refused.", examples=["SI-2026-00017"])]
Ident = Annotated[str, Field(min_length=1, max_length=36)]
SalespersonId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._\-]+$")]

ROW_EXAMPLE = {"number": "SI-2026-00017", "customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11",
               "salesperson_id": "S-ALICE", "currency": "CNY", "amount_minor": 125000,
               "outstanding_minor": 80000, "issue_date": "2026-09-15",
               "due_date": "2026-10-15"}
CSV_COLUMNS = ("number", "customer_id", "salesperson_id", "currency", "amount_minor",
               "outstanding_minor", "issue_date", "due_date")
REQUIRED_COLUMNS = frozenset(CSV_COLUMNS) - {"salesperson_id", "outstanding_minor"}
CSV_EXAMPLE = (",".join(CSV_COLUMNS) + "\n"
               "SI-2026-00017,5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11,S-ALICE,CNY,125000,80000,"
               "2026-09-15,2026-10-15\n")


class InvoiceImportRow(RequestModel):
    """One open item: an invoice of the old system with what is still owed on it."""

    model_config = ConfigDict(json_schema_extra={"examples": [ROW_EXAMPLE]})

    number: InvoiceNumber
    customer_id: Ident
    salesperson_id: SalespersonId | None = None
    currency: Currency
    amount_minor: PositiveAmountMinor = Field(description="The invoice's amount as issued")
    outstanding_minor: PositiveAmountMinor | None = Field(
        default=None, description="What is still owed on it (the whole amount when absent); "
                                  "the rest was paid in the old system")
    issue_date: BusinessDate = Field(description="When it was issued (not in the future)")
    due_date: BusinessDate

    @field_validator("number")
    @classmethod
    def _not_our_series(cls, value: str) -> str:
        if OWN_SERIES.match(value):
            raise ValueError("INV- numbers are o2c's own series; import the old system's number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> InvoiceImportRow:
        if self.outstanding_minor is not None and self.outstanding_minor > self.amount_minor:
            raise ValueError("outstanding_minor must not exceed amount_minor")
        if self.due_date < self.issue_date:
            raise ValueError("due_date must not be before issue_date")
        return self

    @property
    def open_minor(self) -> int:
        return self.amount_minor if self.outstanding_minor is None else self.outstanding_minor


class InvoiceImportCreate(RequestModel):
    """The JSON form: the rows, in order (a row's `line` in errors is its position, from 1)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rows": [ROW_EXAMPLE]}]})

    rows: list[InvoiceImportRow] = Field(min_length=1)


class ImportTotal(ResponseModel):
    currency: str
    invoices: int
    amount_minor: int
    outstanding_minor: int


class InvoiceImportPublic(ResponseModel):
    id: str
    number: str
    format: str = Field(description="json or csv: the body it was given")
    rows: int
    created: int = Field(description="Invoices this import wrote")
    unchanged: int = Field(description="Rows whose number was already imported with the same "
                                       "terms: left as they are")
    totals: list[ImportTotal] = Field(description="Per currency, of the invoices it wrote")
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, record: InvoiceImport) -> InvoiceImportPublic:
        return cls.model_validate(record)


# ---------------------------------------------------------------- parsing, row by row

_ROW = TypeAdapter(InvoiceImportRow)
_TOP = TypeAdapter(InvoiceImportCreate)
_DIGITS = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class ParsedRow:
    """A valid row, with where it was: its line (CSV: of the file; JSON: its position from 1)
    and the prefix its errors' fields take (`rows[3].` in JSON, none in CSV)."""

    line: int
    prefix: str
    row: InvoiceImportRow


@dataclass(frozen=True)
class ParsedBody:
    """What a body held: the valid rows, every error found so far, and how many rows it had."""

    rows: list[ParsedRow]
    errors: list[dict[str, Any]]
    count: int


def row_error(line: int, field: str, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "line": line}


def _field_errors(exc: ValidationError, prefix: str, line: int) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors(include_url=False, include_input=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                        for part in error["loc"]).lstrip(".")
        field = f"{prefix}{where}" if where else (prefix.rstrip(".") or "row")
        out.append(row_error(line, field, error["msg"].removeprefix("Value error, ")))
    return out


def parse_json(body: Any, max_rows: int) -> ParsedBody:
    """The rows of a JSON body and every error, each row validated on its own."""
    if not isinstance(body, dict) or set(body) != {"rows"} or not isinstance(body["rows"], list) \
            or not body["rows"]:
        try:
            _TOP.validate_python(body)
        except ValidationError as exc:
            return ParsedBody([], _field_errors(exc, "", 0), 0)
        return ParsedBody([], [row_error(0, "rows", "must be a non-empty list of rows")], 0)
    raw = [(i + 1, f"rows[{i}].", value) for i, value in enumerate(body["rows"])]
    return _validate(raw, [], max_rows)


def parse_csv(text: str, max_rows: int) -> ParsedBody:
    """The rows of a CSV body (a header line naming the columns, then one row per line)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    raw: list[tuple[int, str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        problems = ([f"unknown column {name!r}" for name in header if name not in CSV_COLUMNS]
                    + [f"missing column {name!r}" for name in sorted(REQUIRED_COLUMNS - set(header))]
                    + [f"column {name!r} appears twice"
                       for name in sorted({n for n in header if header.count(n) > 1})])
        if problems:
            return ParsedBody([], [row_error(1, "header", "; ".join(problems)
                                             + f" (the columns are {', '.join(CSV_COLUMNS)})")], 0)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # a blank line is not a row
            if len(record) != len(header):
                errors.append(row_error(reader.line_num, "row",
                                        f"{len(record)} values for {len(header)} columns"))
            else:
                raw.append((reader.line_num, "", _typed(dict(zip(header, record, strict=True)))))
    except csv.Error as exc:
        return ParsedBody([], [row_error(reader.line_num, "row", f"not CSV: {exc}")], 0)
    if not raw and not errors:
        return ParsedBody([], [row_error(1, "rows", "the file has no rows")], 0)
    return _validate(raw, errors, max_rows)


def _typed(record: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the JSON one: empty cells absent, whole numbers as integers."""
    out: dict[str, Any] = {}
    for name, cell in record.items():
        cell = cell.strip()
        if cell:
            out[name] = int(cell) if name in ("amount_minor", "outstanding_minor") \
                and len(cell) <= 20 and _DIGITS.fullmatch(cell) else cell
    return out


def _validate(raw: list[tuple[int, str, Any]], errors: list[dict[str, Any]],
              max_rows: int) -> ParsedBody:
    """Each raw row validated on its own, after the rows the parser refused (`errors`)."""
    count = len(raw) + len(errors)
    if count > max_rows:
        return ParsedBody([], [row_error(0, "rows", f"{count} rows; an import takes at most "
                                                    f"{max_rows}")], count)
    rows: list[ParsedRow] = []
    for line, prefix, value in raw:
        try:
            rows.append(ParsedRow(line, prefix, _ROW.validate_python(value)))
        except ValidationError as exc:
            errors.extend(_field_errors(exc, prefix, line))
    return ParsedBody(rows, sorted(errors, key=lambda e: e["line"]), count)
