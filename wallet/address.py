"""Addresses as people type and paste them: accepted in any case, refused with a reason when they cannot be one."""

from __future__ import annotations

import re

from eth_utils.address import is_checksum_address, to_checksum_address

from wallet.errors import InvalidAddress

_HEX_40 = re.compile(r"[0-9a-fA-F]{40}")


def checksummed(address: str) -> str:
    """The EIP-55 form of ``address``. All lower or upper case is accepted as is; mixed case must pass the EIP-55
    checksum, which is how a mistyped character is caught. Raises InvalidAddress."""
    text = address.strip()
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not _HEX_40.fullmatch(digits):
        raise InvalidAddress(address, "an address is 40 hex digits, 0x optional")
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address("0x" + digits):
        raise InvalidAddress(address, "its mixed case fails the EIP-55 checksum (a typo?)")
    return to_checksum_address("0x" + digits)
