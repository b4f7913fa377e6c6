"""Initial schema: the CRM (customers, wallet links, conversions), the chain-derived rows and the indexer's state.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

The column types are spelled out here rather than imported from ledger.types, so this revision keeps creating
the same schema whatever later becomes of the application's types. They are the storage those types use:
uint256 as NUMERIC(78, 0) on PostgreSQL and 78-digit zero-padded text on SQLite, addresses and hashes as
lowercase 0x-hex text, times as TIMESTAMP WITH TIME ZONE (naive UTC on SQLite), enums as text with a CHECK.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
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
        "campaign_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("account", ADDRESS, nullable=True),
        sa.Column("amount", UINT256, nullable=True),
        sa.Column("budget", UINT256, nullable=True),
        sa.Column("owed", UINT256, nullable=True),
        sa.Column("paid_count", sa.BigInteger(), nullable=True),
        sa.Column("rejected_count", sa.BigInteger(), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('created', 'funded', 'paused', 'unpaused', 'closed', "
            "'attester_added', 'attester_removed', 'batch_settled')",
            name=op.f("ck_campaign_events_campaign_event_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_events")),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", "log_index", name=op.f("uq_campaign_events_chain_id_tx_hash_log_index")
        ),
    )
    op.create_index("ix_campaign_events_campaign", "campaign_events", ["chain_id", "escrow", "campaign_id"])
    op.create_index("ix_campaign_events_chain_id_block_number", "campaign_events", ["chain_id", "block_number"])

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("marketer", ADDRESS, nullable=False),
        sa.Column("token", ADDRESS, nullable=False),
        sa.Column("brand", ADDRESS, nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("budget", UINT256, nullable=False),
        sa.Column("owed", UINT256, nullable=False),
        sa.Column("refunded", UINT256, nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("chain_id", "escrow", "campaign_id", name=op.f("uq_campaigns_chain_id_escrow_campaign_id")),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name=op.f("uq_campaigns_chain_id_tx_hash_log_index")),
    )
    op.create_index(op.f("ix_campaigns_brand"), "campaigns", ["brand"])
    op.create_index("ix_campaigns_chain_id_block_number", "campaigns", ["chain_id", "block_number"])

    op.create_table(
        "consent_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("registry_address", ADDRESS, nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("brand", ADDRESS, nullable=False),
        sa.Column("change", sa.String(10), nullable=False),
        sa.Column("purposes", sa.Integer(), nullable=False),
        sa.Column("all_purposes", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("change IN ('grant', 'revoke')", name=op.f("ck_consent_events_consent_change")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", "log_index", name=op.f("uq_consent_events_chain_id_tx_hash_log_index")
        ),
    )
    op.create_index("ix_consent_events_chain_id_block_number", "consent_events", ["chain_id", "block_number"])
    op.create_index("ix_consent_events_pair", "consent_events", ["chain_id", "registry_address", "consumer", "brand"])

    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("registry_address", ADDRESS, nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("brand", ADDRESS, nullable=False),
        sa.Column("purposes", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint(
            "chain_id",
            "registry_address",
            "consumer",
            "brand",
            name=op.f("uq_consents_chain_id_registry_address_consumer_brand"),
        ),
    )
    op.create_index(op.f("ix_consents_brand"), "consents", ["brand"])
    op.create_index(op.f("ix_consents_consumer"), "consents", ["consumer"])

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("email_normalized", sa.String(length=320), nullable=True),
        sa.Column("phone_normalized", sa.String(length=16), nullable=True),
        sa.Column("lead_source", sa.String(length=100), nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(length=50), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.CheckConstraint(
            "lifecycle_stage IN ('aware', 'interested', 'first_purchase', 'repeat', 'loyal', 'advocate')",
            name=op.f("ck_customers_lifecycle_stage"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email_normalized", name=op.f("uq_customers_email_normalized")),
        sa.UniqueConstraint("phone_normalized", name=op.f("uq_customers_phone_normalized")),
        sqlite_autoincrement=True,  # an erased customer's id is never handed to someone else
    )
    op.create_table(
        "index_checkpoints",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contract_set", sa.String(length=66), nullable=False),
        sa.Column("addresses", sa.Text(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "contract_set", name=op.f("pk_index_checkpoints")),
    )
    op.create_table(
        "indexed_blocks",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", BYTES32, nullable=False),
        sa.Column("parent_hash", BYTES32, nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_indexed_blocks")),
    )
    op.create_table(
        "campaign_actions",
        sa.Column("campaign_pk", sa.Integer(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("reward", UINT256, nullable=False),
        sa.Column("purposes", sa.Integer(), nullable=False),
        sa.Column("lifetime_cap", sa.Integer(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_pk"],
            ["campaigns.id"],
            name=op.f("fk_campaign_actions_campaign_pk_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_pk", "action", name=op.f("pk_campaign_actions")),
    )
    op.create_table(
        "claims",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("recipient", ADDRESS, nullable=False),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_claims_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name=op.f("uq_claims_chain_id_tx_hash_log_index")),
    )
    op.create_index("ix_claims_campaign", "claims", ["chain_id", "escrow", "campaign_id"])
    op.create_index("ix_claims_chain_id_block_number", "claims", ["chain_id", "block_number"])
    op.create_index(op.f("ix_claims_consumer"), "claims", ["consumer"])
    op.create_index(op.f("ix_claims_customer_id"), "claims", ["customer_id"])

    op.create_table(
        "conversions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("order_ref", sa.String(length=200), nullable=False),
        sa.Column("value_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("imported_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_conversions_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint("source", "order_ref", name=op.f("uq_conversions_source_order_ref")),
    )
    op.create_index(op.f("ix_conversions_customer_id"), "conversions", ["customer_id"])
    op.create_index(op.f("ix_conversions_occurred_at"), "conversions", ["occurred_at"])

    op.create_table(
        "rejections",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.SmallInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_rejections_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejections")),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name=op.f("uq_rejections_chain_id_tx_hash_log_index")),
    )
    op.create_index("ix_rejections_campaign", "rejections", ["chain_id", "escrow", "campaign_id"])
    op.create_index("ix_rejections_chain_id_block_number", "rejections", ["chain_id", "block_number"])
    op.create_index(op.f("ix_rejections_consumer"), "rejections", ["consumer"])
    op.create_index(op.f("ix_rejections_customer_id"), "rejections", ["customer_id"])

    op.create_table(
        "touchpoints",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("escrow", ADDRESS, nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.SmallInteger(), nullable=False),
        sa.Column("consumer", ADDRESS, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("amount", UINT256, nullable=False),
        sa.Column("evidence_hash", BYTES32, nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", BYTES32, nullable=False),
        sa.Column("tx_hash", BYTES32, nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_touchpoints_customer_id_customers"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_touchpoints")),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name=op.f("uq_touchpoints_chain_id_tx_hash_log_index")),
    )
    op.create_index("ix_touchpoints_campaign", "touchpoints", ["chain_id", "escrow", "campaign_id"])
    op.create_index("ix_touchpoints_chain_id_block_number", "touchpoints", ["chain_id", "block_number"])
    op.create_index(op.f("ix_touchpoints_consumer"), "touchpoints", ["consumer"])
    op.create_index(op.f("ix_touchpoints_customer_id"), "touchpoints", ["customer_id"])

    op.create_table(
        "wallet_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("brand", ADDRESS, nullable=False),
        sa.Column("wallet", ADDRESS, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("nonce", UINT256, nullable=False),
        sa.Column("deadline", UINT256, nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("linked_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_wallet_links_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_links")),
        sa.UniqueConstraint("brand", "wallet", name=op.f("uq_wallet_links_brand_wallet")),
    )
    op.create_index(op.f("ix_wallet_links_customer_id"), "wallet_links", ["customer_id"])
    op.create_index(op.f("ix_wallet_links_wallet"), "wallet_links", ["wallet"])


def downgrade() -> None:
    op.drop_table("wallet_links")
    op.drop_table("touchpoints")
    op.drop_table("rejections")
    op.drop_table("conversions")
    op.drop_table("claims")
    op.drop_table("campaign_actions")
    op.drop_table("indexed_blocks")
    op.drop_table("index_checkpoints")
    op.drop_table("customers")
    op.drop_table("consents")
    op.drop_table("consent_events")
    op.drop_table("campaigns")
    op.drop_table("campaign_events")
