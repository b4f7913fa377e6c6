"""Touchpoints and rejections indexed by (chain, escrow, campaign, event id): an engagement's outcome is then one
index probe (the outbox's state lookup), and the campaign queries use the same index's prefix as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("touchpoints", "rejections")


def upgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_campaign", table_name=table)
        op.create_index(f"ix_{table}_campaign", table, ["chain_id", "escrow", "campaign_id", "event_id"])


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_campaign", table_name=table)
        op.create_index(f"ix_{table}_campaign", table, ["chain_id", "escrow", "campaign_id"])
