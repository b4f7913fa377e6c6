"""Alembic environment, run by ``ledger.db.upgrade`` (and by any alembic command given ``ledger.db.alembic_config``).

``upgrade`` hands over an open connection, already inside the migration transaction; without one (e.g.
``command.revision(alembic_config(url), autogenerate=True)``) the URL comes from the config or the settings.
SQLite renders ALTERs in batch mode, the only way SQLite can change a column or constraint.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.crm import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from ledger.settings import Settings  # only when run outside ledger.db.upgrade

    return Settings().database_url


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
elif context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    from ledger.db import engine_from_url

    engine = engine_from_url(_url())
    try:
        with engine.connect() as opened:
            _run(opened)
    finally:
        engine.dispose()
