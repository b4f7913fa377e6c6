"""API tests: ``create_app`` on SQLite and on PostgreSQL (the ``database`` fixture), driven through httpx.

Indexed chain state (a campaign, its attesters) is inserted as rows, as the indexer would store them, so no test
here needs a devnet; the app's chain is eth-tester (in process), which only /readyz reads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from sqlalchemy.orm import Session

from api.app import create_app
from ledger import siwe
from ledger.crm.models import CampaignEventKind
from ledger.settings import Settings
from ledger.suite import Deployment
from tests.ledger.crm.rows import CHAIN_ID, ESCROW, REGISTRY, campaign, campaign_event
from tests.ledger.databases import Database, database, databases

__all__ = ["database", "databases"]

DOMAIN = "api.adledger.test"
URI = f"https://{DOMAIN}/v1/auth/siwe"
PROBLEM_JSON = "application/problem+json"
# tests send requests back to back from one address: the rate limits are raised out of reach (test_limits lowers them)
UNLIMITED: dict[str, Any] = {
    f"{kind}_{who}": 1_000_000 for kind in ("rate", "burst") for who in ("attester", "wallet", "sign_in", "public")
}


def account(n: int) -> LocalAccount:
    """A deterministic test key, distinct per ``n``."""
    return Account.from_key(f"0x{n + 0x1000:064x}")


MARKETER = account(1)
ATTESTER = account(2)
OTHER = account(3)  # neither marketer nor attester


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """Settings on the test's database, with a deployment manifest for CHAIN_ID and the rows' escrow."""
    deployment = Deployment(
        chain_id=CHAIN_ID,
        token="0x" + "70" * 20,
        registry=REGISTRY,
        escrow=ESCROW,
        deploy_block=1,
        artifact_hashes={},
    )
    deployment.save(tmp_path / "deployment.json")
    return Settings(
        chain="eth-tester",
        data_dir=tmp_path,
        database_url=database.engine.url.render_as_string(hide_password=False),
        api_domain=DOMAIN,
        **UNLIMITED,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with its lifespan entered (migrated database, manifest read, chain connected)."""
    built = create_app(settings)
    async with built.router.lifespan_context(built):
        yield built


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"https://{DOMAIN}") as http:
        yield http


async def on_fresh_app(settings: Settings, method: str, path: str) -> httpx.Response:
    """One request to a new app built from ``settings`` (after a test changed the manifest or the chain)."""
    built = create_app(settings)
    async with (
        built.router.lifespan_context(built),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=built), base_url=f"https://{DOMAIN}") as http,
    ):
        return await http.request(method, path)


@pytest.fixture
def campaign_1(database: Database) -> Iterator[int]:
    """Campaign 1 as indexed: created by MARKETER, with ATTESTER and OTHER added as attesters on chain."""
    add_campaign(database, 1, attesters=[ATTESTER.address, OTHER.address])
    yield 1


def add_campaign(database: Database, campaign_id: int, *, attesters: list[str], **fields: Any) -> None:
    """A campaign row (created by MARKETER) and an AttesterAdded log per attester, as the indexer stores them."""
    with database.sessions.begin() as session:
        session.add(campaign(campaign_id - 1, marketer=MARKETER.address, **fields))
        for attester in attesters:
            attester_event(session, campaign_id, attester, CampaignEventKind.ATTESTER_ADDED)


_logs = iter(range(1_000, 10**9))


def attester_event(session: Session, campaign_id: int, attester: str, kind: CampaignEventKind) -> None:
    """An AttesterAdded or AttesterRemoved log, later in the chain than every one before it."""
    log = next(_logs)
    session.add(
        campaign_event(
            log, campaign_id=campaign_id, kind=kind, account=attester, amount=None, budget=None, block_number=log
        )
    )


def message(signer: LocalAccount, nonce: str, **fields: Any) -> siwe.SiweMessage:
    """A sign-in message for this API, issued now; ``fields`` override any field."""
    values: dict[str, Any] = {
        "domain": DOMAIN,
        "address": signer.address,
        "statement": "Sign in to adledger.",
        "uri": URI,
        "version": siwe.VERSION,
        "chain_id": CHAIN_ID,
        "nonce": nonce,
        "issued_at": siwe.format_datetime(datetime.now(UTC)),
    }
    return siwe.SiweMessage(**(values | fields))


def signed(signer: LocalAccount, msg: siwe.SiweMessage) -> dict[str, str]:
    """The body of POST /v1/auth/siwe."""
    return {"message": msg.prepare(), "signature": "0x" + siwe.sign(signer, msg).hex()}


async def new_nonce(client: httpx.AsyncClient) -> str:
    response = await client.post("/v1/auth/nonce")
    assert response.status_code == 201, response.text
    nonce: str = response.json()["nonce"]
    return nonce


async def sign_in(client: httpx.AsyncClient, signer: LocalAccount) -> str:
    """A session token for ``signer``."""
    msg = message(signer, await new_nonce(client))
    response = await client.post("/v1/auth/siwe", json=signed(signer, msg))
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def issue_key(
    client: httpx.AsyncClient, campaign_id: int = 1, attester: LocalAccount = ATTESTER
) -> dict[str, Any]:
    """A new API key for ``attester``, issued by the campaign's marketer through the API."""
    token = await sign_in(client, MARKETER)
    response = await client.post(
        f"/v1/campaigns/{campaign_id}/api-keys", json={"attester": attester.address}, headers=bearer(token)
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{code}"
    assert (body["status"], body["code"]) == (status, code)
    assert body["title"] and body["detail"]
    return body


def now() -> int:
    return int(time.time())
