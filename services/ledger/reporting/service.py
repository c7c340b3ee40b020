"""Receivables reports as of a date: aging, DSO, collection effectiveness, salesperson performance.

Every figure is computed in SQL from dated movements (see `repository`), so a report for a
past date gives the same answer whenever it is asked, whatever was posted since. Days are
UTC days; "as of D" means up to the end of D.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.config import GradeRule
from services.ledger.dates import end_of_day, start_of_day
from services.ledger.reporting import repository
from shared.errors import ValidationFailed

DEFAULT_PERIOD_DAYS = 30


def bucket_names(bounds: list[int]) -> list[str]:
    """[30, 60, 90, 180] → current, 1-30, 31-60, 61-90, 91-180, 180+."""
    lower = [0, *bounds]
    return ["current", *(f"{lo + 1}-{hi}" for lo, hi in zip(lower, bounds, strict=False)),
            f"{bounds[-1]}+"]


def check_as_of(as_of: date, today: date, field: str = "query.as_of") -> date:
    """A report date is today or earlier: the future has no movements to report yet."""
    if as_of > today:
        raise ValidationFailed(f"{field.removeprefix('query.')} {as_of} is after today ({today}); "
                               "reports are as of today or a past date.",
                               errors=[{"field": field, "message": f"must not be after {today}"}])
    return as_of


@dataclass(frozen=True)
class Period:
    """A report period [from, to], both days included. A period asked to end after today
    (this month, with its last day) runs to today: `requested_to` keeps what was asked."""

    from_: date
    to: date
    requested_to: date | None = None


def period(from_: date | None, to: date | None, today: date) -> Period:
    """The report period; the last 30 days by default, cut at today."""
    requested = to if to is not None and to > today else None
    end = min(to or today, today)
    if from_ is not None and from_ > today:
        raise ValidationFailed(f"from {from_} is after today ({today}); a period cannot start "
                               "in the future.",
                               errors=[{"field": "query.from", "message": f"must not be after {today}"}])
    start = from_ or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise ValidationFailed("The period starts after it ends.",
                               errors=[{"field": "query.from", "message": "must not be after `to`"}])
    return Period(start, end, requested)


# ---------------------------------------------------------------- aging


@dataclass
class AgingLine:
    key: str | None
    currency: str
    buckets: dict[str, int]
    total_minor: int
    disputed_minor: int


@dataclass
class Aging:
    as_of: date
    group_by: str
    currency: str | None
    bucket_names: list[str]
    rows: list[AgingLine]
    totals: list[AgingLine]


async def aging(session: AsyncSession, *, as_of: date, group_by: str, currency: str | None,
                salesperson_id: str | None, bounds: list[int]) -> Aging:
    """What was owed at the end of `as_of`, by days past due, per customer or salesperson."""
    names = bucket_names(bounds)
    starts = [as_of, *(as_of - timedelta(days=b) for b in bounds)]
    rows = await repository.aging(session, cut=end_of_day(as_of), bucket_starts=starts,
                                  group_by=group_by, salesperson_id=salesperson_id,
                                  currency=currency)
    lines = [AgingLine(r.key, r.currency, dict(zip(names, r.buckets, strict=True)), r.total_minor,
                       r.disputed_minor) for r in rows]
    totals: dict[str, AgingLine] = {}
    for line in lines:  # one per group and currency, not per invoice
        total = totals.get(line.currency)
        if total is None:
            total = totals[line.currency] = AgingLine(None, line.currency,
                                                      dict.fromkeys(names, 0), 0, 0)
        for name, amount in line.buckets.items():
            total.buckets[name] += amount
        total.total_minor += line.total_minor
        total.disputed_minor += line.disputed_minor
    return Aging(as_of, group_by, currency, names, lines,
                 [totals[c] for c in sorted(totals)])


# ---------------------------------------------------------------- DSO and CEI


def _ratio(numerator: int, denominator: int, scale: float = 1.0, digits: int = 1) -> float | None:
    return round(numerator / denominator * scale, digits) if denominator else None


@dataclass
class DsoLine:
    currency: str
    receivables_minor: int
    credit_sales_minor: int
    dso_days: float | None


@dataclass
class Dso:
    from_: date
    to: date
    days: int
    rows: list[DsoLine]


async def dso(session: AsyncSession, *, from_: date, to: date,
              salesperson_id: str | None) -> Dso:
    """DSO = receivables at the end of `to` / credit sales in [from, to] × days in the period."""
    days = (to - from_).days + 1
    owed = await repository.receivables(session, cut=end_of_day(to), as_of=to,
                                        salesperson_id=salesperson_id)
    sales = await repository.credit_sales(session, start=start_of_day(from_), end=end_of_day(to),
                                          salesperson_id=salesperson_id)
    currencies = sorted({c for _, c in owed} | {c for _, c in sales})
    rows = []
    for currency in currencies:
        receivable = owed[(None, currency)].owed_minor if (None, currency) in owed else 0
        sold = sales.get((None, currency), 0)
        rows.append(DsoLine(currency, receivable, sold, _ratio(receivable * days, sold)))
    return Dso(from_, to, days, rows)


@dataclass
class CeiLine:
    currency: str
    opening_receivables_minor: int
    credit_sales_minor: int
    closing_receivables_minor: int
    closing_current_minor: int
    cei_percent: float | None


@dataclass
class Cei:
    from_: date
    to: date
    rows: list[CeiLine]


async def collection_effectiveness(session: AsyncSession, *, from_: date, to: date,
                                   salesperson_id: str | None) -> Cei:
    """CEI = (opening + credit sales − closing) / (opening + credit sales − closing current) × 100."""
    opening = await repository.receivables(session, cut=start_of_day(from_),
                                           as_of=from_ - timedelta(days=1),
                                           salesperson_id=salesperson_id)
    closing = await repository.receivables(session, cut=end_of_day(to), as_of=to,
                                           salesperson_id=salesperson_id)
    sales = await repository.credit_sales(session, start=start_of_day(from_), end=end_of_day(to),
                                          salesperson_id=salesperson_id)
    rows = []
    for currency in sorted({c for _, c in opening} | {c for _, c in closing} | {c for _, c in sales}):
        key = (None, currency)
        o = opening[key].owed_minor if key in opening else 0
        c = closing[key].owed_minor if key in closing else 0
        current = closing[key].current_minor if key in closing else 0
        s = sales.get(key, 0)
        rows.append(CeiLine(currency, o, s, c, current, _ratio(o + s - c, o + s - current, 100)))
    return Cei(from_, to, rows)


# ---------------------------------------------------------------- salesperson performance


@dataclass
class PerformanceLine:
    salesperson_id: str | None
    currency: str
    opening_receivables_minor: int
    invoiced_minor: int
    collected_minor: int
    collection_rate: float | None
    closing_receivables_minor: int
    overdue_minor: int
    overdue_share: float
    avg_days_to_pay: float | None
    written_off_minor: int
    grade: str | None


@dataclass
class Performance:
    from_: date
    to: date
    rows: list[PerformanceLine]


def grade(rules: list[GradeRule], collection_rate: float | None, overdue_share: float) -> str | None:
    """The first rule met; the last rule's grade when none is; None with nothing to collect."""
    if collection_rate is None or not rules:
        return None
    for rule in rules:
        if collection_rate >= rule.min_collection_rate and overdue_share <= rule.max_overdue_share:
            return rule.grade
    return rules[-1].grade


