"""ledger/db.py: engines for SQLite and PostgreSQL, migrations to head that match the models, idempotent inserts."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, MetaData, func, inspect, select, text

from ledger.crm import Base
from ledger.crm.models import Touchpoint
from ledger.db import (
    ALL_FILES,
    COPY_THRESHOLD,
    MAIN,
    OUTBOX,
    SQLITE_IMMEDIATE,
    alembic_config,
    bind_rows,
    create_engine_for,
    engine_from_url,
    insert_bound_rows_ignoring_duplicates,
    insert_ignoring_duplicates,
    outbox_file,
    session_factory,
    upgrade,
    writer_sessions,
)
from ledger.errors import ConfigurationError
from ledger.settings import Settings
from tests.ledger.crm.rows import touchpoint
from tests.ledger.databases import ENGINES, Database, Databases

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _rows(*logs: int) -> list[dict[str, object]]:
    """Touchpoint rows as the indexer inserts them (Core, no ORM objects)."""
    rows = []
    for log in logs:
        row = touchpoint(log)
        rows.append(
            {column.key: getattr(row, column.key) for column in Touchpoint.__table__.columns if column.key != "id"}
        )
    return rows


class TestCreateEngineFor:
    def test_defaults_to_a_sqlite_file_in_the_data_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.delenv("ADLEDGER_DATABASE_URL", raising=False)
        settings = Settings(data_dir=tmp_path / "data")
        assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'adledger.db'}"
        engine = create_engine_for(settings)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        assert (tmp_path / "data" / "adledger.db").exists()

    def test_takes_the_url_from_the_environment(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setenv("ADLEDGER_DATABASE_URL", "postgresql+psycopg://someone@db.example:5432/crm")
        assert Settings().database_url == "postgresql+psycopg://someone@db.example:5432/crm"

    def test_plain_postgresql_urls_use_psycopg_3(self):
        engine = create_engine_for(Settings(database_url="postgresql://someone@db.example/crm"))
        assert engine.dialect.driver == "psycopg"

    def test_refuses_an_unsupported_database(self):
        with pytest.raises(ConfigurationError, match="unsupported database"):
            create_engine_for(Settings(database_url="mysql://someone@db.example/crm"))

    def test_sqlite_runs_in_wal_with_foreign_keys_a_busy_timeout_and_large_pages(self, tmp_path: Path):
        engine = create_engine_for(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "page_size", "cache_size")
            }
        engine.dispose()
        assert pragma == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 15_000,
            "page_size": 16_384,
            "cache_size": -32 * 1024,
        }

    def test_sqlite_ddl_rolls_back_with_its_transaction(self, tmp_path: Path):
        """The sqlite3 driver would autocommit DDL; migrations need it transactional."""
        engine = create_engine_for(Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}"))
        with engine.connect() as connection:
            transaction = connection.begin()
            connection.exec_driver_sql("CREATE TABLE scratch (x INTEGER)")
            transaction.rollback()
            assert "scratch" not in inspect(connection).get_table_names()
        engine.dispose()


class TestSqliteWriterQueue:
    """BEGIN IMMEDIATE transactions of one process on one SQLite file queue on a lock, not in SQLite's busy
    handler, whose sleeps grow to 100 ms: a waiting writer starts as soon as the one before it ends."""

    # SQLite's busy handler sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 ms, then 100 ms at a time: a waiter it
    # handled wakes at 428, 528, 628, 728 ms, ~70 ms after a writer that held the lock for 660 ms
    HOLD = 0.66

    def _engines(self, tmp_path: Path) -> tuple[Any, Any]:
        url = f"sqlite:///{tmp_path / 'queue.db'}"
        return engine_from_url(url), engine_from_url(url)  # two engines: the API's and an in-process batcher's

    def _write(self, engine: Any, hold: float, started: list[float], ended: list[float]) -> None:
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: True}) as connection, connection.begin():
            started.append(time.perf_counter())
            time.sleep(hold)
            ended.append(time.perf_counter())

    def test_writers_of_two_engines_take_turns_without_waiting_in_sqlite(self, tmp_path: Path):
        first, second = self._engines(tmp_path)
        started: list[float] = []
        ended: list[float] = []
        holder = threading.Thread(target=self._write, args=(first, self.HOLD, started, ended))
        holder.start()
        while not started:
            time.sleep(0.001)
        self._write(second, 0.0, started, ended)
        holder.join()
        assert started[1] >= ended[0]  # one at a time
        assert started[1] - ended[0] < 0.04  # handed over at once, not after a busy-handler sleep

    @pytest.mark.parametrize("finish", ["commit", "rollback", "close"])
    def test_the_queue_is_released_however_the_transaction_ends(self, tmp_path: Path, finish: str):
        first, second = self._engines(tmp_path)
        connection = first.connect().execution_options(**{SQLITE_IMMEDIATE: True})
        transaction = connection.begin()
        if finish == "close":
            connection.close()  # returned to the pool mid-transaction
        else:
            getattr(transaction, finish)()
            connection.close()
        began = time.perf_counter()
        self._write(second, 0.0, [], [])
        assert time.perf_counter() - began < 1.0

    def test_readers_do_not_queue(self, tmp_path: Path):
        first, second = self._engines(tmp_path)
        upgrade(first)
        writer = first.connect().execution_options(**{SQLITE_IMMEDIATE: True})
        with writer, writer.begin(), second.connect() as reader:  # a read while the write lock is held
            assert reader.scalar(select(func.count()).select_from(Touchpoint)) == 0


class TestOneWriteLockPerFile:
    """SQLite: the outbox is a file of its own, so a transaction writing it (intake, the batcher) and one writing
    the index (the indexer) do not wait for each other; a migration holds both."""

    @pytest.mark.parametrize(("taken", "free"), [(OUTBOX, MAIN), (MAIN, OUTBOX)])
    def test_a_writer_holds_only_the_file_it_named(self, tmp_path: Path, taken: str, free: str):
        engine = engine_from_url(f"sqlite:///{tmp_path / 'files.db'}")
        upgrade(engine)
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: taken}) as connection, connection.begin():
            connection.exec_driver_sql("SELECT 1")
            assert not _can_write(tmp_path / "files.db", taken)
            assert _can_write(tmp_path / "files.db", free)
        assert _can_write(tmp_path / "files.db", taken)

    def test_a_migration_holds_both(self, tmp_path: Path):
        engine = engine_from_url(f"sqlite:///{tmp_path / 'files.db'}")
        upgrade(engine)
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: ALL_FILES}) as connection, connection.begin():
            connection.exec_driver_sql("SELECT 1")
            assert not _can_write(tmp_path / "files.db", MAIN)
            assert not _can_write(tmp_path / "files.db", OUTBOX)

    def test_before_the_tables_exist_a_writer_locks_every_file(self, tmp_path: Path):
        engine = engine_from_url(f"sqlite:///{tmp_path / 'files.db'}")
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: OUTBOX}) as connection, connection.begin():
            connection.exec_driver_sql("CREATE TABLE scratch (x)")
            assert not _can_write(tmp_path / "files.db", MAIN)


def _can_write(database: Path, schema: str) -> bool:
    """Whether another process's writer would get the file's write lock now."""
    other = sqlite3.connect(outbox_file(database) if schema == OUTBOX else database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
        return False
    finally:
        other.close()


class TestWriterSessions:
    """Sessions of ``writer_sessions`` take SQLite's write lock at their transaction's first statement: until
    then (a request being parsed, its credentials checked) other writers go on."""

    def test_the_write_lock_is_taken_at_the_first_statement_not_before(self, tmp_path: Path):
        path = tmp_path / "writers.db"
        engine = engine_from_url(f"sqlite:///{path}")
        upgrade(engine)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)  # another process's writer, say
        try:
            with writer_sessions(session_factory(engine))() as session:
                other.execute("BEGIN IMMEDIATE")  # the session exists, but holds nothing yet
                other.execute("ROLLBACK")
                assert session.scalar(select(func.count()).select_from(Touchpoint)) == 0  # BEGIN IMMEDIATE here
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # the session's end released it
            other.execute("ROLLBACK")
        finally:
            other.close()

    def test_the_sessions_keep_the_factorys_settings(self, tmp_path: Path):
        factory = session_factory(engine_from_url(f"sqlite:///{tmp_path / 'writers.db'}"))
        assert writer_sessions(factory).kw["expire_on_commit"] is False


class TestUpgrade:
    @pytest.mark.parametrize("kind", ENGINES)
    def test_migrates_an_empty_database_to_head(self, databases: Databases, kind: str):
        engine = databases.empty(kind)
        upgrade(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == HEAD
            everything = set(Base.metadata.tables) | {"alembic_version"}
            if kind == "sqlite":  # the outbox in its own file
                assert _tables(connection) == {MAIN: everything - OUTBOX_TABLES, OUTBOX: OUTBOX_TABLES}
            else:
                assert _tables(connection) == {MAIN: everything}

    @pytest.mark.parametrize("kind", ENGINES)
    def test_migrated_schema_matches_the_models(self, databases: Databases, kind: str):
        engine = databases.empty(kind)
        upgrade(engine)
        with engine.connect() as connection:
            # SQLite: the models as the files hold them, the outbox tables in the attached schema
            metadata = _outbox_in_its_file(Base.metadata) if kind == "sqlite" else Base.metadata
            opts = {"compare_type": True, "include_schemas": kind == "sqlite"}
            context = MigrationContext.configure(connection, opts=opts)
            assert compare_metadata(context, metadata) == []
            # autogenerate does not compare CHECK constraints; their names must match for later migrations
            inspector = inspect(connection)
            for table in metadata.sorted_tables:
                declared = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
                stored = inspector.get_check_constraints(table.name, schema=table.schema)
                assert {c["name"] for c in stored} == declared, table.name

    @pytest.mark.parametrize("kind", ENGINES)
    def test_upgrading_again_changes_nothing(self, databases: Databases, kind: str):
        engine = databases.empty(kind)
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == HEAD

    @pytest.mark.parametrize("kind", ENGINES)
    def test_downgrades_to_an_empty_database(self, databases: Databases, kind: str):
        engine = databases.empty(kind)
        upgrade(engine)
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert _tables(connection)[MAIN] == {"alembic_version"}
            assert _tables(connection).get(OUTBOX, set()) == set()

    def test_moving_the_outbox_to_its_file_keeps_every_row_and_back(self, databases: Databases):
        engine = databases.empty("sqlite")
        upgrade(engine, "0006")
        with engine.begin() as connection:  # an outbox with a batch and an engagement in it, in the main file
            _insert_outbox_rows(connection)
        before = _outbox_rows(engine)
        upgrade(engine)
        assert _tables(engine.connect())[OUTBOX] == OUTBOX_TABLES
        assert _outbox_rows(engine) == before
        with sqlite3.connect(outbox_file(engine.url.database)) as outbox:  # really in the other file
            assert outbox.execute("SELECT count(*) FROM outbox_engagements").fetchone() == (1,)
        config = alembic_config()
        with engine.connect().execution_options(**{SQLITE_IMMEDIATE: ALL_FILES}) as connection, connection.begin():
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
        with engine.connect() as connection:
            assert _tables(connection)[OUTBOX] == set()
            assert _tables(connection)[MAIN] >= OUTBOX_TABLES
        assert _outbox_rows(engine) == before

    def test_sqlite_keeps_foreign_keys_on_after_migrating(self, databases: Databases):
        engine = databases.empty("sqlite")
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []


OUTBOX_TABLES = {"settlement_batches", "outbox_engagements", "outbox_counters"}


def _tables(connection: Any) -> dict[str, set[str]]:
    """Table names by SQLite file (``main``, ``outbox``); PostgreSQL's all under ``main``."""
    inspector = inspect(connection)
    if connection.dialect.name != "sqlite":
        return {MAIN: set(inspector.get_table_names())}
    return {schema: set(inspector.get_table_names(schema=schema)) for schema in (MAIN, OUTBOX)}


