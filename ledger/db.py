"""The CRM and index database: engines for SQLite and PostgreSQL, sessions, migrations, idempotent inserts.

SQLite (the default, a file under data_dir) is set up for one writer and many readers: WAL so readers never
block the writer, foreign keys on (SQLite leaves them off), a busy timeout so a second writer waits for the
lock instead of failing, and real transactions: the sqlite3 driver of Python < 3.16 does not BEGIN before DDL
or SELECT, so DDL would autocommit and SAVEPOINTs would escape the transaction; SQLAlchemy emits BEGIN itself
instead (its documented recipe). PostgreSQL goes through psycopg 3.

SQLite has one write lock per file, so the engagement outbox (the tables ``POST /v1/engagements`` and the
settlement batcher write) lives in a second file beside the database, ``<name>-outbox<suffix>``, attached to
every connection as the schema ``outbox``. Its tables exist only there, so SQL names them unqualified, as on
PostgreSQL (SQLite looks a name up in ``main`` first, then in the attached files) and a query may join both.
A write transaction names the file whose lock it takes (``SQLITE_IMMEDIATE``): intake and the batcher take the
outbox's, the indexer and the CRM the main file's, so an indexer commit never keeps an attester's POST
waiting (intake p95, median of runs under the intake benchmark's full load: 58.5 -> 31.2 ms; README).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Dialect, Engine, Table, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ledger.errors import ConfigurationError
from ledger.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# A writer waits this long for SQLite's single write lock (an indexer commit of a large range takes seconds).
SQLITE_BUSY_TIMEOUT_MS = 15_000
# 16 KiB pages instead of 4 KiB: rows of the chain tables are ~400 bytes of hex, and inserting 100,000
# touchpoints is ~28% faster with the shallower, wider B-trees (measured with the indexer's insert).
SQLITE_PAGE_SIZE = 16_384
# Page cache per connection (SQLite's default is 2 MiB): the indexer's inserts land at random places in the
# (tx hash, log index) index, and a cache that holds its hot pages halves their cost (bench index).
SQLITE_CACHE_KIB = 32 * 1024
# Checkpoint the WAL into the database every 40 MiB instead of SQLite's 1,000 pages: each checkpoint syncs the
# file, and at the default one ran on nearly every indexer commit.
SQLITE_WAL_AUTOCHECKPOINT_PAGES = 40 * 1024 * 1024 // SQLITE_PAGE_SIZE
# Serialises concurrent `upgrade` calls (API and indexer starting together) on PostgreSQL; any fixed number works.
_MIGRATION_LOCK_ID = 0x4164_4C65_6467_6572  # "AdLedger"
# The key every chain-derived row is unique on: one row per log.
CHAIN_KEY = ("chain_id", "tx_hash", "log_index")
#: Connection execution option: start SQLite transactions holding a write lock, taken up front so a
#: read-then-write transaction cannot fail with SQLITE_BUSY halfway through. Its value names the file: ``MAIN``
#: (or True) for the index and CRM, ``OUTBOX`` for the engagement outbox, ``ALL_FILES`` for both (migrations:
#: BEGIN IMMEDIATE). The others' writers go on meanwhile; writing a file whose lock the transaction did not take
#: works but may fail with SQLITE_BUSY, so do not. Within one process such transactions first queue on a lock
#: per file: SQLite's own busy handler polls with sleeps growing to 100 ms, so under concurrent requests a
#: waiting writer slept long after the lock was free (API intake at 8 clients: p95 747 ms with it alone).
SQLITE_IMMEDIATE = "adledger_sqlite_immediate"
MAIN = "main"
OUTBOX = "outbox"
ALL_FILES = "*"
# A table of each file that a write lock is taken on, by an empty DELETE: SQLite locks a file for writing at a
# transaction's first write to it (BEGIN IMMEDIATE would lock every attached file).
_LOCKED_BY = {MAIN: "alembic_version", OUTBOX: "outbox_counters"}
_HOLDS_WRITERS = "adledger_holds_writers_locks"


def create_engine_for(settings: Settings, **kwargs: Any) -> Engine:
    """The engine for ``settings.database_url``; ``kwargs`` go to SQLAlchemy's ``create_engine``."""
    return engine_from_url(settings.database_url, **kwargs)