async def salesperson_performance(session: AsyncSession, *, from_: date, to: date,
                                  salesperson_id: str | None,
                                  rules: list[GradeRule]) -> Performance:
    """Per salesperson and currency over [from, to]: invoiced, collected, overdue, written off, grade."""
    start, end = start_of_day(from_), end_of_day(to)
    opening = await repository.receivables(session, cut=start, as_of=from_ - timedelta(days=1),
                                           salesperson_id=salesperson_id, group_by_salesperson=True)
    closing = await repository.receivables(session, cut=end, as_of=to,
                                           salesperson_id=salesperson_id, group_by_salesperson=True)
    invoiced = await repository.credit_sales(session, start=start, end=end,
                                             salesperson_id=salesperson_id,
                                             group_by_salesperson=True)
    got = await repository.collected(session, start=start, end=end, salesperson_id=salesperson_id)
    lost = await repository.written_off(session, start=start, end=end,
                                        salesperson_id=salesperson_id)
    days = await repository.days_to_pay(session, start=start, end=end,
                                        salesperson_id=salesperson_id)
    keys = set(opening) | set(closing) | set(invoiced) | set(got) | set(lost)
    rows = []
    for key in sorted(keys, key=lambda k: (k[0] or "", k[1])):
        o = opening[key].owed_minor if key in opening else 0
        c = closing[key].owed_minor if key in closing else 0
        overdue = c - closing[key].current_minor if key in closing else 0
        billed, collected = invoiced.get(key, 0), got.get(key, 0)
        rate = round(collected / (o + billed), 4) if o + billed else None
        share = round(overdue / c, 4) if c else 0.0
        avg = days.get(key)
        rows.append(PerformanceLine(
            salesperson_id=key[0], currency=key[1], opening_receivables_minor=o,
            invoiced_minor=billed, collected_minor=collected, collection_rate=rate,
            closing_receivables_minor=c, overdue_minor=overdue, overdue_share=share,
            avg_days_to_pay=round(avg, 1) if avg is not None else None,
            written_off_minor=lost.get(key, 0), grade=grade(rules, rate, share)))
    return Performance(from_, to, rows)
