"""wallet.address: typed addresses in any case, mistyped ones refused with the reason."""

from __future__ import annotations

import pytest

from tests.wallet.conftest import ANVIL_ACCOUNTS
from wallet.address import checksummed
from wallet.errors import InvalidAddress

ADDRESS = ANVIL_ACCOUNTS[0]


class TestChecksummed:
    @pytest.mark.parametrize(
        "typed",
        [
            ADDRESS,
            ADDRESS.lower(),
            "0x" + ADDRESS[2:].upper(),
            ADDRESS[2:].lower(),
            f" {ADDRESS}\n",
            "0X" + ADDRESS[2:],
        ],
        ids=["checksummed", "lower", "upper", "no-0x", "pasted", "capital-0X"],
    )
    def test_any_single_case_or_a_valid_checksum_is_accepted(self, typed: str):
        assert checksummed(typed) == ADDRESS

    def test_a_mixed_case_typo_fails_the_checksum(self):
        typo = ADDRESS[:5] + ADDRESS[5].swapcase() + ADDRESS[6:]
        with pytest.raises(InvalidAddress, match="its mixed case fails the EIP-55 checksum"):
            checksummed(typo)

    @pytest.mark.parametrize("typed", ["", "0x", ADDRESS[:-1], ADDRESS + "0", "0x" + "g" * 40, "vitalik.eth"])
    def test_what_is_not_40_hex_digits_is_refused(self, typed: str):
        with pytest.raises(InvalidAddress, match="an address is 40 hex digits, 0x optional") as info:
            checksummed(typed)
        assert info.value.address == typed and info.value.exit_code == 7