def _outbox_in_its_file(metadata: MetaData) -> MetaData:
    """``metadata`` with the outbox tables in the attached schema ``outbox``, as SQLite holds them."""
    moved = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(moved, schema=OUTBOX if table.name in OUTBOX_TABLES else None)
    return moved


def _insert_outbox_rows(connection: Any) -> None:
    connection.exec_driver_sql(
        "INSERT INTO settlement_batches (id, chain_id, escrow, campaign_id, attester, sender, nonce, tx_hash, "
        "gas_limit, engagement_count, status, sent_at, updated_at) VALUES (7, 31337, '0x' || printf('%040d', 1), "
        "3, '0x' || printf('%040d', 2), '0x' || printf('%040d', 2), 4, '0x' || printf('%064d', 5), 300000, 1, "
        "'sent', '2026-11-25 00:00:00', '2026-11-25 00:00:00')"
    )
    connection.exec_driver_sql(
        "INSERT INTO outbox_engagements (chain_id, escrow, campaign_id, attester, attester_ref, event_id, consumer, "
        "action, occurred_at, evidence_hash, status, batch_id, accepted_at, updated_at) VALUES (31337, "
        "'0x' || printf('%040d', 1), 3, '0x' || printf('%040d', 2), 'ref-1', 0, '0x' || printf('%040d', 9), 1, "
        "1795584203, '0x' || printf('%064d', 6), 'sent', 7, '2026-11-25 00:00:00', '2026-11-25 00:00:00')"
    )
    connection.exec_driver_sql(
        "INSERT INTO outbox_counters (chain_id, escrow, campaign_id, next_event_id) "
        "VALUES (31337, '0x' || printf('%040d', 1), 3, 1)"
    )


