"""The indexer's cursor (last block fully indexed, with its hash) and the window of recent block hashes.

Both are written inside the page transaction that stores the page's rows (see ``runner``), so the cursor can
never run ahead of, or lag behind, the rows it vouches for. The window keeps enough hashes to find a common
ancestor after a reorg; anything older is pruned, which is what makes a reorg deeper than it unrecoverable
(``ReorgTooDeep``) instead of silently wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_utils.crypto import keccak
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger.crm.onchain import IndexCheckpoint, IndexedBlock
from ledger.db import insert_ignoring_duplicates
from ledger.indexer.source import BlockRef

# Ethereum mainnet finalises in two epochs (64 blocks); twice that covers every reorg a finalising chain can
# have, and PoW-era or L2 reorgs seen in practice stay far below it.
DEFAULT_WINDOW = 128


@dataclass(frozen=True)
class Cursor:
    """The last block whose logs are all stored, and the hash it had when they were read."""

    number: int
    hash: str


def contract_set_key(addresses: Iterable[str]) -> str:
    """A stable key for a set of addresses (order and case do not matter): keccak of the sorted list."""
    return "0x" + keccak(text=",".join(sorted(a.lower() for a in addresses))).hex()


def load_cursor(session: Session, chain_id: int, key: str, lock: bool = False) -> Cursor | None:
    """The stored cursor for these contracts on this chain, or None before the first page.

    ``lock`` holds the row until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's BEGIN IMMEDIATE
    already holds the whole database), so a page is committed onto the cursor it was read after.
    """
    row = session.get(IndexCheckpoint, (chain_id, key), with_for_update=lock, populate_existing=lock)
    return None if row is None else Cursor(row.block_number, row.block_hash)


def save_cursor(session: Session, chain_id: int, addresses: Sequence[str], cursor: Cursor) -> None:
    """Moves the cursor (forwards after a page, backwards after a reorg); the caller commits."""
    key = contract_set_key(addresses)
    row = session.get(IndexCheckpoint, (chain_id, key))
    if row is None:
        row = IndexCheckpoint(
            chain_id=chain_id, contract_set=key, addresses=",".join(sorted(a.lower() for a in addresses))
        )
        session.add(row)
    row.block_number = cursor.number
    row.block_hash = cursor.hash
    session.flush()


def delete_cursor(session: Session, chain_id: int, key: str) -> None:
    """Forgets the cursor (a rebuild starts again from the deploy block)."""
    session.execute(
        delete(IndexCheckpoint).where(IndexCheckpoint.chain_id == chain_id, IndexCheckpoint.contract_set == key)
    )


def record_blocks(session: Session, chain_id: int, blocks: Iterable[BlockRef]) -> None:
    """Stores hashes of indexed blocks; a block already stored keeps its row (a reorg deletes it first)."""
    rows = [
        {"chain_id": chain_id, "number": b.number, "hash": b.hash, "parent_hash": b.parent_hash}
        for b in {b.number: b for b in blocks}.values()
    ]
    insert_ignoring_duplicates(session, IndexedBlock, rows, conflict_columns=("chain_id", "number"))


def prune_blocks(session: Session, chain_id: int, newest: int, window: int) -> None:
    """Drops block hashes more than ``window`` blocks below ``newest``: no reorg that deep can be undone."""
    oldest = newest - window
    session.execute(delete(IndexedBlock).where(IndexedBlock.chain_id == chain_id, IndexedBlock.number < oldest))


def delete_blocks_above(session: Session, chain_id: int, number: int) -> None:
    """Drops the hashes of blocks a reorg replaced."""
    session.execute(delete(IndexedBlock).where(IndexedBlock.chain_id == chain_id, IndexedBlock.number > number))


def delete_all_blocks(session: Session, chain_id: int) -> None:
    session.execute(delete(IndexedBlock).where(IndexedBlock.chain_id == chain_id))


def stored_blocks(session: Session, chain_id: int, at_most: int) -> list[BlockRef]:
    """The window's blocks at or below ``at_most``, newest first: the candidates for a common ancestor."""
    rows = session.execute(
        select(IndexedBlock.number, IndexedBlock.hash, IndexedBlock.parent_hash)
        .where(IndexedBlock.chain_id == chain_id, IndexedBlock.number <= at_most)
        .order_by(IndexedBlock.number.desc())
    ).all()
    return [BlockRef(int(n), str(h), str(p)) for n, h, p in rows]
