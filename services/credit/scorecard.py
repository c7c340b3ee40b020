"""The credit scorecard: a pure function from a customer's facts to score, grade and terms.

Seven named factors, each with its input, points and maximum, add up to a score of 0–100;
the grade comes from score bands and sets the recommended limit, terms and policy. The
README of the credit service documents every band; keep the two in step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import ROUND_FLOOR, Decimal

from services.credit.models import CreditPolicy
from shared.money import exponent, format_money


@dataclass(frozen=True)
class Financials:
    revenue_minor: int
    net_profit_minor: int
    total_assets_minor: int
    total_liabilities_minor: int
    current_assets_minor: int
    current_liabilities_minor: int
    years_in_business: int
    currency: str


@dataclass(frozen=True)
class InquiryRecord:
    defaults_count: int
    lawsuits_count: int
    rating: str | None = None
    source: str | None = None  # where the record came from, for the explanation


@dataclass(frozen=True)
class AssetFacts:
    """The customer's assets on file in the financials' currency."""

    total_value_minor: int
    encumbered_value_minor: int
    count: int


@dataclass(frozen=True)
class PaymentHistory:
    """What ledger knows about how the customer pays (None fields: not reported)."""

    invoices_paid_on_time: int = 0
    invoices_paid_late: int = 0
    overdue_minor: int = 0
    max_days_overdue: int = 0
    avg_days_late: float | None = None


@dataclass(frozen=True)
class Factor:
    name: str
    input: str | float | int | None
    points: int
    max_points: int
    explanation: str


@dataclass(frozen=True)
class Scorecard:
    score: int
    grade: str
    factors: list[Factor]
    currency: str
    recommended_limit_minor: int
    recommended_terms_days: int
    recommended_policy: str
    limit_basis: str

    def factors_json(self) -> list[dict[str, object]]:
        return [asdict(f) for f in self.factors]


# Grade bands (lowest score of each grade), and what each grade recommends.
GRADE_BANDS = (("A", 80), ("B", 65), ("C", 50), ("D", 35), ("E", 0))
GRADE_TERMS = {
    #      share of the limit basis, terms (days), policy
    "A": (Decimal("1.00"), 60, CreditPolicy.credit),
    "B": (Decimal("0.75"), 45, CreditPolicy.credit),
    "C": (Decimal("0.50"), 30, CreditPolicy.credit),
    "D": (Decimal("0.25"), 30, CreditPolicy.guarantee_required),
    "E": (Decimal("0"), 0, CreditPolicy.prepaid_only),
}
NET_WORTH_SHARE = Decimal("0.20")   # basis: the smaller of 20 % of net worth …
REVENUE_SHARE = Decimal("0.10")     # … and 10 % of annual revenue
LIMIT_STEP_MAJOR = 1000             # recommended limits are rounded down to 1,000 major units


def _ratio(numerator: int, denominator: int) -> Decimal | None:
    return None if denominator == 0 else Decimal(numerator) / Decimal(denominator)


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.1'))} %"


def _band(value: Decimal, bands: tuple[tuple[Decimal, int], ...], *, higher_is_better: bool) -> int:
    for threshold, points in bands:
        if (value >= threshold) if higher_is_better else (value <= threshold):
            return points
    return 0


def profitability(f: Financials) -> Factor:
    margin = _ratio(f.net_profit_minor, f.revenue_minor)
    if margin is None or f.revenue_minor < 0:
        return Factor("profitability", None, 0, 20, "no revenue reported: net margin unknown")
    points = _band(margin, ((Decimal("0.10"), 20), (Decimal("0.05"), 15), (Decimal("0.02"), 10),
                            (Decimal("0.0000001"), 5)), higher_is_better=True)
    return Factor("profitability", float(round(margin, 4)), points, 20,
                  f"net margin {_pct(margin)} (net profit / revenue): ≥10 % 20, ≥5 % 15, "
                  "≥2 % 10, >0 5, else 0")


def leverage(f: Financials) -> Factor:
    debt = _ratio(f.total_liabilities_minor, f.total_assets_minor)
    if debt is None:
        return Factor("leverage", None, 0, 20, "no total assets reported: debt ratio unknown")
    points = _band(debt, ((Decimal("0.40"), 20), (Decimal("0.60"), 14), (Decimal("0.80"), 7)),
                   higher_is_better=False)
    return Factor("leverage", float(round(debt, 4)), points, 20,
                  f"debt ratio {_pct(debt)} (total liabilities / total assets): ≤40 % 20, "
                  "≤60 % 14, ≤80 % 7, else 0")


def liquidity(f: Financials) -> Factor:
    if f.current_liabilities_minor == 0:
        points = 15 if f.current_assets_minor > 0 else 0
        return Factor("liquidity", None, points, 15,
                      "no current liabilities" + (" and positive current assets"
                                                  if points else " and no current assets"))
    current = Decimal(f.current_assets_minor) / Decimal(f.current_liabilities_minor)
    points = _band(current, ((Decimal("2.0"), 15), (Decimal("1.5"), 11), (Decimal("1.0"), 6)),
                   higher_is_better=True)
    return Factor("liquidity", float(round(current, 4)), points, 15,
                  f"current ratio {current.quantize(Decimal('0.01'))} (current assets / current "
                  "liabilities): ≥2.0 15, ≥1.5 11, ≥1.0 6, else 0")


def years_in_business(f: Financials) -> Factor:
    years = f.years_in_business
    points = 10 if years >= 10 else 7 if years >= 5 else 4 if years >= 2 else 0
    return Factor("years_in_business", years, points, 10,
                  f"{years} year(s) in business: ≥10 10, ≥5 7, ≥2 4, else 0")


def inquiry_record(record: InquiryRecord | None) -> Factor:
    if record is None:
        return Factor("credit_inquiry", None, 8, 15,
                      "no credit-inquiry record given or on file: neutral 8 of 15")
    points = max(0, 15 - 8 * record.defaults_count - 3 * record.lawsuits_count)
    source = f" ({record.source})" if record.source else ""
    rating = f", rating {record.rating}" if record.rating else ""
    return Factor("credit_inquiry", f"{record.defaults_count} defaults, "
                  f"{record.lawsuits_count} lawsuits", points, 15,
                  f"inquiry record{source}{rating}: 15 − 8 per default − 3 per lawsuit, "
                  "at least 0")


def encumbered_assets(assets: AssetFacts, currency: str) -> Factor:
    if assets.count == 0 or assets.total_value_minor == 0:
        return Factor("encumbered_assets", None, 5, 10,
                      f"no assets in {currency} on file: neutral 5 of 10")
    share = Decimal(assets.encumbered_value_minor) / Decimal(assets.total_value_minor)
    points = _band(share, ((Decimal("0.20"), 10), (Decimal("0.50"), 6), (Decimal("0.80"), 3)),
                   higher_is_better=False)
    return Factor("encumbered_assets", float(round(share, 4)), points, 10,
                  f"{_pct(share)} of {format_money(assets.total_value_minor, currency)} of "
                  "assets on file is mortgaged or pledged: ≤20 % 10, ≤50 % 6, ≤80 % 3, else 0")


def payment_history(history: PaymentHistory | None, unavailable_because: str) -> Factor:
    if history is None:
        return Factor("payment_history", None, 5, 10,
                      f"no payment history available ({unavailable_because}): neutral 5 of 10")
    paid = history.invoices_paid_on_time + history.invoices_paid_late
    if paid == 0:
        base, basis = 5, "no paid invoices yet: neutral 5"
    else:
        on_time = Decimal(history.invoices_paid_on_time) / Decimal(paid)
        base = int((on_time * 10).quantize(Decimal(1), rounding=ROUND_FLOOR))
        basis = f"{_pct(on_time)} of {paid} paid invoice(s) on time: 10 × share"
    days = history.max_days_overdue
    if days >= 60:
        points, penalty = 0, "; an invoice ≥60 days overdue: 0"
    elif days >= 30:
        points, penalty = min(base, 3), "; an invoice ≥30 days overdue: at most 3"
    elif days > 0:
        points, penalty = max(0, base - 2), f"; overdue now ({days} days): −2"
    else:
        points, penalty = base, ""
    return Factor("payment_history", f"{history.invoices_paid_on_time} on time, "
                  f"{history.invoices_paid_late} late, max {days} days overdue", points, 10,
                  basis + penalty)


def grade_for(score: int) -> str:
    return next(grade for grade, lowest in GRADE_BANDS if score >= lowest)


def recommended_limit(f: Financials, grade: str) -> tuple[int, str]:
    """min(20 % of net worth, 10 % of revenue) × the grade's share, rounded down to 1,000."""
    share = GRADE_TERMS[grade][0]
    net_worth = f.total_assets_minor - f.total_liabilities_minor
    if net_worth <= 0 or f.revenue_minor <= 0:
        return 0, "net worth or revenue not positive: no unsecured limit"
    basis = min(Decimal(net_worth) * NET_WORTH_SHARE, Decimal(f.revenue_minor) * REVENUE_SHARE)
    step = LIMIT_STEP_MAJOR * 10 ** exponent(f.currency)
    limit = int((basis * share / step).to_integral_value(rounding=ROUND_FLOOR)) * step
    return limit, (f"min(20 % of net worth {format_money(net_worth, f.currency)}, 10 % of revenue "
                   f"{format_money(f.revenue_minor, f.currency)}) × {share} for grade {grade}, "
                   "rounded down to 1,000")


def evaluate(financials: Financials, inquiry: InquiryRecord | None, assets: AssetFacts,
             history: PaymentHistory | None, *, history_unavailable_because: str = "ledger has none"
             ) -> Scorecard:
    """Score the customer: factors, score 0–100, grade A–E, recommended limit, terms, policy."""
    factors = [
        profitability(financials), leverage(financials), liquidity(financials),
        years_in_business(financials), inquiry_record(inquiry),
        encumbered_assets(assets, financials.currency),
        payment_history(history, history_unavailable_because),
    ]
    score = sum(f.points for f in factors)
    grade = grade_for(score)
    limit, basis = recommended_limit(financials, grade)
    _, terms, policy = GRADE_TERMS[grade]
    return Scorecard(score=score, grade=grade, factors=factors, currency=financials.currency,
                     recommended_limit_minor=limit, recommended_terms_days=terms,
                     recommended_policy=str(policy), limit_basis=basis)
