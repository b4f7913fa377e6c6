"""Column types for chain values, exact and identical in meaning on SQLite and PostgreSQL.

- ``Uint256``: a Python int in ``[0, 2**256 - 1]``. PostgreSQL stores NUMERIC(78, 0) (exact, 78 digits hold
  2^256-1). SQLite has no such type (its NUMERIC is a float and its INTEGER 64-bit, TOOLCHAIN.md), so it gets
  the decimal digits zero-padded to 78 characters: text that sorts and compares like the number, so ORDER BY,
  ``=``, ``<`` and MIN/MAX stay correct. SUM and arithmetic do not (SQLite would add them as floats): sum on
  PostgreSQL, or in Python on SQLite.
- ``Address``: ``0x`` + 40 lowercase hex digits (42 characters), the form ``ledger.indexer.decode`` produces,
  so rows compare by plain string equality. Any case goes in; mixed case must be a valid EIP-55 checksum (a
  wrong one is a typo). Checksum for display with ``eth_utils.to_checksum_address``.
- ``Bytes32``: ``0x`` + 64 lowercase hex digits (66 characters) for hashes; bytes of length 32 are accepted.
- ``UTCDateTime``: timezone-aware UTC datetimes in and out on both engines; a naive datetime is refused
  rather than guessed.
- ``IntEnumType``: an IntEnum stored as its integer, as the chain encodes it (actions, reasons, status).

Bad values raise ValueError naming the value (at flush SQLAlchemy wraps it in StatementError, `.orig`).

Each type also binds a whole column at once (``bind_column``, used by ``ledger.db``'s bulk insert): the same
result as binding value by value, checked with one pass in C over the column where the values are already
canonical (the indexer's are), and value by value, with the same errors, where they are not.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from functools import lru_cache
from typing import Any, TypeVar

from eth_utils.address import is_checksum_address, to_checksum_address
from sqlalchemy import DateTime, Numeric, SmallInteger, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

UINT256_MAX = 2**256 - 1
UINT256_DIGITS = len(str(UINT256_MAX))  # 78

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BYTES32 = re.compile(r"0x[0-9a-fA-F]{64}")
# a run of canonical values, concatenated: checks a whole column in one match
_CANONICAL_ADDRESSES = re.compile(r"(?:0x[0-9a-f]{40})*")
_CANONICAL_BYTES32 = re.compile(r"(?:0x[0-9a-f]{64})*")


def _all_canonical(values: list[Any], pattern: re.Pattern[str], length: int) -> bool:
    """Whether every value is a str matching ``pattern``'s unit of ``length`` characters (None aside)."""
    present = [value for value in values if value is not None]
    if not all(type(value) is str for value in present):
        return False
    joined = "".join(present)
    return len(joined) == length * len(present) and pattern.fullmatch(joined) is not None


def check_uint256(value: object) -> int:
    """``value`` if it is an int in uint256 range; bools and floats are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a uint256 must be an int, not {type(value).__name__} ({value!r})")
    if not 0 <= value <= UINT256_MAX:
        raise ValueError(f"{value} is outside the uint256 range [0, 2**256 - 1]")
    return value


# Checksums cost a keccak each and the same addresses recur (a campaign's consumers, batch after batch): each
# distinct address is hashed once per process, up to this many.
_CHECKSUM_CACHE = 65_536
_has_valid_checksum = lru_cache(maxsize=_CHECKSUM_CACHE)(is_checksum_address)


@lru_cache(maxsize=_CHECKSUM_CACHE)
def checksummed(address: str) -> str:
    """The EIP-55 form of a 0x-hex address (ValueError if it is not one), computed once per distinct address."""
    return str(to_checksum_address(address))


def normalize_address(value: object) -> str:
    """The lowercase ``0x`` form of an address given as hex text (any case, checksum verified) or 20 bytes."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise ValueError(f"an address has 20 bytes, not {len(value)}")
        return "0x" + bytes(value).hex()
    if not isinstance(value, str):
        raise ValueError(f"an address must be a 0x-hex string, not {type(value).__name__}")
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value!r} is not an address (0x followed by 40 hex digits)")
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and not _has_valid_checksum(value):
        raise ValueError(f"{value!r} has mixed case but an invalid EIP-55 checksum")
    return value.lower()


