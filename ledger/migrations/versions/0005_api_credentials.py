"""The API's credentials: sign-in nonces, wallet sessions, attester API keys (each secret stored as its SHA-256).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Column types are spelled out as in 0001: addresses as 42-character lowercase 0x-hex text, hashes as 64 hex
digits, times as TIMESTAMP WITH TIME ZONE (naive UTC on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDRESS = sa.String(42)
SECRET_HASH = sa.String(64)
UTC_DATETIME = sa.DateTime(timezone=True)
# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY (the rowid)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "siwe_nonces",
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_siwe_nonces")),
    )
    op.create_index(op.f("ix_siwe_nonces_expires_at"), "siwe_nonces", ["expires_at"])

    op.create_table(
        "wallet_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("token_hash", SECRET_HASH, nullable=False),
        sa.Column("address", ADDRESS, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_wallet_sessions_token_hash")),
    )
    op.create_index(op.f("ix_wallet_sessions_address"), "wallet_sessions", ["address"])
    op.create_index(op.f("ix_wallet_sessions_expires_at"), "wallet_sessions", ["expires_at"])

    op.create_table(
        "api_keys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key_hash", SECRET_HASH, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("attester", ADDRESS, nullable=False),
        sa.Column("issued_by", ADDRESS, nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_campaign", "api_keys", ["chain_id", "escrow", "campaign_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("wallet_sessions")
    op.drop_table("siwe_nonces")
