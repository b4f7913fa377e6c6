"""Token amounts as people type and read them: decimal tokens in, integer base units inside, and back.

The reward token has 18 decimals, so 1.5 tokens are 1_500_000_000_000_000_000 base units. Conversion is exact
(``decimal.Decimal`` at a precision above uint256's 78 digits): a float would turn 0.1 into 0.1000000000000000055.
"""

from __future__ import annotations

import re
from decimal import Context, Decimal

from ledger.types import UINT256_MAX
from wallet.errors import InvalidAmount

DECIMALS = 18
# 78 digits hold any uint256; 100 leaves room for the 18 decimals before the scaling
_EXACT = Context(prec=100)
# plain decimal notation only: "1e3", "Infinity" and "1_000" are valid Decimals but not what a person means
_PLAIN = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def parse_tokens(text: str, decimals: int = DECIMALS) -> int:
    """Base units of an amount typed in tokens (``"1.5"``); InvalidAmount unless it is a plain positive decimal
    with at most ``decimals`` decimals and fits a uint256."""
    typed = text.strip()
    if not _PLAIN.fullmatch(typed):
        raise InvalidAmount(text, "write digits with at most one dot, e.g. 1.5")
    scaled = _EXACT.scaleb(Decimal(typed), decimals)
    if scaled != scaled.to_integral_value(context=_EXACT):
        raise InvalidAmount(text, f"the token has {decimals} decimals; this amount has more")
    units = int(scaled)
    if units <= 0:
        raise InvalidAmount(text, "an amount is more than zero")
    if units > UINT256_MAX:
        raise InvalidAmount(text, "it is larger than any token balance can be (2^256 - 1 base units)")
    return units


def format_tokens(units: int, decimals: int = DECIMALS) -> str:
    """Base units as tokens, exactly and without trailing zeros: 11_000_000_000_000_000 -> ``"0.011"``."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{decimals}d}".rstrip("0")
