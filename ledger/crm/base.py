"""The declarative base of the CRM and index tables, and the columns every chain-derived row carries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, MetaData, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.types import Bytes32

# Deterministic constraint names: Alembic can then drop or alter them later (SQLite batch mode needs names),
# and the migrated schema compares equal to the models by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Surrogate keys of the high-volume chain tables: BIGINT on PostgreSQL; on SQLite only a column declared exactly
# INTEGER PRIMARY KEY is the 64-bit rowid that autoincrements, so it must stay INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ChainLog:
    """Where a chain-derived row's log sits. (chain_id, tx_hash, log_index) names the log, so it is unique:
    re-indexing inserts nothing twice; block_number and block_hash let a reorg find and delete what it undid."""

    chain_id: Mapped[int] = mapped_column(BigInteger)  # eth-tester's id, 131277322940537, needs 64 bits
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(Bytes32())
    tx_hash: Mapped[str] = mapped_column(Bytes32())
    log_index: Mapped[int] = mapped_column(Integer)


def chain_log_args(table: str) -> tuple[Any, ...]:
    """The chain key's unique constraint and the (chain, block) index that reorg rollbacks delete by."""
    return (
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        Index(f"ix_{table}_chain_id_block_number", "chain_id", "block_number"),
    )
