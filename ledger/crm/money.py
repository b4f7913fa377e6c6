"""Money as exact integers of a currency's minor units: ``"12.34" USD`` is 1234, ``"1500" JPY`` is 1500.

``EXPONENTS`` is ISO 4217's minor-unit exponent for the currencies shops commonly report, kept here rather than
taken from a dependency (pycountry has no exponents; CLDR's display digits differ from ISO's, e.g. HUF and TWD).
A currency missing from it is refused with ``InvalidAmount``; adding one is a one-line change. Amounts are parsed
as text, never through float or Decimal contexts, so nothing is rounded: a value with more decimals than its
currency has is an error, not a rounding.
"""

from __future__ import annotations

import re

from ledger.errors import InvalidAmount

#: ISO 4217 minor units (the exponent) by alphabetic code.
EXPONENTS: dict[str, int] = {
    # no minor unit
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # thousandths
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # hundredths
    "AED": 2, "ARS": 2, "AUD": 2, "BDT": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "COP": 2, "CZK": 2,
    "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "KES": 2,
    "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2, "PLN": 2,
    "QAR": 2, "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2,
    "ZAR": 2,
}  # fmt: skip

#: The largest value a BIGINT column (``conversions.value_minor``) holds on both engines.
MAX_MINOR = 2**63 - 1
_MAX_DIGITS = len(str(MAX_MINOR))  # 19; longer digit strings are refused before int() sees them
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


def currency_exponent(currency: str) -> int:
    """The ISO 4217 exponent of an upper-case code; InvalidAmount for a code not in ``EXPONENTS``."""
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise InvalidAmount(
            f"unknown currency {currency!r}: expected an ISO 4217 code adledger knows, such as USD, EUR or JPY "
            "(the table is in ledger/crm/money.py)"
        ) from None


def normalize_currency(text: str) -> str:
    """``" usd"`` -> ``"USD"``, checked against ``EXPONENTS``."""
    currency = text.strip().upper()
    currency_exponent(currency)
    return currency


def parse_minor(text: str, currency: str) -> int:
    """The exact minor units of a non-negative decimal string in ``currency``: ``("12.34", "USD")`` -> 1234.

    Only plain digits with an optional ``.`` and fraction are accepted: signs, exponents, NaN, infinity and
    thousands separators are refused. More decimals than the currency has are refused unless the extra ones are
    zeros (``"1500.00"`` JPY is exactly 1500, ``"12.345"`` USD cannot be stored). Negative values are refused:
    a refund is not a purchase.
    """
    exponent = currency_exponent(currency)
    stripped = text.strip()
    match = _AMOUNT.fullmatch(stripped)
    if match is None:
        if stripped.startswith("-"):
            raise InvalidAmount(f"value {text!r} is negative: a conversion is a purchase, refunds are not imported")
        raise InvalidAmount(f"value {text!r} is not a decimal number such as 12.34 (no sign, exponent or separators)")
    whole, fraction = match.group(1), match.group(2) or ""
    significant = fraction.rstrip("0")
    if len(significant) > exponent:
        raise InvalidAmount(f"value {text!r} has more decimals than {currency} allows ({exponent})")
    digits = (whole + significant.ljust(exponent, "0")).lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS or int(digits) > MAX_MINOR:
        raise InvalidAmount(f"value {text!r} {currency} is more than 2^63-1 minor units, the largest storable")
    return int(digits)


def check_minor(value_minor: object) -> int:
    """``value_minor`` if it is an int in [0, 2^63-1]; bools and floats are refused, not coerced."""
    if isinstance(value_minor, bool) or not isinstance(value_minor, int):
        raise InvalidAmount(f"value_minor must be an int of minor units, not {type(value_minor).__name__}")
    if not 0 <= value_minor <= MAX_MINOR:
        raise InvalidAmount(f"value_minor {value_minor} is outside [0, 2^63-1]")
    return value_minor


def format_minor(value_minor: int, currency: str) -> str:
    """``(1234, "USD")`` -> ``"12.34 USD"``, for messages: the inverse of ``parse_minor``."""
    exponent = currency_exponent(currency)
    if exponent == 0:
        return f"{value_minor} {currency}"
    whole, fraction = divmod(value_minor, 10**exponent)
    return f"{whole}.{fraction:0{exponent}d} {currency}"
