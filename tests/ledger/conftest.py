"""Fixtures shared by the ledger tests: ``database`` and ``session`` run a test on SQLite and on PostgreSQL."""

from tests.ledger.databases import database, databases, session

__all__ = ["database", "databases", "session"]
