"""Exact counts and sums of uint256 columns, grouped, on both databases.

PostgreSQL sums NUMERIC(78) exactly in SQL. SQLite stores ``ledger.types.Uint256`` as zero-padded text, which its
SUM would add as floats, so there the rows are read and added as Python ints.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, null, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session

from ledger.types import Uint256


def count_and_sum(
    session: Session,
    amount: InstrumentedAttribute[Any],
    *where: ColumnElement[bool],
    group_by: InstrumentedAttribute[Any] | None = None,
) -> dict[Any, tuple[int, int]]:
    """``{group: (row count, exact sum of amount)}`` over the rows matching ``where``; without ``group_by`` the one
    key is None. Groups without rows are absent; NULL amounts count as rows and add nothing."""
    group = group_by if group_by is not None else null()
    if session.get_bind().dialect.name == "postgresql":
        summed = type_coerce(func.coalesce(func.sum(amount), 0), Uint256())
        stmt = select(group, func.count(), summed).where(*where)
        if group_by is not None:
            stmt = stmt.group_by(group_by)  # without it: one row over everything, counted 0 when nothing matched
        return {key: (int(count), int(sum_)) for key, count, sum_ in session.execute(stmt) if count}
    found: dict[Any, tuple[int, int]] = {}
    for key, value in session.execute(select(group, amount).where(*where)):
        count, sum_ = found.get(key, (0, 0))
        found[key] = (count + 1, sum_ + (value or 0))
    return found


def total(session: Session, amount: InstrumentedAttribute[Any], *where: ColumnElement[bool]) -> tuple[int, int]:
    """(row count, exact sum) of ``amount`` over the rows matching ``where``."""
    return count_and_sum(session, amount, *where).get(None, (0, 0))
