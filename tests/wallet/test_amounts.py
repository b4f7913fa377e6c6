"""wallet.amounts: token amounts typed in decimal tokens become exact base units, and back."""

from __future__ import annotations

import pytest

from ledger.types import UINT256_MAX
from wallet.amounts import format_tokens, parse_tokens
from wallet.errors import InvalidAmount

TOKEN = 10**18


class TestParseTokens:
    @pytest.mark.parametrize(
        ("text", "units"),
        [
            ("1", TOKEN),
            ("1.5", 3 * TOKEN // 2),
            ("0.1", TOKEN // 10),  # a float would give 100000000000000005.55...
            (".25", TOKEN // 4),
            ("2.", 2 * TOKEN),
            (" 0.000000000000000001 ", 1),
            ("1.500000000000000000000", 3 * TOKEN // 2),  # decimals past 18 are refused only if they are not zeros
            ("123456789012345678901234567890.123456789012345678", 123456789012345678901234567890123456789012345678),
        ],
    )
    def test_a_plain_decimal_becomes_exact_base_units(self, text: str, units: int):
        assert parse_tokens(text) == units

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("0.0000000000000000001", "the token has 18 decimals"),
            ("1.0000000000000000001", "the token has 18 decimals"),
            ("0", "more than zero"),
            ("0.000", "more than zero"),
            ("-1", "digits with at most one dot"),
            ("1e3", "digits with at most one dot"),
            ("1,5", "digits with at most one dot"),
            ("1_000", "digits with at most one dot"),
            ("NaN", "digits with at most one dot"),
            ("", "digits with at most one dot"),
            (".", "digits with at most one dot"),
            (str(UINT256_MAX), "larger than any token balance"),
        ],
    )
    def test_anything_else_is_refused_with_its_reason(self, text: str, reason: str):
        with pytest.raises(InvalidAmount, match=reason) as refused:
            parse_tokens(text)
        assert refused.value.exit_code == 7

    def test_the_largest_balance_is_accepted(self):
        assert parse_tokens(format_tokens(UINT256_MAX)) == UINT256_MAX


class TestFormatTokens:
    @pytest.mark.parametrize(
        ("units", "text"),
        [(0, "0"), (1, "0.000000000000000001"), (TOKEN, "1"), (11 * TOKEN // 1000, "0.011"), (-TOKEN // 2, "-0.5")],
    )
    def test_exact_without_trailing_zeros(self, units: int, text: str):
        assert format_tokens(units) == text

    @pytest.mark.parametrize("units", [1, 10**17 + 1, 123 * TOKEN + 456, UINT256_MAX])
    def test_parsing_the_text_gives_the_units_back(self, units: int):
        assert parse_tokens(format_tokens(units)) == units
