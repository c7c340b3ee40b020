"""Money is integer minor units plus an ISO 4217 currency; Decimal only inside calculations."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, Strict

# ISO 4217 codes in use (the common trading currencies); unknown codes are refused.
CURRENCIES = frozenset("""
AED ARS AUD BDT BGN BHD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK
JPY KES KRW KWD KZT MAD MXN MYR NGN NOK NZD OMR PEN PHP PKR PLN QAR RON RSD RUB SAR SEK SGD
THB TRY TWD UAH USD VND ZAR
""".split())

MAX_MINOR = 10**15  # a quadrillion minor units; beyond that is a typo, not an order

# ISO 4217 minor-unit exponents that are not 2 among CURRENCIES; every other one has 2 decimals.
_EXPONENTS = {
    "BHD": 3, "KWD": 3, "OMR": 3,
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "VND": 0,
}


def _currency(value: str) -> str:
    if value not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency code {value!r}")
    return value


Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$",
                                examples=["CNY"]), AfterValidator(_currency)]
# Strict: a JSON integer only; `true`, `"100"` and `1.5` are refused, not read as 1, 100 or 1.
AmountMinor = Annotated[int, Strict(), Field(ge=0, le=MAX_MINOR, description="Integer minor units.")]
PositiveAmountMinor = Annotated[int, Strict(), Field(gt=0, le=MAX_MINOR,
                                                     description="Integer minor units.")]
Quantity = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3,
                                    description="Up to 3 decimal places; string or number.")]


def line_total(quantity: Decimal, unit_price_minor: int) -> int:
    """`quantity × unit_price_minor`, rounded half-even to a whole minor unit."""
    return int((quantity * unit_price_minor).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (JPY 0, CNY 2, KWD 3)."""
    return _EXPONENTS.get(currency, 2)


def major_units(amount_minor: int, currency: str) -> str:
    """Minor units as major units with thousands separators: 125000 CNY → "1,250.00"."""
    places = exponent(currency)
    return f"{Decimal(amount_minor).scaleb(-places):,.{places}f}"


def format_money(amount_minor: int, currency: str) -> str:
    """An amount as refusals and reasons quote it: 60000000 CNY → "600,000.00 CNY"."""
    return f"{major_units(amount_minor, currency)} {currency}"
