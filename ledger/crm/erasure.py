"""Erasure of a customer: their PII and wallet links go; the pseudonymous chain-derived rows stay, detached.

The chain keeps its logs whatever we do, and the reports (campaign totals, ROI) must keep equalling it, so
touchpoints, rejections, claims and conversions are kept with ``customer_id`` set to NULL: nothing left in
the database connects them to the person. The foreign keys say ON DELETE SET NULL / CASCADE as well; doing it
explicitly here counts the rows for the report and does not depend on SQLite's foreign-key pragma.
A conversion's ``order_ref`` still points into the shop's own records: erasure there is the shop's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Update, update
from sqlalchemy.orm import Session

from ledger.crm.models import Claim, Conversion, Rejection, Touchpoint
from ledger.crm.repository import get_customer


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure removed and what it detached, for the requester's confirmation and the audit log."""

    customer_id: int
    wallet_links_deleted: int
    touchpoints_detached: int
    rejections_detached: int
    claims_detached: int
    conversions_detached: int


def erase_customer(session: Session, customer_id: int) -> ErasureReport:
    """Deletes the customer (all their PII) and wallet links, detaching their other rows; raises
    CustomerNotFound for an unknown id. Flushes within the caller's transaction: the caller commits."""
    customer = get_customer(session, customer_id)
    detached = {
        model: _rowcount(session, update(model).where(model.customer_id == customer_id).values(customer_id=None))
        for model in (Touchpoint, Rejection, Claim, Conversion)
    }
    links = len(customer.wallet_links)
    session.delete(customer)  # the links go with it (cascade)
    session.flush()
    return ErasureReport(
        customer_id=customer_id,
        wallet_links_deleted=links,
        touchpoints_detached=detached[Touchpoint],
        rejections_detached=detached[Rejection],
        claims_detached=detached[Claim],
        conversions_detached=detached[Conversion],
    )


def _rowcount(session: Session, statement: Update) -> int:
    result = cast(CursorResult[Any], session.execute(statement))  # DML results are cursor results
    return result.rowcount
