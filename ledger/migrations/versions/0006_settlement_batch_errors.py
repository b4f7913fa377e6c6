"""Settlement batches keep why they reverted (the ledger.errors code and message) and which attempt a replacement
replaced, so an operator can follow a batch's history from the table alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: BIGINT; the batches' ids are INTEGER there (the rowid), and a foreign key may reference either
BATCH_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("settlement_batches") as batch:
        batch.add_column(sa.Column("replaces_id", BATCH_ID, nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("error_detail", sa.Text(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_settlement_batches_replaces_id_settlement_batches"),
            "settlement_batches",
            ["replaces_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_batches") as batch:
        batch.drop_constraint(op.f("fk_settlement_batches_replaces_id_settlement_batches"), type_="foreignkey")
        batch.drop_column("error_detail")
        batch.drop_column("error_code")
        batch.drop_column("replaces_id")
