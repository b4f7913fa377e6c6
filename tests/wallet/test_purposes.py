"""wallet.purposes: what a consumer types after --purposes, as the API's purpose names and the registry's mask."""

from __future__ import annotations

import pytest

from ledger.model import ALL_PURPOSES, Purpose
from wallet.errors import InvalidPurposes
from wallet.purposes import NAMES, mask_of, parse_purposes


class TestParsePurposes:
    def test_names_in_any_case_and_order_come_back_in_the_registrys_order_once(self):
        assert parse_purposes(" Email,ads ,, ads") == ["ads", "email"]

    def test_all_means_every_purpose(self):
        assert parse_purposes("all") == list(NAMES) == ["ads", "email", "location", "profile", "purchases", "analytics"]

    @pytest.mark.parametrize(("text", "message"), [("ads,spam", "unknown purpose 'spam'"), (" , ", "no purpose")])
    def test_an_unknown_or_missing_purpose_is_refused(self, text: str, message: str):
        with pytest.raises(InvalidPurposes, match=message):
            parse_purposes(text)


class TestMaskOf:
    def test_the_mask_is_the_registrys(self):
        assert mask_of(["ads", "email"]) == int(Purpose.ADS | Purpose.EMAIL)
        assert mask_of(list(NAMES)) == int(ALL_PURPOSES)
