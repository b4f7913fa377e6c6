"""Consent purposes by name, as the API takes them (``ads``, ``email``), from what a person types (``ads,email``).

The names are ``ledger.model.Purpose``'s members in lower case, which is how the API's schemas spell them.
"""

from __future__ import annotations

from ledger.model import Purpose
from wallet.errors import InvalidPurposes

NAMES = tuple(purpose.name.lower() for purpose in Purpose if purpose.name)
ALL = "all"


def parse_purposes(text: str) -> list[str]:
    """``"ads, Email"`` -> ``["ads", "email"]`` in the registry's bit order, duplicates dropped; ``"all"`` -> every
    purpose. InvalidPurposes names an unknown word, or says that none was given."""
    words = [word.strip().lower() for word in text.split(",") if word.strip()]
    if not words:
        raise InvalidPurposes("no purpose given")
    if ALL in words:
        return list(NAMES)
    unknown = [word for word in words if word not in NAMES]
    if unknown:
        raise InvalidPurposes(f"unknown purpose {unknown[0]!r}; the purposes are {', '.join(NAMES)}")
    return [name for name in NAMES if name in words]


def mask_of(names: list[str]) -> int:
    """The registry's bitmask of purposes given by name (the API's own ``mask_of``, without importing it)."""
    mask = Purpose(0)
    for name in names:
        mask |= Purpose[name.upper()]
    return int(mask)
