"""SQLite: the engagement outbox moves to its own file (the schema ``outbox``, attached by ledger.db), so that
intake and the settlement batcher no longer share a write lock with the indexer. PostgreSQL: nothing changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Each table is re-created from its own stored DDL (sqlite_master), so the copy has exactly the columns,
constraints and indexes the migrations before made, then its rows are copied and the original dropped, in the
migration's one transaction, which holds both files' write locks. In WAL mode SQLite commits attached files one
after the other, the main file first, not atomically together: a process killed between the two would keep the
main file's drop without the outbox's copy. The window is one commit, once; a database with engagements still
queued is best upgraded with the API and the batcher stopped and a copy of its file kept, as before any
migration.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# parents before children: outbox_engagements.batch_id references settlement_batches
TABLES = ("settlement_batches", "outbox_engagements", "outbox_counters")
_NAMED = re.compile(r'^(CREATE (?:UNIQUE )?(?:TABLE|INDEX))\s+(?:"?\w+"?\.)?("?)(\w+)\2', re.IGNORECASE)


def upgrade() -> None:
    _move(op.get_bind(), source="main", target="outbox")


def downgrade() -> None:
    _move(op.get_bind(), source="outbox", target="main")


def _move(connection: Connection, *, source: str, target: str) -> None:
    if connection.dialect.name != "sqlite":
        return
    for table in TABLES:
        statements = connection.exec_driver_sql(
            f"SELECT sql FROM {source}.sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL "
            "ORDER BY type = 'index'",  # the table first, then its indexes
            (table,),
        ).scalars()
        for statement in statements:
            connection.exec_driver_sql(_NAMED.sub(rf'\1 {target}."\3"', statement, count=1))
        connection.exec_driver_sql(f'INSERT INTO {target}."{table}" SELECT * FROM {source}."{table}"')
    for table in reversed(TABLES):
        connection.exec_driver_sql(f'DROP TABLE {source}."{table}"')
