"""Reorg detection and rollback: back to the common ancestor, then current state re-folded (``folds``).

A reorg is detected by hash, not height: the cursor's stored hash is compared with the node's block at that
number, so a chain replaced while the indexer was stopped is noticed on restart. The common ancestor is the
newest stored block the node still has; every chain-derived row above it is deleted and the current-state
tables are re-folded from what remains, in the caller's single transaction, so a reorg is all or nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.crm.onchain import (
    Campaign,
    CampaignEvent,
    Claim,
    ConsentEvent,
    Rejection,
    Touchpoint,
)
from ledger.errors import ReorgTooDeep
from ledger.indexer import checkpoint
from ledger.indexer.checkpoint import Cursor
from ledger.indexer.folds import refold_campaigns, refold_consents
from ledger.indexer.source import LogSource

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
