"""Finding customers: by contact (normalised, exact) or by the start of their name, a page at a time.

A query with an ``@`` is an email and one starting with ``+`` or ``00`` a phone: both are normalised as
``upsert_customer`` does and matched exactly (the unique indexes), so a search never finds a near-miss. Anything
else matches the start of the display name, ignoring case. Pages are keyset by id (ascending): a customer
created or erased meanwhile never shifts a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ledger.crm.models import Customer, LifecycleStage
from ledger.crm.repository import MAX_CUSTOMER_ID, normalize_email, normalize_phone
from ledger.errors import InvalidContact, InvalidCursor

MAX_PAGE = 200


@dataclass(frozen=True)
class CustomerPage:
    """Customers in id order; ``next_cursor`` fetches the next page (None on the last)."""

    items: Sequence[Customer]
    next_cursor: str | None


def search_customers(
    session: Session,
    *,
    q: str | None = None,
    stage: LifecycleStage | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> CustomerPage:
    """Customers matching ``q`` (email, phone or name prefix) and ``stage``, ``limit`` per page."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}, not {limit}")
    query = select(Customer)
    if q is not None and q.strip():
        query = query.where(_matching(q.strip()))
    if stage is not None:
        query = query.where(Customer.lifecycle_stage == stage)
    if cursor is not None:
        query = query.where(Customer.id > _parse_cursor(cursor))
    rows = list(session.scalars(query.order_by(Customer.id).limit(limit + 1)))
    items = rows[:limit]
    return CustomerPage(items, str(items[-1].id) if len(rows) > limit else None)


def _matching(q: str) -> ColumnElement[bool]:
    if "@" in q:
        return Customer.email_normalized == normalize_email(q)
    if q.startswith(("+", "00")):
        try:
            return Customer.phone_normalized == normalize_phone(q)
        except InvalidContact:
            pass  # "+" or "00" starting a name is unlikely, but a prefix search is then the honest answer
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(Customer.display_name).like(f"{escaped}%", escape="\\")


def _parse_cursor(cursor: str) -> int:
    """The id of the last customer of the previous page."""
    if not cursor.isdigit() or not 0 < len(cursor) <= 10 or int(cursor) > MAX_CUSTOMER_ID:
        raise InvalidCursor(f"{cursor!r} is not a cursor of this list")
    return int(cursor)