def _outbox_rows(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as connection:
        return {
            table: [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1, 2, 3")]
            for table in sorted(OUTBOX_TABLES)
        }


class TestInsertIgnoringDuplicates:
    def test_inserting_the_same_logs_again_inserts_nothing_and_says_so(self, database: Database):
        with database.sessions.begin() as session:
            assert insert_ignoring_duplicates(session, Touchpoint, _rows(0, 1, 2)) == 3
        with database.sessions.begin() as session:
            assert insert_ignoring_duplicates(session, Touchpoint, _rows(0, 1, 2)) == 0
        with database.sessions() as session:
            assert len(session.scalars(select(Touchpoint.id)).all()) == 3

    def test_a_range_served_twice_with_new_logs_inserts_only_the_new(self, database: Database):
        with database.engine.begin() as connection:
            assert insert_ignoring_duplicates(connection, Touchpoint.__table__, _rows(0, 1)) == 2
            assert insert_ignoring_duplicates(connection, Touchpoint.__table__, _rows(1, 2, 3)) == 2
            assert insert_ignoring_duplicates(connection, Touchpoint.__table__, []) == 0
        with database.sessions() as session:
            assert sorted(session.scalars(select(Touchpoint.log_index))) == [0, 1, 2, 3]

    def test_a_large_page_streams_through_copy_and_stays_idempotent(self, database: Database):
        rows = _rows(*range(COPY_THRESHOLD + 50))
        rows[7] = rows[7] | {"amount": 2**256 - 1, "consumer": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}
        with database.sessions.begin() as session:
            assert insert_ignoring_duplicates(session, Touchpoint, rows) == len(rows)
        with database.sessions.begin() as session:
            assert insert_ignoring_duplicates(session, Touchpoint, rows) == 0
            assert insert_ignoring_duplicates(session, Touchpoint, _rows(*range(len(rows) + COPY_THRESHOLD))) == (
                COPY_THRESHOLD
            )
        with database.sessions() as session:
            stored = session.scalars(select(Touchpoint).where(Touchpoint.log_index == 7)).one()
        assert (stored.amount, stored.consumer) == (2**256 - 1, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")

    def test_converts_values_through_the_column_types(self, database: Database):
        row = _rows(0)[0] | {"amount": 2**256 - 1, "consumer": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}
        with database.sessions.begin() as session:
            insert_ignoring_duplicates(session, Touchpoint, [row])
        with database.sessions() as session:
            stored = session.scalars(select(Touchpoint)).one()
        assert (stored.amount, stored.consumer) == (2**256 - 1, "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")


class TestBulkRows:
    """bind_rows + insert_bound_rows_ignoring_duplicates: the indexer's tuple path, same results as a Core insert."""

    COLUMNS = tuple(column.key for column in Touchpoint.__table__.columns if column.key != "id")

    def _tuples(self, *logs: int) -> list[tuple[object, ...]]:
        return [tuple(row[name] for name in self.COLUMNS) for row in _rows(*logs)]

    def test_many_statements_worth_of_rows_insert_once_and_count_only_the_new(self, database: Database):
        dialect = database.engine.dialect
        rows = self._tuples(*range(1_234))  # more than two SQLite statements of 500 rows, and COPY on PostgreSQL
        with database.sessions.begin() as session:
            bound = bind_rows(Touchpoint, self.COLUMNS, rows, dialect)
            assert insert_bound_rows_ignoring_duplicates(session, Touchpoint, self.COLUMNS, bound) == 1_234
        with database.sessions.begin() as session:
            again = bind_rows(Touchpoint, self.COLUMNS, self._tuples(*range(1_200, 1_300)), dialect)
            assert insert_bound_rows_ignoring_duplicates(session, Touchpoint, self.COLUMNS, again) == 66
        with database.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Touchpoint)) == 1_300

    def test_values_are_bound_and_checked_by_their_column_types(self, database: Database):
        checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        row = _rows(0)[0] | {"amount": 2**256 - 1, "consumer": checksummed}
        bound = bind_rows(
            Touchpoint, self.COLUMNS, [tuple(row[name] for name in self.COLUMNS)], database.engine.dialect
        )
        with database.sessions.begin() as session:
            insert_bound_rows_ignoring_duplicates(session, Touchpoint, self.COLUMNS, bound)
        with database.sessions() as session:
            stored = session.scalars(select(Touchpoint)).one()
        assert (stored.amount, stored.consumer) == (2**256 - 1, checksummed.lower())
        for bad in ({"amount": 2**256}, {"amount": -1}, {"consumer": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae"},
                    {"consumer": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}, {"evidence_hash": "0x12"}):  # fmt: skip
            with pytest.raises(ValueError):
                bind_rows(Touchpoint, self.COLUMNS, [tuple((row | bad)[name] for name in self.COLUMNS)],
                          database.engine.dialect)  # fmt: skip


class TestSessionFactory:
    def test_objects_keep_their_values_after_commit(self, database: Database):
        sessions = session_factory(database.engine)
        with sessions() as session:
            row = touchpoint(0)
            session.add(row)
            session.commit()
        assert row.amount == 10**18  # no refresh needed: expire_on_commit is off
