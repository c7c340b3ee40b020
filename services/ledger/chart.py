"""The chart of accounts the ledger posts to, as data; seeded at start-up.

Codes follow the usual ranges: 1xxx assets, 2xxx liabilities, 3xxx equity, 4xxx income
(4100 sales returns is contra-revenue, so debit-normal), 6xxx expenses. Accounts marked
`requires_customer` are sub-ledgers by customer: each of their journal lines names the
customer (`journal_lines.customer_id`) instead of the chart holding one account per customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ledger.models import AccountKind, NormalSide

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
            "debit_note": "DN"}
