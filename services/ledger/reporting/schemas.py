"""Response bodies of the receivables reports."""

from __future__ import annotations

from datetime import date

from pydantic import ConfigDict, Field

from shared.schemas import ResponseModel

Buckets = dict[str, int]
BUCKETS_DOC = ("Minor units by days past due as of the date, in order: current (not yet due), "
               "1-30, 31-60, 61-90, 91-180, 180+ by default (O2C_AGING_BUCKET_DAYS)")


class AgingCustomerRow(ResponseModel):
    customer_id: str
    currency: str
    buckets: Buckets = Field(description=BUCKETS_DOC)
    total_minor: int
    disputed_minor: int = Field(description="Of the total, owed on invoices under a dispute "
                                            "open at the end of as_of")


class AgingSalespersonRow(ResponseModel):
    salesperson_id: str | None = Field(description="null for invoices without a salesperson")
    currency: str
    buckets: Buckets = Field(description=BUCKETS_DOC)
    total_minor: int
    disputed_minor: int


class AgingTotal(ResponseModel):
    currency: str
    buckets: Buckets
    total_minor: int
    disputed_minor: int


class AgingPublic(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "as_of": "2026-03-31", "group_by": "customer", "currency": None,
        "bucket_names": ["current", "1-30", "31-60", "61-90", "91-180", "180+"],
        "rows": [{"customer_id": "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11", "currency": "CNY",
                  "buckets": {"current": 125000, "1-30": 40000, "31-60": 0, "61-90": 0,
                              "91-180": 0, "180+": 0},
                  "total_minor": 165000, "disputed_minor": 40000}],
        "totals": [{"currency": "CNY", "buckets": {"current": 125000, "1-30": 40000, "31-60": 0,
                                                   "61-90": 0, "91-180": 0, "180+": 0},
                    "total_minor": 165000, "disputed_minor": 40000}]}]})

    as_of: date
    group_by: str = Field(description="customer or salesperson")
    currency: str | None = Field(description="The currency asked for, or null for all")
    bucket_names: list[str]
    rows: list[AgingCustomerRow] | list[AgingSalespersonRow] = Field(
        description="One row per customer (or salesperson) and currency with money owed")
    totals: list[AgingTotal] = Field(description="One row per currency")


class DsoRow(ResponseModel):
    currency: str
    receivables_minor: int = Field(description="Owed at the end of `to`")
    credit_sales_minor: int = Field(description="Invoiced (as issued) in the period")
    dso_days: float | None = Field(description="receivables / credit sales × days; null "
                                               "without credit sales")


class PeriodPublic(ResponseModel):
    """The period a report covers. Asked to end after today, it ends today."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", serialization_alias="from")
    to: date = Field(description="The last day covered: the `to` asked for, or today if that "
                                 "was later")
    requested_to: date | None = Field(
        default=None, description="The `to` asked for when it was after today (the report "
                                  "runs to today); null otherwise")


class DsoPublic(PeriodPublic):
    days: int = Field(description="Days in the period, both ends included")
    rows: list[DsoRow] = Field(description="One row per currency")


class CeiRow(ResponseModel):
    currency: str
    opening_receivables_minor: int = Field(description="Owed at the start of `from`")
    credit_sales_minor: int
    closing_receivables_minor: int = Field(description="Owed at the end of `to`")
    closing_current_minor: int = Field(description="Of that, not yet overdue on `to`")
    cei_percent: float | None = Field(
        description="(opening + sales − closing) / (opening + sales − closing current) × 100")


class CeiPublic(PeriodPublic):
    rows: list[CeiRow]


class PerformanceRow(ResponseModel):
    salesperson_id: str | None
    currency: str
    opening_receivables_minor: int = Field(description="Owed on the salesperson's invoices at "
                                                       "the start of `from`")
    invoiced_minor: int = Field(description="Invoiced in the period (sales volume)")
    collected_minor: int = Field(description="Payments applied to the salesperson's invoices "
                                             "in the period, net of payments reversed in it")
    collection_rate: float | None = Field(description="collected / (opening + invoiced); null "
                                                      "when both are 0")
    closing_receivables_minor: int
    overdue_minor: int = Field(description="Owed and past due at the end of `to`")
    overdue_share: float = Field(description="overdue / closing receivables (0 when none)")
    avg_days_to_pay: float | None = Field(description="Issue to paid in full, over invoices "
                                                      "paid by payments in the period")
    written_off_minor: int = Field(description="Write-offs posted in the period")
    grade: str | None = Field(description="From O2C_PERFORMANCE_GRADES; null with nothing to "
                                          "collect")


class PerformancePublic(PeriodPublic):
    rows: list[PerformanceRow]
