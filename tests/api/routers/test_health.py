"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from ledger.chain import eth_tester_web3
from ledger.crm.models import IndexCheckpoint
from ledger.indexer.checkpoint import contract_set_key
from ledger.settings import Settings
from ledger.suite import Deployment
from tests.api.conftest import ATTESTER, assert_problem, bearer, issue_key, now, on_fresh_app
from tests.ledger.crm.rows import ESCROW, REGISTRY, hash32
from tests.ledger.databases import Database

pytestmark = pytest.mark.anyio
ETH_TESTER_CHAIN_ID = int(eth_tester_web3(Settings().mnemonic).eth.chain_id)


def _manifest(settings: Settings, chain_id: int) -> None:
    deployment = Deployment(
        chain_id=chain_id, token="0x" + "70" * 20, registry=REGISTRY, escrow=ESCROW, deploy_block=0, artifact_hashes={}
    )
    deployment.save(settings.deployment_file)


class TestHealthz:
    async def test_answers_ok_without_a_manifest(self, settings: Settings):
        settings.deployment_file.unlink()
        response = await on_fresh_app(settings, "GET", "/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


class TestReadyz:
    async def test_without_a_manifest_is_a_503_problem_naming_the_deployment(self, settings: Settings):
        settings.deployment_file.unlink()
        body = assert_problem(await on_fresh_app(settings, "GET", "/readyz"), 503, "not_ready")
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["chain"] == "ok"
        assert "adledger deploy" in body["checks"]["deployment"]
        assert "deployment" in body["detail"]

    async def test_a_manifest_of_another_chain_is_not_ready(self, settings: Settings):
        body = assert_problem(
            await on_fresh_app(settings, "GET", "/readyz"), 503, "not_ready"
        )  # the manifest says 31337
        assert body["checks"]["chain"] == f"chain id {ETH_TESTER_CHAIN_ID}, the deployment is for chain 31337"
        assert body["chain_id"] == ETH_TESTER_CHAIN_ID

    async def test_ready_with_the_indexer_lag_in_blocks(self, settings: Settings, database: Database):
        _manifest(settings, ETH_TESTER_CHAIN_ID)
        response = await on_fresh_app(settings, "GET", "/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ready"
        assert body["checks"] == {"database": "ok", "deployment": "ok", "chain": "ok"}
        assert (body["chain_id"], body["indexed_block"], body["indexer_lag"]) == (ETH_TESTER_CHAIN_ID, None, None)
        with database.sessions.begin() as session:
            session.add(
                IndexCheckpoint(
                    chain_id=ETH_TESTER_CHAIN_ID,
                    contract_set=contract_set_key([ESCROW, REGISTRY]),
                    addresses=",".join(sorted([ESCROW, REGISTRY])),
                    block_number=0,
                    block_hash=hash32(0),
                )
            )
        body = (await on_fresh_app(settings, "GET", "/readyz")).json()
        assert (body["head"], body["indexed_block"], body["indexer_lag"]) == (0, 0, 0)

    async def test_an_unreachable_chain_is_not_ready(self, settings: Settings):
        unreachable = settings.model_copy(update={"chain": "http://127.0.0.1:9"})
        body = assert_problem(await on_fresh_app(unreachable, "GET", "/readyz"), 503, "not_ready")
        assert body["checks"]["chain"] == "not connected"


class TestMetrics:
    async def test_counts_intake_outcomes_the_backlog_and_latency_by_route(
        self, client: httpx.AsyncClient, campaign_1: int
    ):
        key = (await issue_key(client))["key"]
        engagement = {
            "attester_ref": "m-1",
            "consumer": "0x" + "c1" * 20,
            "action": "ad_view",
            "occurred_at": now() - 60,
            "evidence_hash": hash32(1),
        }
        invalid = engagement | {"attester_ref": "m-2", "evidence_hash": "0x12"}
        for _ in range(2):
            response = await client.post(
                "/v1/engagements", json={"campaign_id": 1, "engagements": [engagement, invalid]}, headers=bearer(key)
            )
            assert response.status_code == 202
        await client.get("/v1/engagements/1/0", headers=bearer(key))
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        lines = set(response.text.splitlines())
        assert {
            'adledger_engagements_total{outcome="accepted"} 1.0',
            'adledger_engagements_total{outcome="replay"} 1.0',
            'adledger_engagements_total{outcome="invalid"} 2.0',
            'adledger_engagements_total{outcome="conflict"} 0.0',
            'adledger_outbox_engagements{status="queued"} 1.0',
            'adledger_outbox_engagements{status="sent"} 0.0',
            'adledger_http_request_duration_seconds_count{method="POST",route="/v1/engagements",status="202"} 2.0',
            'adledger_http_request_duration_seconds_count{method="GET",route="/v1/engagements/{campaign_id}/{event_id}"'
            ',status="200"} 1.0',
        } <= lines
        assert ATTESTER.address not in response.text

    async def test_each_app_has_its_own_registry(self, settings: Settings, app: FastAPI):
        other = create_app(settings)  # the same metric names again: no clash in a shared registry
        assert other.state.metrics.registry is not app.state.metrics.registry
