"""The indexer in a process of its own, for the SIGKILL test: ``run`` is what each forked child executes.

It connects as ``adledger index`` does with a URL (``connect(Settings(chain=url))``) and reads small pages, so a
catch-up is many transactions and a kill is likely to land inside one. Children are forked from a forkserver
that has imported ``PRELOAD`` already: a fresh interpreter spends ~2 s importing web3 and SQLAlchemy, which
would make ten restarts dominate the test.
"""

from __future__ import annotations

from typing import Any

from ledger.chain import connect
from ledger.db import engine_from_url, session_factory
from ledger.indexer.runner import Indexer
from ledger.indexer.source import LogSource
from ledger.settings import Settings
from ledger.suite import Deployment

#: What the forkserver imports before forking: the indexer with the drivers it imports lazily, and pytest, since
#: every child re-runs the parent's main script (pytest's) before its target. A module that fails to preload is
#: merely imported by each child.
PRELOAD = (
    "pytest",
    "ledger.chain",
    "ledger.db",
    "ledger.indexer.runner",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
    __name__,
)


def run(chain_url: str, database_url: str, deployment: dict[str, Any], page_logs: int) -> None:
    """One ``Indexer.run_once()`` from the stored checkpoint to the head, in pages of about ``page_logs`` logs."""
    suite = Deployment(**deployment)
    engine = engine_from_url(database_url)
    with connect(Settings(chain=chain_url)) as chain:
        addresses = [suite.escrow.lower(), suite.registry.lower()]
        source = LogSource(chain, addresses, initial_range=1, target_page_logs=page_logs, max_page_logs=page_logs)
        Indexer(chain, suite, session_factory(engine), source=source).run_once()
    engine.dispose()
