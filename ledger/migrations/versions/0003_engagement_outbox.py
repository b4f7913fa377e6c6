"""The engagement outbox: accepted engagements with their dense event ids, the per-campaign id counter, and the
settlement batches the batcher sends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Column types are spelled out as in 0001: addresses and hashes as lowercase 0x-hex text, a uint256 as
NUMERIC(78, 0) on PostgreSQL and 78-digit zero-padded text on SQLite, enums as text with a CHECK, integer enums
(action, reject reason) as SMALLINT, times as TIMESTAMP WITH TIME ZONE (naive UTC on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UINT256 = sa.String(78).with_variant(sa.Numeric(78, 0), "postgresql")
ADDRESS = sa.String(42)
BYTES32 = sa.String(66)
UTC_DATETIME = sa.DateTime(timezone=True)
# SQLite autoincrements only a column declared exactly INTEGER PRIMARY KEY (the rowid)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "settlement_batches",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("attester", ADDRESS, nullable=False),
        sa.Column("sender", ADDRESS, nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("engagement_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'mined', 'reverted', 'dropped')", name=op.f("ck_settlement_batches_batch_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_batches")),
        sa.UniqueConstraint("chain_id", "tx_hash", name=op.f("uq_settlement_batches_chain_id_tx_hash")),
    )
    op.create_index("ix_settlement_batches_open", "settlement_batches", ["status", "chain_id", "escrow", "campaign_id"])

    op.create_table(
        "outbox_engagements",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("attester", ADDRESS, nullable=False),
        sa.Column("attester_ref", sa.String(128), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("evidence_hash", BYTES32, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("batch_id", BIG_ID, nullable=True),
        sa.Column("tx_hash", BYTES32, nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("amount", UINT256, nullable=True),
        sa.Column("reject_reason", sa.SmallInteger(), nullable=True),
        sa.Column("accepted_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'settled', 'rejected')", name=op.f("ck_outbox_engagements_engagement_status")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["settlement_batches.id"], name=op.f("fk_outbox_engagements_batch_id_settlement_batches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_engagements")),
        sa.UniqueConstraint(
            "chain_id", "escrow", "campaign_id", "attester", "attester_ref", name="uq_outbox_engagements_attester_ref"
        ),
        sa.UniqueConstraint("chain_id", "escrow", "campaign_id", "event_id", name="uq_outbox_engagements_event_id"),
    )
    op.create_index(op.f("ix_outbox_engagements_batch_id"), "outbox_engagements", ["batch_id"])
    op.create_index(
        "ix_outbox_engagements_drain", "outbox_engagements", ["status", "chain_id", "escrow", "campaign_id", "id"]
    )

    op.create_table(
        "outbox_counters",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("next_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "escrow", "campaign_id", name=op.f("pk_outbox_counters")),
    )


def downgrade() -> None:
    op.drop_table("outbox_counters")
    op.drop_table("outbox_engagements")
    op.drop_table("settlement_batches")
