"""Wallet-link nonces: each (wallet, nonce) a link signature spent, kept after unlink and erasure against replay.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Column types are spelled out as in 0001: an address as 42-character lowercase 0x-hex text, a uint256 as
NUMERIC(78, 0) on PostgreSQL and 78-digit zero-padded text on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UINT256 = sa.String(78).with_variant(sa.Numeric(78, 0), "postgresql")
ADDRESS = sa.String(42)


def upgrade() -> None:
    op.create_table(
        "wallet_link_nonces",
        sa.Column("wallet", ADDRESS, nullable=False),
        sa.Column("nonce", UINT256, nullable=False),
        sa.PrimaryKeyConstraint("wallet", "nonce", name=op.f("pk_wallet_link_nonces")),
    )


def downgrade() -> None:
    op.drop_table("wallet_link_nonces")
