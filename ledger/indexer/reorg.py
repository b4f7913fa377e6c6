"""Reorg detection and rollback, and the folds that rebuild current state from event rows.

A reorg is detected by hash, not height: the cursor's stored hash is compared with the node's block at that
number, so a chain replaced while the indexer was stopped is noticed on restart. The common ancestor is the
newest stored block the node still has; every chain-derived row above it is deleted and the current-state
tables are re-folded from what remains, in the caller's single transaction, so a reorg is all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.crm.onchain import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    Claim,
    Consent,
    ConsentChange,
    ConsentEvent,
    Rejection,
    Touchpoint,
)
from ledger.errors import ReorgTooDeep
from ledger.indexer import checkpoint
from ledger.indexer.checkpoint import Cursor
from ledger.indexer.source import LogSource
from ledger.model import CampaignStatus

#: Tables with one row per log; a rollback deletes from each by (chain_id, block_number).
LOG_TABLES: tuple[type[Any], ...] = (Touchpoint, Rejection, Claim, ConsentEvent, CampaignEvent, Campaign)


def find_ancestor(session: Session, source: LogSource, chain_id: int, cursor: Cursor) -> Cursor | None:
    """None when the node still has the cursor's block; otherwise the common ancestor to roll back to.

    Raises ReorgTooDeep when no stored block of the window is still on the node's chain.
    """
    head = source.head()
    if cursor.number <= head and source.block(cursor.number).hash == cursor.hash:
        return None
    for stored in checkpoint.stored_blocks(session, chain_id, cursor.number):
        if stored.number <= head and source.block(stored.number).hash == stored.hash:
            return Cursor(stored.number, stored.hash)
    raise ReorgTooDeep(
        f"chain {chain_id} reorganised below every block hash the indexer kept (cursor at block {cursor.number}); "
        "no common ancestor is known"
    )


def roll_back(session: Session, chain_id: int, addresses: list[str], ancestor: Cursor) -> None:
    """Deletes everything above ``ancestor``, moves the cursor there and re-folds what the deleted rows touched."""
    campaigns = _touched_campaigns(session, chain_id, ancestor.number)
    pairs = {
        (str(r), str(c), str(b))
        for r, c, b in session.execute(
            select(ConsentEvent.registry_address, ConsentEvent.consumer, ConsentEvent.brand).where(
                ConsentEvent.chain_id == chain_id, ConsentEvent.block_number > ancestor.number
            )
        )
    }
    for table in LOG_TABLES:
        session.execute(delete(table).where(table.chain_id == chain_id, table.block_number > ancestor.number))
    checkpoint.delete_blocks_above(session, chain_id, ancestor.number)
    checkpoint.save_cursor(session, chain_id, addresses, ancestor)
    refold_campaigns(session, chain_id, campaigns)
    refold_consents(session, chain_id, pairs)


def _touched_campaigns(session: Session, chain_id: int, above: int) -> set[tuple[str, int]]:
    touched: set[tuple[str, int]] = set()
    for table in (CampaignEvent, Claim):
        query = select(table.escrow, table.campaign_id).where(table.chain_id == chain_id, table.block_number > above)
        touched.update((str(e), int(c)) for e, c in session.execute(query))
    return touched


def refold_campaigns(session: Session, chain_id: int, campaigns: Iterable[tuple[str, int]]) -> None:
    """Recomputes status, budget, owed and refund of each campaign from its remaining events and claims.

    (block_number, log_index) orders logs totally: a log index counts within its block, not its transaction.
    """
    for escrow, campaign_id in campaigns:
        row = session.execute(
            select(Campaign).where(
                Campaign.chain_id == chain_id, Campaign.escrow == escrow, Campaign.campaign_id == campaign_id
            )
        ).scalar_one_or_none()
        if row is None:  # its creation was rolled back too
            continue
        events = session.execute(
            select(CampaignEvent).where(
                CampaignEvent.chain_id == chain_id,
                CampaignEvent.escrow == escrow,
                CampaignEvent.campaign_id == campaign_id,
            )
        ).scalars()
        claims = session.execute(
            select(Claim.block_number, Claim.log_index, Claim.amount).where(
                Claim.chain_id == chain_id, Claim.escrow == escrow, Claim.campaign_id == campaign_id
            )
        ).all()
        stream: list[tuple[int, int, CampaignEvent | int]] = [(e.block_number, e.log_index, e) for e in events]
        stream += [(int(b), int(i), int(a)) for b, i, a in claims]
        stream.sort(key=lambda item: (item[0], item[1]))
        status, budget, owed, refunded = CampaignStatus.ACTIVE, 0, 0, 0
        updated = row.block_number
        for block, _, item in stream:
            updated = max(updated, block)
            if isinstance(item, int):  # a claim pays out of what is owed
                owed -= item
                continue
            kind = item.kind
            if kind in (CampaignEventKind.CREATED, CampaignEventKind.FUNDED) and item.budget is not None:
                budget = item.budget
            elif kind == CampaignEventKind.BATCH_SETTLED:
                budget = item.budget if item.budget is not None else budget
                owed += item.amount or 0
            elif kind == CampaignEventKind.PAUSED:
                status = CampaignStatus.PAUSED
            elif kind == CampaignEventKind.UNPAUSED:
                status = CampaignStatus.ACTIVE
            elif kind == CampaignEventKind.CLOSED:
                status, budget, refunded = CampaignStatus.CLOSED, 0, item.amount or 0
                owed = item.owed if item.owed is not None else owed
        row.status, row.budget, row.owed, row.refunded, row.updated_block = status, budget, owed, refunded, updated
    session.flush()


def refold_consents(session: Session, chain_id: int, pairs: Iterable[tuple[str, str, str]]) -> None:
    """Sets each (registry, consumer, brand) consent to what its latest remaining event says, or removes it."""
    for registry, consumer, brand in pairs:
        pair = (
            Consent.chain_id == chain_id,
            Consent.registry_address == registry,
            Consent.consumer == consumer,
            Consent.brand == brand,
        )
        events = (
            session.execute(
                select(ConsentEvent)
                .where(
                    ConsentEvent.chain_id == chain_id,
                    ConsentEvent.registry_address == registry,
                    ConsentEvent.consumer == consumer,
                    ConsentEvent.brand == brand,
                )
                .order_by(ConsentEvent.block_number, ConsentEvent.log_index)
            )
            .scalars()
            .all()
        )
        current = session.execute(select(Consent).where(*pair)).scalar_one_or_none()
        if not events:
            if current is not None:
                session.delete(current)
            continue
        latest = events[-1]
        grants = [e for e in events if e.change == ConsentChange.GRANT and e.expires_at is not None]
        expires_at = grants[-1].expires_at if grants else 0
        if current is None:
            current = Consent(chain_id=chain_id, registry_address=registry, consumer=consumer, brand=brand)
            session.add(current)
        current.purposes = latest.all_purposes
        current.expires_at = int(expires_at or 0)
        current.block_number, current.tx_hash, current.log_index = latest.block_number, latest.tx_hash, latest.log_index
    session.flush()