def normalize_bytes32(value: object) -> str:
    """The lowercase ``0x`` form of a 32-byte value given as hex text or bytes."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 32:
            raise ValueError(f"a bytes32 has 32 bytes, not {len(value)}")
        return "0x" + bytes(value).hex()
    if not isinstance(value, str):
        raise ValueError(f"a bytes32 must be a 0x-hex string, not {type(value).__name__}")
    if not _BYTES32.fullmatch(value):
        raise ValueError(f"{value!r} is not a bytes32 (0x followed by 64 hex digits)")
    return value.lower()


class Uint256(TypeDecorator[int]):
    """An exact uint256: NUMERIC(78, 0) on PostgreSQL, 78-digit zero-padded text elsewhere (see module doc)."""

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(UINT256_DIGITS, 0))
        return dialect.type_descriptor(String(UINT256_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = check_uint256(value)
        if dialect.name == "postgresql":
            return Decimal(number)  # Decimal(int) is exact whatever the context precision
        return f"{number:0{UINT256_DIGITS}d}"

    def process_result_value(self, value: Any | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)  # exact from Decimal (PostgreSQL) and from the digit string (SQLite)

    def bind_column(self, values: list[Any], dialect: Dialect) -> list[Any]:
        present = [value for value in values if value is not None]
        exact = all(type(value) is int for value in present)
        if not exact or (present and (min(present) < 0 or max(present) > UINT256_MAX)):
            return [self.process_bind_param(value, dialect) for value in values]  # raises on the bad one
        if dialect.name == "postgresql":
            return values  # psycopg sends a Python int into NUMERIC exactly
        return [None if value is None else f"{value:0{UINT256_DIGITS}d}" for value in values]


class Address(TypeDecorator[str]):
    """A 20-byte address as 42-character lowercase ``0x`` text."""

    impl = String(42)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else normalize_address(value)

    def bind_column(self, values: list[Any], dialect: Dialect) -> list[Any]:
        if _all_canonical(values, _CANONICAL_ADDRESSES, 42):
            return values
        return [self.process_bind_param(value, dialect) for value in values]

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class Bytes32(TypeDecorator[str]):
    """A 32-byte hash as 66-character lowercase ``0x`` text: readable in SQL and equal to what decode.py yields."""

    impl = String(66)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else normalize_bytes32(value)

    def bind_column(self, values: list[Any], dialect: Dialect) -> list[Any]:
        if _all_canonical(values, _CANONICAL_BYTES32, 66):
            return values
        return [self.process_bind_param(value, dialect) for value in values]

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite keeps no zone, so it stores naive UTC and gets it back aware)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"expected a datetime, not {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: give it a timezone (datetime.now(UTC))")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_E = TypeVar("_E", bound=IntEnum)


class IntEnumType(TypeDecorator[_E]):
    """An IntEnum stored as its integer value (SMALLINT), read back as the enum member."""

    impl = SmallInteger
    cache_ok = True

    def __init__(self, enum_class: type[_E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: _E | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self.enum_class.__name__} must be an int or member, not {type(value).__name__}")
        return int(self.enum_class(value))

    def process_result_value(self, value: Any | None, dialect: Dialect) -> _E | None:
        return None if value is None else self.enum_class(value)

    def bind_column(self, values: list[Any], dialect: Dialect) -> list[Any]:
        members = {int(member) for member in self.enum_class}
        if all(type(value) is int and value in members for value in values if value is not None):
            return values
        return [self.process_bind_param(value, dialect) for value in values]


def utcnow() -> datetime:
    """The column default for CRM timestamps."""
    return datetime.now(UTC)
