"""Database fixtures for every test that stores something: the same test runs on SQLite and on PostgreSQL.

Import them into a conftest (``from tests.ledger.databases import database, databases, session  # noqa: F401``).
SQLite gets a file per test session; PostgreSQL a uniquely named schema in the server's ``test`` database
(``search_path`` points at it), dropped at the end. PostgreSQL is skipped with a visible reason when it is
unreachable, unless ADLEDGER_REQUIRE_POSTGRES=1 (set by .ci/run), which turns that into a failure.
ADLEDGER_TEST_POSTGRES_URL points the tests at another server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ledger.crm import Base
from ledger.db import engine_from_url, session_factory, upgrade

POSTGRES_URL = os.environ.get("ADLEDGER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENGINES = ("sqlite", "postgresql")


def _postgres_conninfo() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Databases:
    """Creates databases on demand and removes them at the end of the test session."""

    root: Path
    schemas: list[str] = field(default_factory=list)
    engines: list[Engine] = field(default_factory=list)
    migrated_engines: dict[str, Engine] = field(default_factory=dict)
    postgres_error: str | None = None
    postgres_checked: bool = False

    def require_postgres(self) -> None:
        """Skips the test (or fails it, under ADLEDGER_REQUIRE_POSTGRES=1) when PostgreSQL is unreachable."""
        if not self.postgres_checked:
            self.postgres_checked = True
            try:
                psycopg.connect(_postgres_conninfo(), connect_timeout=3).close()
            except psycopg.Error as exc:
                reason = " ".join(str(exc).split())  # one line, so pytest's skip summary shows all of it
                self.postgres_error = f"PostgreSQL unreachable at {make_url(POSTGRES_URL)!r}: {reason}"
        if self.postgres_error is not None:
            if os.environ.get("ADLEDGER_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"{self.postgres_error} (ADLEDGER_REQUIRE_POSTGRES=1)")
            pytest.skip(self.postgres_error)

    def empty(self, kind: str) -> Engine:
        """An engine on a new, empty database of that kind."""
        if kind == "sqlite":
            url = f"sqlite:///{self.root / f'{secrets.token_hex(4)}.db'}"
        else:
            self.require_postgres()
            schema = f"adledger_test_{secrets.token_hex(6)}"
            with psycopg.connect(_postgres_conninfo(), autocommit=True) as admin:
                admin.execute(f'CREATE SCHEMA "{schema}"')
            self.schemas.append(schema)
            url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        engine = engine_from_url(url)
        self.engines.append(engine)
        return engine

    def migrated(self, kind: str) -> Engine:
        """One database per kind, migrated to head once and shared by the whole test session."""
        if kind not in self.migrated_engines:
            engine = self.empty(kind)
            upgrade(engine)
            self.migrated_engines[kind] = engine
        return self.migrated_engines[kind]

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        if self.schemas:
            with psycopg.connect(_postgres_conninfo(), autocommit=True) as admin:
                for schema in self.schemas:
                    admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass(frozen=True)
class Database:
    """A migrated database for one test; its rows are deleted afterwards."""

    kind: str
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    created = Databases(tmp_path_factory.mktemp("databases"))
    yield created
    created.close()


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, databases: Databases) -> Iterator[Database]:
    engine = databases.migrated(request.param)
    yield Database(request.param, engine, session_factory(engine))
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.sessions() as opened:
        yield opened
