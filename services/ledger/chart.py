"""The chart of accounts the ledger posts to, as data; seeded at start-up.

Codes follow the usual ranges: 1xxx assets, 2xxx liabilities, 3xxx equity, 4xxx income
(4100 sales returns is contra-revenue, so debit-normal), 6xxx expenses. Accounts marked
`requires_customer` are sub-ledgers by customer: each of their journal lines names the
customer (`journal_lines.customer_id`) instead of the chart holding one account per customer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, IntegrityError

from services.ledger import repository
from services.ledger.models import Account, AccountKind, NormalSide
from shared.clock import Clock
from shared.db import Database
from shared.migrations import schema_missing

log = logging.getLogger("o2c.ledger")

CASH = "1000"
RECEIVABLES = "1100"
OFFSET_GOODS = "1200"
UNAPPLIED_CASH = "2100"
OPENING_BALANCE_EQUITY = "3000"
REVENUE = "4000"
SALES_RETURNS = "4100"
LATE_PAYMENT_INCOME = "4200"
BAD_DEBT_RECOVERIES = "4300"
BAD_DEBT_EXPENSE = "6100"


@dataclass(frozen=True)
class AccountSpec:
    code: str
    name: str
    kind: AccountKind
    normal_side: NormalSide
    requires_customer: bool = False


SYSTEM_ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(CASH, "Cash and bank", AccountKind.asset, NormalSide.debit),
    AccountSpec(RECEIVABLES, "Trade receivables", AccountKind.asset, NormalSide.debit,
                requires_customer=True),
    AccountSpec(OFFSET_GOODS, "Goods received in offset", AccountKind.asset, NormalSide.debit),
    AccountSpec(UNAPPLIED_CASH, "Unapplied customer cash", AccountKind.liability,
                NormalSide.credit, requires_customer=True),
    AccountSpec(OPENING_BALANCE_EQUITY, "Opening balance equity", AccountKind.equity,
                NormalSide.credit),
    AccountSpec(REVENUE, "Revenue", AccountKind.income, NormalSide.credit),
    AccountSpec(SALES_RETURNS, "Sales returns and allowances", AccountKind.income,
                NormalSide.debit),
    AccountSpec(LATE_PAYMENT_INCOME, "Late-payment interest and fees", AccountKind.income,
                NormalSide.credit),
    AccountSpec(BAD_DEBT_RECOVERIES, "Bad-debt recoveries", AccountKind.income,
                NormalSide.credit),
    AccountSpec(BAD_DEBT_EXPENSE, "Bad-debt expense", AccountKind.expense, NormalSide.debit),
)

# Document counters created at start-up, so the first postings never race to create them.
COUNTERS = {"journal_entry": "JE", "invoice": "INV", "payment": "PAY", "credit_note": "CN",
            "debit_note": "DN", "invoice_import": "IMP", "refund": "RF"}
# Only documents post to these: a manual journal entry may not (the aging always equals them).
CONTROL_ACCOUNTS = frozenset({RECEIVABLES, UNAPPLIED_CASH})


# ---------------------------------------------------------------- seeding


async def seed_chart(db: Database, clock: Clock) -> list[str]:
    """Insert the system accounts and document counters that are missing; returns the codes added."""
    async with db.session() as session, session.begin():
        have = await repository.existing_account_codes(session)
        missing = [spec for spec in SYSTEM_ACCOUNTS if spec.code not in have]
        now = clock.now()
        session.add_all(Account(code=spec.code, name=spec.name, kind=spec.kind,
                                normal_side=spec.normal_side,
                                requires_customer=spec.requires_customer, system=True,
                                created_at=now) for spec in missing)
        for name in COUNTERS.keys() - await repository.existing_counters(session):
            await repository.add_counter(session, name)
    return [spec.code for spec in missing]


async def ensure_chart(db: Database, clock: Clock, *, quiet: bool = False) -> bool:
    """Seed the chart; whether it is seeded. Another replica seeding at the same moment is fine.

    A database without the ledger's tables (not migrated yet) is a warning (none when `quiet`),
    not fatal: `/ready` reports it, and the app tries again until `o2c migrate ledger` has run.
    """
    for attempt in range(3):
        try:
            added = await seed_chart(db, clock)
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        except DBAPIError as exc:
            if not schema_missing(exc):
                raise
            if not quiet:
                log.warning("ledger accounts not seeded yet: the database is not migrated; they "
                            "will be once `o2c migrate ledger` has run")
            return False
        if added:
            log.info("seeded ledger accounts %s", ", ".join(added))
        return True
    return False
