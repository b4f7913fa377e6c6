"""The API as a consumer's wallet meets it: the real app served by uvicorn on a loopback port (the wallet speaks
HTTP; httpx's in-process transport is async-only), with its runtime on the module's anvil and suite (the
``deployed`` fixture) and a SQLite database of its own. Each test reverts the chain and empties the database.

The app shares the test's ``Chain`` object, as tests/api/world.py does: the relayer's nonces stay in one cache
when a test also sends from the deployer, and a chain revert drops that cache for both.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.deps import Runtime
from ledger.auth.models import WalletSession
from ledger.chain import Chain
from ledger.crm import Base
from ledger.db import session_factory, upgrade
from ledger.indexer.runner import Indexer
from ledger.settings import Settings
from ledger.suite import Suite
from tests.api.conftest import UNLIMITED
from tests.ledger.databases import Databases

STARTUP_TIMEOUT = 10.0


@dataclass
class Api:
    url: str
    app: FastAPI
    suite: Suite
    sessions: sessionmaker[Session]

    @property
    def chain(self) -> Chain:
        return self.suite.chain

    @property
    def rpc_url(self) -> str:
        """The anvil's JSON-RPC URL, as `make run` serves it at http://127.0.0.1:8545."""
        return str(self.chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]

    @property
    def brand(self) -> str:
        return self.chain.accounts.marketer.address

    def consumer(self, n: int = 0) -> LocalAccount:
        return self.chain.accounts.consumers[n]

    def index(self) -> None:
        """Runs the indexer over the new blocks, so the API's reads show them."""
        Indexer(self.chain, self.suite, self.sessions).run_once()

    def sign_ins(self, address: str | None = None) -> int:
        """Sessions the API has issued (to ``address``): one per successful Sign-In with Ethereum."""
        query = select(func.count()).select_from(WalletSession)
        if address is not None:
            query = query.where(WalletSession.address == address)
        with self.sessions() as session:
            return int(session.scalar(query) or 0)


@pytest.fixture(scope="module")
def api_server(
    deployed: tuple[Chain, Suite], databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    chain, suite = deployed
    engine = databases.empty("sqlite")
    upgrade(engine)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    settings = Settings(
        chain=chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]  # not read: the runtime is set below
        data_dir=tmp_path_factory.mktemp("api"),
        database_url=engine.url.render_as_string(hide_password=False),
        api_domain=f"localhost:{port}",  # as `make run` names it; the wallet reaches it at 127.0.0.1
        **UNLIMITED,
    )
    app = create_app(settings)
    app.state.runtime = Runtime(sessions=session_factory(engine), deployment=suite.deployment, chain=chain)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Api(f"http://127.0.0.1:{port}", app, suite, app.state.runtime.sessions)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_TIMEOUT)
        listener.close()


@pytest.fixture
def api(api_server: Api) -> Iterator[Api]:
    """The served API; afterwards the chain is reverted and every table emptied (the indexer's cursor too)."""
    snapshot = api_server.chain.snapshot()
    settings = api_server.app.state.settings
    try:
        yield api_server
    finally:
        api_server.app.state.settings = settings
        api_server.chain.revert(snapshot)
        with api_server.sessions.begin() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
