"""Customer dedup: one record per real person, found by normalised email or phone.

Normalisation is deliberately plain, so that it never merges two people: an email is trimmed and lower-cased
(no provider rules such as Gmail's dots or ``+tags``); a phone must be international (``+`` or ``00`` and the
country code) and becomes ``+`` and its digits, E.164-style. A national number is refused rather than guessed
at, since guessing the country could merge strangers.
"""

from __future__ import annotations

import re

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.crm.models import Customer, LifecycleStage
from ledger.db import add_or_get
from ledger.errors import AmbiguousCustomer, ContactInUse, CustomerNotFound, InvalidContact

_SEPARATORS = re.compile(r"[\s\-.()/]")
E164_MAX_DIGITS = 15
E164_MIN_DIGITS = 7  # the shortest numbers in use, country code included (e.g. some Pacific islands)


def normalize_email(email: str) -> str:
    """``"  Ann@Example.COM "`` -> ``"ann@example.com"``."""
    normalized = email.strip().lower()
    local, at, domain = normalized.rpartition("@")
    if not at or not local or not domain or "." not in domain or any(c.isspace() for c in normalized):
        raise InvalidContact(f"{email!r} is not an email address")
    return normalized


def normalize_phone(phone: str) -> str:
    """``"+44 (20) 7946-0958"`` or ``"0044 20 7946 0958"`` -> ``"+442079460958"``."""
    compact = _SEPARATORS.sub("", phone)
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    else:
        raise InvalidContact(f"{phone!r} needs its country code: write it as +<country><number>")
    if not digits.isdigit() or not digits.isascii():
        raise InvalidContact(f"{phone!r} has characters other than digits and separators")
    if digits.startswith("0") or not E164_MIN_DIGITS <= len(digits) <= E164_MAX_DIGITS:
        raise InvalidContact(f"{phone!r} is not an international number (country code, then 7 to 15 digits)")
    return "+" + digits


def upsert_customer(
    session: Session,
    *,
    email: str | None = None,
    phone: str | None = None,
    display_name: str | None = None,
    lead_source: str | None = None,
    tier: str | None = None,
    owner: str | None = None,
) -> tuple[Customer, bool]:
    """Creates the customer, or merges into the one whose normalised email or phone matches; returns
    ``(customer, merged)``. A merge only fills the existing record's blanks (None means unknown, never "erase"):
    what is already there wins, so an import cannot overwrite what a person corrected. Flushes; the caller
    commits.
    """
    email_key = normalize_email(email) if email else None
    phone_key = normalize_phone(phone) if phone else None
    given = {
        "email": email,
        "email_normalized": email_key,
        "phone": phone,
        "phone_normalized": phone_key,
        "display_name": display_name,
        "lead_source": lead_source,
        "tier": tier,
        "owner": owner,
    }
    found = _find(session, email_key, phone_key)
    if found is None:
        new = Customer(**given, lifecycle_stage=LifecycleStage.AWARE)
        customer, created = add_or_get(session, new, lambda: _find(session, email_key, phone_key))
        if created:
            return customer, False
    else:
        customer = found
    _fill_blanks(customer, given)
    session.flush()
    return customer, True


def _find(session: Session, email: str | None, phone: str | None) -> Customer | None:
    conditions = []
    if email is not None:
        conditions.append(Customer.email_normalized == email)
    if phone is not None:
        conditions.append(Customer.phone_normalized == phone)
    if not conditions:
        return None
    found = list(session.scalars(select(Customer).where(or_(*conditions)).order_by(Customer.id)))
    if len(found) > 1:
        raise AmbiguousCustomer([customer.id for customer in found])
    return found[0] if found else None


def _fill_blanks(customer: Customer, given: dict[str, str | None]) -> None:
    if customer.email_normalized is None and given["email_normalized"] is not None:
        customer.email, customer.email_normalized = given["email"], given["email_normalized"]
    if customer.phone_normalized is None and given["phone_normalized"] is not None:
        customer.phone, customer.phone_normalized = given["phone"], given["phone_normalized"]
    for name in ("display_name", "lead_source", "tier", "owner"):
        if getattr(customer, name) is None and given[name] is not None:
            setattr(customer, name, given[name])


# customers.id is a 32-bit INTEGER: a larger id names no one (PostgreSQL would refuse to compare it)
MAX_CUSTOMER_ID = 2**31 - 1


def get_customer(session: Session, customer_id: int) -> Customer:
    """The customer with this id, or CustomerNotFound (also for ids no row can have)."""
    if isinstance(customer_id, bool) or not isinstance(customer_id, int) or not 1 <= customer_id <= MAX_CUSTOMER_ID:
        raise CustomerNotFound(f"no customer has id {customer_id!r}")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise CustomerNotFound(f"no customer has id {customer_id}")
    return customer


#: What ``update_customer`` may change; the contacts are re-normalised, the rest stored as given.
EDITABLE = frozenset({"display_name", "email", "phone", "lead_source", "lifecycle_stage", "tier", "owner"})


def update_customer(session: Session, customer_id: int, changes: dict[str, object]) -> Customer:
    """Applies ``changes`` (only the fields given; None clears one, except the lifecycle stage). A new email or
    phone is normalised, and refused with ContactInUse when another customer has it. Flushes; the caller commits."""
    if unknown := set(changes) - EDITABLE:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    customer = get_customer(session, customer_id)
    for field, normalize, column in (
        ("email", normalize_email, Customer.email_normalized),
        ("phone", normalize_phone, Customer.phone_normalized),
    ):
        if field not in changes:
            continue
        value = changes[field]
        if value is not None and not isinstance(value, str):
            raise InvalidContact(f"{field} must be text")
        key = normalize(value) if value else None
        if key is not None:
            other = session.scalar(select(Customer.id).where(column == key, Customer.id != customer.id))
            if other is not None:
                raise ContactInUse(field, other)
        setattr(customer, field, value or None)
        setattr(customer, f"{field}_normalized", key)
    for field in EDITABLE - {"email", "phone"}:
        if field in changes:
            if field == "lifecycle_stage" and changes[field] is None:
                raise ValueError("the lifecycle stage cannot be cleared")
            setattr(customer, field, changes[field])
    keys = {"email": customer.email_normalized, "phone": customer.phone_normalized}
    try:
        with session.begin_nested():  # the unique keys decide a race the checks above cannot see
            session.flush()
    except IntegrityError:
        for field, column in (("email", Customer.email_normalized), ("phone", Customer.phone_normalized)):
            other = session.scalar(select(Customer.id).where(column == keys[field], Customer.id != customer_id))
            if field in changes and other is not None:
                raise ContactInUse(field, other) from None
        raise
    return customer