def engine_from_url(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; ``postgresql://`` means psycopg 3, the driver installed."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, **kwargs)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    raise ConfigurationError(f"unsupported database {parsed.drivername!r}: use sqlite:/// or postgresql+psycopg://")


def outbox_file(database: str | Path) -> Path:
    """The SQLite file of the engagement outbox beside ``database`` (see the module doc)."""
    path = Path(database)
    return path.with_name(f"{path.stem}-outbox{path.suffix}")


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # one connection shared by every session, or each would see its own empty database
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        files: dict[str, str | None] = {MAIN: None, OUTBOX: None}
    else:
        assert url.database is not None
        database = Path(url.database).resolve()
        database.parent.mkdir(parents=True, exist_ok=True)
        files = {MAIN: str(database), OUTBOX: str(outbox_file(database))}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver stops issuing BEGIN; _on_begin does it
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"ATTACH DATABASE ? AS {OUTBOX}", (files[OUTBOX] or ":memory:",))
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
                for schema in files:
                    # a new file only (an existing database keeps its page size); before WAL, which fixes it
                    cursor.execute(f"PRAGMA {schema}.page_size = {SQLITE_PAGE_SIZE}")
                    cursor.execute(f"PRAGMA {schema}.journal_mode = WAL")
                    # with WAL, NORMAL survives any process crash; only a power cut can lose the last commits
                    cursor.execute(f"PRAGMA {schema}.synchronous = NORMAL")
                    cursor.execute(f"PRAGMA {schema}.cache_size = -{SQLITE_CACHE_KIB}")
        finally:
            cursor.close()

    writers = {schema: _writers_of(path) for schema, path in files.items()}

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        wanted = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
        if not wanted:
            connection.exec_driver_sql("BEGIN")
            return
        schema = None if wanted == ALL_FILES else MAIN if wanted is True else wanted
        held: list[threading.Lock] = []
        connection.info[_HOLDS_WRITERS] = held
        try:
            for name in files if schema is None else (schema,):  # in one order: no two can wait for each other
                if not writers[name].acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                    raise sqlite3.OperationalError(f"database is locked (this process's writers of {name})")
                held.append(writers[name])
            _begin_writing(connection, schema)
        except BaseException:
            _release(connection.info)
            raise

    def _release(info: dict[Any, Any]) -> None:
        for lock in info.pop(_HOLDS_WRITERS, ()):
            lock.release()

    for name in ("commit", "rollback"):
        event.listen(engine, name, lambda connection: _release(connection.info))
    # a connection returned to the pool without either (closed mid-transaction) must not keep the queue
    event.listen(engine.pool, "checkin", lambda _dbapi, record: _release(record.info))

    return engine


def _begin_writing(connection: Connection, schema: str | None) -> None:
    """BEGIN holding the write lock of ``schema``'s file only, by an empty DELETE from one of its tables; of
    every file (BEGIN IMMEDIATE) when ``schema`` is None, or before that table exists (a database not migrated
    yet)."""
    driver = connection.connection.driver_connection  # its errors stay its own: SQLAlchemy's handling rolls back
    assert driver is not None
    if schema is None:
        driver.execute("BEGIN IMMEDIATE")
        return
    driver.execute("BEGIN")
    try:
        driver.execute(f'DELETE FROM {schema}."{_LOCKED_BY[schema]}" WHERE 0')
    except sqlite3.OperationalError as error:
        driver.execute("ROLLBACK")
        if "no such table" not in str(error):
            raise
        driver.execute("BEGIN IMMEDIATE")


_WRITERS: dict[str, threading.Lock] = {}
_WRITERS_MADE = threading.Lock()


