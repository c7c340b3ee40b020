"""The reservation decision of DESIGN.md §5 as a pure function over facts, and money wording.

`decide` sees only what the service gathered under the profile lock (profile terms, active
holds, exposure, active guarantees) and answers with a decision and reasons a person can act
on. Rules, first match wins:

1. status `blocked` → rejected ("customer is blocked").
2. status `on_hold` → rejected ("customer on credit hold: <reason of each active hold>").
3. policy `prepaid_only` → rejected ("customer is prepaid only").
4. policy `guarantee_required` and no active guarantee → requires_guarantee.
5. amount ≤ available (= limit + active guarantees − open receivables − reserved) → reserved.
   Active guarantees count: registering one and asking again is how a shortfall is cured.
6. amount > available → requires_guarantee when the policy is `guarantee_required` (a larger
   guarantee is the prescribed remedy for such customers, so a guarantee would cover it);
   otherwise rejected. Both name the shortfall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.credit.models import CreditPolicy, CreditStatus, Decision
from shared.money import format_money


@dataclass(frozen=True)
class Exposure:
    """What a customer owes or has promised to owe, and what it may still draw, in one currency."""

    limit_minor: int
    open_receivables_minor: int
    reserved_minor: int
    guarantees_minor: int

    @property
    def used_minor(self) -> int:
        return self.open_receivables_minor + self.reserved_minor

    @property
    def available_minor(self) -> int:
        """limit + active guarantees − (open receivables + reserved); negative when over limit."""
        return self.limit_minor + self.guarantees_minor - self.used_minor


@dataclass(frozen=True)
class CreditFacts:
    """Everything `decide` needs, gathered under the customer's profile lock."""

    currency: str
    policy: str
    status: str
    exposure: Exposure
    hold_reasons: tuple[str, ...] = ()
    active_guarantees: int = 0


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reasons: list[str] = field(default_factory=list)

    @property
    def reserved(self) -> bool:
        return self.decision is Decision.reserved


def shortfall_reason(available_minor: int, amount_minor: int, currency: str) -> str:
    """"available 600,000.00 CNY, requested 1,000,000.00 CNY; short by 400,000.00 CNY"."""
    available = max(available_minor, 0)
    return (f"available {format_money(available, currency)}, requested "
            f"{format_money(amount_minor, currency)}; short by "
            f"{format_money(amount_minor - available, currency)}")


def decide(facts: CreditFacts, amount_minor: int) -> Verdict:
    """Whether `amount_minor` more may be reserved for the customer, and why (see module doc)."""
    cur = facts.currency
    if facts.status == CreditStatus.blocked:
        return Verdict(Decision.rejected, ["customer is blocked"])
    if facts.status == CreditStatus.on_hold:
        held = "; ".join(facts.hold_reasons) or "no reason recorded"
        return Verdict(Decision.rejected, [f"customer on credit hold: {held}"])
    if facts.policy == CreditPolicy.prepaid_only:
        return Verdict(Decision.rejected, ["customer is prepaid only"])
    if facts.policy == CreditPolicy.guarantee_required and facts.active_guarantees == 0:
        return Verdict(Decision.requires_guarantee, [
            "customer's policy requires a guarantee and none is active; register one "
            "(bank guarantee, letter of credit, …) and ask again"])
    available = facts.exposure.available_minor
    if amount_minor <= available:
        return Verdict(Decision.reserved, [
            f"reserved {format_money(amount_minor, cur)} of available "
            f"{format_money(available, cur)}; {format_money(available - amount_minor, cur)} "
            "left"])
    short = shortfall_reason(available, amount_minor, cur)
    if facts.policy == CreditPolicy.guarantee_required:
        need = format_money(amount_minor - max(available, 0), cur)
        return Verdict(Decision.requires_guarantee, [
            short, f"a further guarantee of at least {need} would cover it"])
    return Verdict(Decision.rejected, [
        short, "raise the credit limit, register a guarantee or reduce the order"])
