"""Money as exact minor units: decimal text parsed without floats, ISO 4217 exponents, BIGINT range."""

from __future__ import annotations

import pytest

from ledger.crm.money import (
    EXPONENTS,
    MAX_MINOR,
    check_minor,
    currency_exponent,
    format_minor,
    normalize_currency,
    parse_minor,
)
from ledger.errors import InvalidAmount


class TestCurrencyExponent:
    @pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)])
    def test_is_the_iso_4217_minor_unit(self, currency: str, exponent: int):
        assert currency_exponent(currency) == exponent

    def test_an_unknown_code_is_refused_and_says_where_the_table_is(self):
        with pytest.raises(InvalidAmount, match=r"unknown currency 'XYZ'.*ledger/crm/money.py"):
            currency_exponent("XYZ")

    def test_every_code_is_three_upper_case_letters_with_a_known_exponent(self):
        assert all(len(code) == 3 and code.isascii() and code.isupper() for code in EXPONENTS)
        assert set(EXPONENTS.values()) == {0, 2, 3}

    @pytest.mark.parametrize("given", ["usd", " USD ", "Usd"])
    def test_normalize_currency_trims_and_upper_cases(self, given: str):
        assert normalize_currency(given) == "USD"


class TestParseMinor:
    @pytest.mark.parametrize(
        ("text", "currency", "minor"),
        [
            ("12.34", "USD", 1234),
            ("12.3", "USD", 1230),
            ("12", "USD", 1200),
            ("0.01", "EUR", 1),
            ("0", "EUR", 0),
            ("1500", "JPY", 1500),
            ("1.005", "KWD", 1005),
            (" 7.50 ", "GBP", 750),
            ("007.50", "GBP", 750),
            ("0.1", "USD", 10),  # 0.1 is not exact as a float; as text it is exactly 10 cents
        ],
    )
    def test_is_exact(self, text: str, currency: str, minor: int):
        assert parse_minor(text, currency) == minor

    @pytest.mark.parametrize(("text", "currency", "minor"), [("12.340", "USD", 1234), ("1500.00", "JPY", 1500)])
    def test_trailing_zeros_beyond_the_exponent_are_exact_and_accepted(self, text: str, currency: str, minor: int):
        assert parse_minor(text, currency) == minor

    @pytest.mark.parametrize(
        ("text", "currency", "exponent"), [("12.345", "USD", 2), ("1500.5", "JPY", 0), ("1.0005", "KWD", 3)]
    )
    def test_more_decimals_than_the_currency_has_are_refused(self, text: str, currency: str, exponent: int):
        with pytest.raises(InvalidAmount) as raised:
            parse_minor(text, currency)
        assert str(raised.value) == f"value {text!r} has more decimals than {currency} allows ({exponent})"

    @pytest.mark.parametrize("text", ["-5.00", "-0.01"])
    def test_a_negative_value_is_refused(self, text: str):
        with pytest.raises(InvalidAmount, match="negative"):
            parse_minor(text, "USD")

    @pytest.mark.parametrize(
        "text", ["NaN", "nan", "inf", "Infinity", "1e3", "1E-2", "+5", "1,234.00", "12.", ".5", "", "١٢", "1 2", "0x1"]
    )
    def test_anything_but_plain_digits_is_refused(self, text: str):
        with pytest.raises(InvalidAmount, match="is not a decimal number"):
            parse_minor(text, "USD")

    def test_the_bigint_maximum_is_exact_and_one_more_is_refused(self):
        assert parse_minor(str(MAX_MINOR), "JPY") == 2**63 - 1
        assert parse_minor("92233720368547758.07", "USD") == 2**63 - 1
        for text, currency in [(str(2**63), "JPY"), ("92233720368547758.08", "USD"), ("9" * 5000, "USD")]:
            with pytest.raises(InvalidAmount, match="2\\^63-1"):
                parse_minor(text, currency)

    def test_an_unknown_currency_is_refused_before_the_value_is_read(self):
        with pytest.raises(InvalidAmount, match="unknown currency"):
            parse_minor("12.34", "ABC")


class TestCheckMinor:
    @pytest.mark.parametrize("value", [0, 1, MAX_MINOR])
    def test_accepts_ints_in_bigint_range(self, value: int):
        assert check_minor(value) == value

    @pytest.mark.parametrize("value", [-1, 2**63, 12.34, True, "1234", None])
    def test_refuses_floats_bools_text_and_out_of_range(self, value: object):
        with pytest.raises(InvalidAmount):
            check_minor(value)


class TestFormatMinor:
    @pytest.mark.parametrize(
        ("minor", "currency", "text"),
        [(1234, "USD", "12.34 USD"), (5, "EUR", "0.05 EUR"), (1500, "JPY", "1500 JPY"), (1005, "KWD", "1.005 KWD")],
    )
    def test_is_the_inverse_of_parse_minor(self, minor: int, currency: str, text: str):
        assert format_minor(minor, currency) == text
        assert parse_minor(text.split()[0], currency) == minor