def _writers_of(path: str | None) -> threading.Lock:
    """The in-process queue of write transactions on one SQLite file, shared by every engine of this process on it
    (the API's, and the batcher's when it runs in the same process). In-memory databases are one per engine, so
    each gets its own."""
    if path is None:
        return threading.Lock()
    with _WRITERS_MADE:
        return _WRITERS.setdefault(path, threading.Lock())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded values after commit, so a caller can return what it just stored."""
    return sessionmaker(engine, expire_on_commit=False)


def writer_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """``sessions`` whose every transaction begins with the main SQLite file's write lock (``SQLITE_IMMEDIATE``;
    a transaction can name another file when it opens its connection), taken at the transaction's first statement
    rather than when the session is made: whatever runs before it does not keep the file's other writers waiting."""
    bind = sessions.kw["bind"]
    options = {key: value for key, value in sessions.kw.items() if key != "bind"}
    return sessionmaker(bind.execution_options(**{SQLITE_IMMEDIATE: MAIN}), class_=sessions.class_, **options)


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic's configuration built in code (no alembic.ini): migrations ship inside the package.

    ``url`` serves the alembic commands that open their own connection (``command.revision(...,
    autogenerate=True)``); ``upgrade`` passes its connection instead.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrates the database to ``revision`` in one transaction (DDL is transactional on both engines).

    On SQLite, foreign keys are switched off for the duration: batch migrations rebuild a table by copying it
    and dropping the original, and with enforcement on that drop would cascade into the referencing rows.
    """
    config = alembic_config()
    is_sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if is_sqlite:
            _sqlite_pragma(connection, "PRAGMA foreign_keys = OFF")
        try:
            with connection.execution_options(**{SQLITE_IMMEDIATE: ALL_FILES}).begin():
                if engine.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            if is_sqlite:
                _sqlite_pragma(connection, "PRAGMA foreign_keys = ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    """Runs a PRAGMA outside any transaction (inside one, foreign_keys is silently ignored)."""
    connection.connection.driver_connection.execute(pragma)  # type: ignore[union-attr]


_Row = TypeVar("_Row")


def add_or_get(session: Session, row: _Row, find: Callable[[], _Row | None]) -> tuple[_Row, bool]:
    """Adds ``row`` in a savepoint and returns ``(row, True)``; when a concurrent writer stored the same unique
    key first, returns ``(what find() reads now, False)``. Check-then-insert alone races; the unique constraint
    decides, and only this savepoint is rolled back, not the caller's transaction."""
    try:
        with session.begin_nested():
            session.add(row)
        return row, True
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False


# SQLite bulk inserts bind many rows per statement: sqlite3's executemany takes the GIL back after every row, and
# with another thread running Python (the indexer decodes the next page meanwhile) each handover waits out the
# interpreter's switch interval: 100,000 rows took minutes. One statement of 500 rows is one handover, and ~20%
# faster even alone. SQLite allows 32,766 parameters per statement (since 3.32).
SQLITE_ROWS_PER_INSERT = 500
SQLITE_MAX_PARAMETERS = 32_766
# Rows from which a PostgreSQL insert streams through COPY (below it, one INSERT statement is as quick)
COPY_THRESHOLD = 200


def insert_ignoring_duplicates(
    target: Session | Connection,
    table: Table | type[DeclarativeBase],
    rows: Sequence[Mapping[str, Any]],
    conflict_columns: Sequence[str] = CHAIN_KEY,
) -> int:
    """INSERT … ON CONFLICT (conflict_columns) DO NOTHING; returns how many rows were new.

    Re-indexing a range then changes nothing and says so. ``conflict_columns`` must match a unique constraint
    of the table (the chain key by default). Bulk Core insert: no ORM objects, no per-row round trip.
    """
    if not rows:
        return 0
    table_ = table if isinstance(table, Table) else table.__table__
    assert isinstance(table_, Table)
    dialect = (target.get_bind() if isinstance(target, Session) else target).dialect.name
    insert: Any
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise ConfigurationError(f"insert_ignoring_duplicates supports SQLite and PostgreSQL, not {dialect}")
    if dialect == "postgresql" and len(rows) >= COPY_THRESHOLD:
        connection = target.connection() if isinstance(target, Session) else target
        columns = list(rows[0])
        values = bind_rows(table_, columns, [[row[name] for name in columns] for row in rows], connection.dialect)
        return _copy_ignoring_duplicates(connection, table_, columns, values, conflict_columns)
    key = [table_.c[name] for name in conflict_columns]
    statement = insert(table_).on_conflict_do_nothing(index_elements=key).returning(key[0])
    return len(target.execute(statement, list(rows)).all())


