"""A customer's timeline: what their linked wallets did on chain for one marketer, and what they bought.

Entries are the touchpoints, rejections and claims of the marketer's own campaigns (by the customer's id, or by
a wallet linked to them), the consent events of those wallets for the marketer's brands, and the customer's
conversions, merged oldest first.

Time order across the chain and the shop needs a time for every entry. A touchpoint carries the engagement's
time and a conversion its purchase time; the other logs carry only a block, whose time is known while the block
is in the indexer's reorg window (``indexed_blocks``). An entry without a known time is ordered as the chain
entry before it (or, for the first, after it), so chain entries keep their chain order; its ``at`` stays None.
The history of one person is small, so it is merged in memory; pages are keyset by the sort key, so an entry
indexed meanwhile never shifts a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger.crm.models import Claim, ConsentEvent, Conversion, IndexedBlock, Rejection, Touchpoint, WalletLink
from ledger.crm.repository import get_customer
from ledger.crm.scope import MarketerScope
from ledger.errors import InvalidCursor

MAX_PAGE = 200
SortKey = tuple[int, int, int, int, int]  # (time, 0 chain | 1 shop, chain_id | 0, block | 0, log index | row id)
ChainRow = Touchpoint | Rejection | Claim | ConsentEvent
Row = ChainRow | Conversion


@dataclass(frozen=True)
class TimelineEntry:
    """One entry; ``kind`` says which row it is: touchpoint, rejection, claim, consent or conversion."""

    kind: str
    at: int | None  # unix seconds, None when not known (see the module's docstring)
    row: Row
    key: SortKey


@dataclass(frozen=True)
class TimelinePage:
    items: Sequence[TimelineEntry]
    next_cursor: str | None


def customer_timeline(
    session: Session, scope: MarketerScope, customer_id: int, *, limit: int = 50, cursor: str | None = None
) -> TimelinePage:
    """The customer's timeline as ``scope`` may see it, oldest first, ``limit`` per page; CustomerNotFound."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be 1 to {MAX_PAGE}, not {limit}")
    after = _parse_cursor(cursor) if cursor is not None else None
    get_customer(session, customer_id)
    wallets = set(session.scalars(select(WalletLink.wallet).where(WalletLink.customer_id == customer_id)))
    entries = sorted(
        _chain_entries(session, scope, customer_id, wallets) + _conversions(session, customer_id),
        key=lambda entry: entry.key,
    )
    if after is not None:
        entries = [entry for entry in entries if entry.key > after]
    items = entries[:limit]
    more = len(entries) > limit
    return TimelinePage(items, ".".join(map(str, items[-1].key)) if more else None)


def _chain_entries(session: Session, scope: MarketerScope, customer_id: int, wallets: set[str]) -> list[TimelineEntry]:
    rows: list[tuple[str, ChainRow]] = []
    for kind, model in (("touchpoint", Touchpoint), ("rejection", Rejection), ("claim", Claim)):
        rows += [(kind, row) for row in _campaign_rows(session, model, scope, customer_id, wallets)]
    if wallets and scope.brands:
        consents = session.scalars(
            select(ConsentEvent).where(ConsentEvent.consumer.in_(wallets), ConsentEvent.brand.in_(scope.brands))
        )
        rows += [("consent", row) for row in consents]
    rows.sort(key=lambda item: (item[1].chain_id, item[1].block_number, item[1].log_index))
    times = _block_times(session, [row for _, row in rows])
    known = [
        row.occurred_at if isinstance(row, Touchpoint) else times.get((row.chain_id, row.block_number))
        for _, row in rows
    ]
    order = _filled(known)
    return [
        TimelineEntry(kind, at, row, (when, 0, row.chain_id, row.block_number, row.log_index))
        for (kind, row), at, when in zip(rows, known, order, strict=True)
    ]


def _campaign_rows(
    session: Session,
    model: type[Touchpoint] | type[Rejection] | type[Claim],
    scope: MarketerScope,
    customer_id: int,
    wallets: set[str],
) -> list[ChainRow]:
    """The customer's rows of ``model`` in the marketer's campaigns."""
    campaign_ids = {campaign_id for _, _, campaign_id in scope.campaigns}
    found: list[Touchpoint | Rejection | Claim] = list(
        session.scalars(
            select(model).where(
                or_(model.customer_id == customer_id, model.consumer.in_(wallets)),
                model.campaign_id.in_(campaign_ids),
            )
        )
    )
    return [row for row in found if (row.chain_id, row.escrow, row.campaign_id) in scope.campaigns]


def _conversions(session: Session, customer_id: int) -> list[TimelineEntry]:
    found = session.scalars(select(Conversion).where(Conversion.customer_id == customer_id))
    entries = []
    for row in found:
        at = int(row.occurred_at.timestamp())
        entries.append(TimelineEntry("conversion", at, row, (at, 1, 0, 0, row.id)))
    return entries


def _block_times(session: Session, rows: list[ChainRow]) -> dict[tuple[int, int], int]:
    """The times of the rows' blocks that are still in the reorg window."""
    by_chain: dict[int, set[int]] = {}
    for row in rows:
        if not isinstance(row, Touchpoint):
            by_chain.setdefault(row.chain_id, set()).add(row.block_number)
    times: dict[tuple[int, int], int] = {}
    for chain_id, blocks in by_chain.items():
        found = session.execute(
            select(IndexedBlock.number, IndexedBlock.timestamp).where(
                IndexedBlock.chain_id == chain_id, IndexedBlock.number.in_(blocks)
            )
        )
        times |= {(chain_id, number): timestamp for number, timestamp in found if timestamp is not None}
    return times


def _filled(known: list[int | None]) -> list[int]:
    """Sort times: each unknown one is the previous known one (the first unknowns take the first known one)."""
    first = next((at for at in known if at is not None), 0)
    filled, last = [], first
    for at in known:
        last = at if at is not None else last
        filled.append(last)
    return filled


def _parse_cursor(cursor: str) -> SortKey:
    parts = cursor.split(".")
    if len(cursor) > 120 or len(parts) != 5 or not all(part.lstrip("-").isdigit() for part in parts):
        raise InvalidCursor(f"{cursor!r} is not a cursor of this list")
    a, b, c, d, e = (int(part) for part in parts)
    return a, b, c, d, e
