"""A real chain for API tests: one anvil per module with the suite deployed (``deployed``), the app's runtime
pointed at it, each test reverted afterwards; ``World.index`` runs the indexer (it reads logs over JSON-RPC)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI

from api.deps import Runtime
from ledger.chain import Chain
from ledger.indexer.runner import Indexer
from ledger.suite import Suite
from tests.api.conftest import bearer, message, new_nonce, signed

DAY = 86_400


@dataclass
class World:
    app: FastAPI
    client: httpx.AsyncClient
    suite: Suite

    @property
    def brand(self) -> str:
        return self.suite.chain.accounts.marketer.address

    def consumer(self, n: int = 0) -> LocalAccount:
        return self.suite.chain.accounts.consumers[n]

    def index(self) -> None:
        Indexer(self.suite.chain, self.suite, self.app.state.runtime.sessions).run_once()

    def later(self, seconds: int = DAY) -> int:
        return self.suite.chain.latest_timestamp() + seconds

    async def sign_in(self, who: LocalAccount) -> dict[str, str]:
        msg = message(who, await new_nonce(self.client), chain_id=self.suite.chain.chain_id)
        response = await self.client.post("/v1/auth/siwe", json=signed(who, msg))
        assert response.status_code == 200, response.text
        return bearer(response.json()["token"])


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, deployed: tuple[Chain, Suite]) -> AsyncIterator[World]:
    """The app's runtime pointed at the module's anvil and suite; the chain is reverted afterwards."""
    chain, suite = deployed
    runtime: Runtime = app.state.runtime
    app.state.runtime = Runtime(sessions=runtime.sessions, deployment=suite.deployment, chain=chain)
    snapshot = chain.snapshot()
    try:
        yield World(app, client, suite)
    finally:
        app.state.runtime = runtime
        chain.revert(snapshot)


def hexed(signature: bytes) -> str:
    return "0x" + signature.hex()