def insert_bound_rows_ignoring_duplicates(
    session: Session,
    table: type[DeclarativeBase],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict_columns: Sequence[str] = CHAIN_KEY,
) -> int:
    """``insert_ignoring_duplicates`` for many rows already bound by ``bind_rows``, through the driver.

    The indexer's bulk path: SQLAlchemy's per-row parameter handling cost more than the database itself on
    100,000-row pages (bench index), so rows go straight to sqlite3 (multi-row INSERTs) or PostgreSQL's COPY,
    in the session's transaction. Binding is a separate step so the indexer can do it before it takes the write
    lock, in the thread that decodes.
    """
    if not rows:
        return 0
    table_ = table.__table__
    assert isinstance(table_, Table)
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name == "postgresql":
        return _copy_ignoring_duplicates(connection, table_, columns, rows, conflict_columns)
    if dialect.name != "sqlite":
        raise ConfigurationError(f"bulk inserts support SQLite and PostgreSQL, not {dialect.name}")
    driver = connection.connection.driver_connection
    assert driver is not None
    names = ", ".join(f'"{name}"' for name in columns)
    placeholders = f"({', '.join('?' * len(columns))})"
    per_statement = min(SQLITE_ROWS_PER_INSERT, SQLITE_MAX_PARAMETERS // len(columns))
    before = driver.total_changes
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        driver.execute(
            f'INSERT INTO "{table_.name}" ({names}) VALUES {", ".join([placeholders] * len(chunk))} '
            f"ON CONFLICT ({', '.join(conflict_columns)}) DO NOTHING",
            [value for row in chunk for value in row],
        )
    return int(driver.total_changes - before)


def bind_rows(
    table: type[DeclarativeBase] | Table, columns: Sequence[str], rows: Sequence[Sequence[Any]], dialect: Dialect
) -> list[tuple[Any, ...]]:
    """Rows with every value converted (and checked) as its column's type binds it on ``dialect``: the same
    functions a Core insert applies, run column by column (ledger.types' ``bind_column`` in one pass)."""
    table_ = table if isinstance(table, Table) else table.__table__
    assert isinstance(table_, Table)
    if not rows:
        return []
    values: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for i, name in enumerate(columns):
        column_type = table_.c[name].type
        if hasattr(column_type, "bind_column"):
            values[i] = column_type.bind_column(list(values[i]), dialect)
            continue
        convert = _bind_function(column_type, dialect)
        if convert is not None:
            values[i] = [None if value is None else convert(value) for value in values[i]]
    return list(zip(*values, strict=True))


def _bind_function(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The function a Core insert applies to a value of ``column_type`` on ``dialect`` (None: as it is)."""
    if isinstance(column_type, TypeDecorator):
        decorator = column_type
        impl = decorator.impl_instance.bind_processor(dialect)
        if impl is None:
            return lambda value: decorator.process_bind_param(value, dialect)
        return lambda value: impl(decorator.process_bind_param(value, dialect))
    processor = column_type.bind_processor(dialect)
    return cast(Callable[[Any], Any] | None, processor)


def _copy_ignoring_duplicates(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    conflict_columns: Sequence[str],
) -> int:
    """PostgreSQL's fast path: COPY straight into the table, or, when a row is already there, into a temporary
    table and then INSERT ... SELECT ... ON CONFLICT DO NOTHING.

    A multi-row INSERT of thousands of rows spends most of its time in psycopg re-parsing the placeholders of
    one huge statement (the index benchmark's profile: 17 of 24 s); COPY streams the rows instead. New rows are
    the usual case (the indexer writes above its cursor), so the direct COPY runs first inside a savepoint and
    only a unique violation pays for the staging table. ``rows`` hold values already converted by their types.
    """
    from psycopg import errors, sql

    names = sql.SQL(", ").join(sql.Identifier(name) for name in columns)
    target = sql.Identifier(table.name)
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute("SAVEPOINT adledger_copy")
        try:
            with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(target, names)) as copy:
                for row in rows:
                    copy.write_row(row)
        except errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT adledger_copy")
        else:
            cursor.execute("RELEASE SAVEPOINT adledger_copy")
            return len(rows)
        staging = sql.Identifier(f"staging_{table.name}")
        # a bare copy of the columns (no defaults, no constraints), dropped with the transaction
        cursor.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                staging, names, target
            )
        )
        with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, names)) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO NOTHING").format(
                target, names, names, staging, sql.SQL(", ").join(sql.Identifier(name) for name in conflict_columns)
            )
        )
        inserted = cursor.rowcount
        cursor.execute(sql.SQL("DROP TABLE {}").format(staging))
    return int(inserted)
