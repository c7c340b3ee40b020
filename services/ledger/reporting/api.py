"""Routes of the receivables reports: parse, authorize, call the service, shape the response."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from services.ledger.deps import Ctx
from services.ledger.reporting import service
from services.ledger.reporting.schemas import (
    AgingPublic,
    CeiPublic,
    DsoPublic,
    PerformancePublic,
)
from shared.auth import CurrentPrincipal, Principal, Role, require
from shared.dates import BusinessDate
from shared.db import SessionDep
from shared.errors import problem_responses
from shared.money import Currency

REPORT_READERS = (Role.finance, Role.credit_manager, Role.auditor, Role.sales)  # sales: own rows

router = APIRouter(prefix="/v1/reports", tags=["reports"],
                   responses=problem_responses(401, 403, 422))

AsOf = Annotated[BusinessDate | None, Query(description="Up to the end of this day (UTC); today when "
                                                "absent, never in the future")]
From = Annotated[BusinessDate | None, Query(alias="from", description="First day of the period; 29 days "
                                                              "before `to` when absent")]
To = Annotated[BusinessDate | None, Query(description="Last day of the period (included); today when "
                                              "absent. A later day is taken as today, and "
                                              "the answer's `requested_to` keeps it")]
CSV = "text/csv"


def _own(principal: Principal) -> str | None:
    """A sales principal with a salesperson id sees only its own figures."""
    return principal.restricted_to_salesperson


def _aging_csv(report: service.Aging) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    key = f"{report.group_by}_id"
    writer.writerow([key, "currency", *report.bucket_names, "total_minor", "disputed_minor"])
    for row in report.rows:
        writer.writerow([row.key or "", row.currency, *row.buckets.values(), row.total_minor,
                         row.disputed_minor])
    return Response(out.getvalue(), media_type=f"{CSV}; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="aging-{report.group_by}-{report.as_of}.csv"'})


@router.get("/aging", response_model=AgingPublic, dependencies=[require(*REPORT_READERS)],
            responses={200: {"content": {CSV: {"schema": {"type": "string"}}},
                             "description": "The report; CSV with a header row when asked"}})
async def get_aging(
    request: Request, session: SessionDep, ctx: Ctx, principal: CurrentPrincipal, as_of: AsOf = None,
    group_by: Literal["customer", "salesperson"] = "customer",
    currency: Annotated[Currency | None, Query(description="Only this currency")] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(
        description="csv for a spreadsheet (also with Accept: text/csv)")] = None,
) -> Response:
    """Aging as of a date: what was owed by days past due, per customer or salesperson, JSON or CSV."""
    today = ctx.clock.today()
    report = await service.aging(
        session, as_of=service.check_as_of(as_of or today, today), group_by=group_by,
        currency=currency, salesperson_id=_own(principal),
        bounds=ctx.settings.aging_bucket_days)
    if format == "csv" or (format is None and CSV in request.headers.get("accept", "")):
        return _aging_csv(report)
    key = f"{group_by}_id"
    # Built as plain JSON: a report of thousands of rows is not validated twice on its way out.
    return JSONResponse({
        "as_of": report.as_of.isoformat(), "group_by": group_by, "currency": currency,
        "bucket_names": report.bucket_names,
        "rows": [{key: r.key, "currency": r.currency, "buckets": r.buckets,
                  "total_minor": r.total_minor, "disputed_minor": r.disputed_minor}
                 for r in report.rows],
        "totals": [{"currency": t.currency, "buckets": t.buckets, "total_minor": t.total_minor,
                    "disputed_minor": t.disputed_minor} for t in report.totals]})


@router.get("/dso", response_model=DsoPublic, dependencies=[require(*REPORT_READERS)])
async def get_dso(ctx: Ctx, session: SessionDep, principal: CurrentPrincipal,
                  from_: From = None, to: To = None) -> DsoPublic:
    """Days sales outstanding per currency: receivables at `to` / credit sales in the period × days."""
    span = service.period(from_, to, ctx.clock.today())
    got = await service.dso(session, from_=span.from_, to=span.to, salesperson_id=_own(principal))
    return DsoPublic.model_validate({"from": got.from_, "to": got.to, "days": got.days,
                                     "requested_to": span.requested_to,
                                     "rows": [vars(r) for r in got.rows]})


@router.get("/collection-effectiveness", response_model=CeiPublic,
            dependencies=[require(*REPORT_READERS)])
async def get_collection_effectiveness(ctx: Ctx, session: SessionDep,
                                       principal: CurrentPrincipal, from_: From = None,
                                       to: To = None) -> CeiPublic:
    """Collection effectiveness index per currency over a period (100: all that could be collected was)."""
    span = service.period(from_, to, ctx.clock.today())
    got = await service.collection_effectiveness(session, from_=span.from_, to=span.to,
                                                 salesperson_id=_own(principal))
    return CeiPublic.model_validate({"from": got.from_, "to": got.to,
                                     "requested_to": span.requested_to,
                                     "rows": [vars(r) for r in got.rows]})


@router.get("/salesperson-performance", response_model=PerformancePublic,
            dependencies=[require(*REPORT_READERS)])
async def get_salesperson_performance(ctx: Ctx, session: SessionDep,
                                      principal: CurrentPrincipal, from_: From = None,
                                      to: To = None) -> PerformancePublic:
    """Per salesperson and currency: invoiced, collected, rate, overdue, days to pay, written off, grade.

    collection_rate = collected / (receivables at the start + invoiced in the period);
    overdue_share = overdue at the end / receivables at the end. The grade is the first of
    O2C_PERFORMANCE_GRADES whose min_collection_rate and max_overdue_share both hold (by
    default A: rate ≥ 0.95 and share ≤ 0.05; B: 0.85 / 0.15; C: 0.70 / 0.30; else D), null
    when nothing was owed or invoiced.
    """
    span = service.period(from_, to, ctx.clock.today())
    got = await service.salesperson_performance(
        session, from_=span.from_, to=span.to, salesperson_id=_own(principal),
        rules=ctx.settings.performance_grades)
    return PerformancePublic.model_validate({"from": got.from_, "to": got.to,
                                             "requested_to": span.requested_to,
                                             "rows": [vars(r) for r in got.rows]})
