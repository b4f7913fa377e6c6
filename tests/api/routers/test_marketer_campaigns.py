"""A marketer's campaigns: prepare, sign with the wallet's own key, relay, mine, index, read; refusals by name.

The relay tests run on one anvil per module (the indexer reads logs over JSON-RPC), reverted after each test; the
read tests use rows, as the indexer stores them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI

from api.deps import Runtime
from ledger import typed_data
from ledger.chain import Chain
from ledger.contracts import transact
from ledger.indexer.runner import Indexer
from ledger.model import Action, RejectReason
from ledger.settlement.outbox_models import OutboxEngagement
from ledger.suite import Suite
from tests.api.conftest import DOMAIN, MARKETER, OTHER, add_campaign, assert_problem, bearer, message, signed
from tests.ledger.crm.rows import CHAIN_ID, ESCROW, hash32, rejection, touchpoint
from tests.ledger.databases import Database
from tests.ledger.indexer.conftest import deployed

pytestmark = pytest.mark.anyio
__all__ = ["deployed"]

BRAND = "0x" + "b0" * 20
BUDGET = 10**26 + 12_345  # past 2^53: a float anywhere would show


@dataclass
class Live:
    client: httpx.AsyncClient
    chain: Chain
    suite: Suite
    database: Database

    async def sign_in(self, signer: LocalAccount) -> dict[str, str]:
        nonce = (await self.client.post("/v1/auth/nonce")).json()["nonce"]
        body = signed(signer, message(signer, nonce, chain_id=self.chain.chain_id))
        response = await self.client.post("/v1/auth/siwe", json=body)
        assert response.status_code == 200, response.text
        return bearer(response.json()["token"])

    def sign_tx(self, signer: LocalAccount, transaction: dict[str, Any]) -> str:
        fields = {key: value for key, value in transaction.items() if key != "from"}
        return "0x" + bytes(signer.sign_transaction(fields).raw_transaction).hex()

    def tx_to_escrow(self, signer: LocalAccount, function: str, *args: Any) -> str:
        """A marketer's own escrow call, signed by ``signer``, as a wallet builds it."""
        data = self.suite.escrow.encode_abi(function, args=list(args))
        filled = self.chain.prepare(signer, {"to": self.suite.escrow.address, "data": data, "gas": 300_000})
        filled["nonce"] = self.chain.w3.eth.get_transaction_count(signer.address, "pending")
        return self.sign_tx(signer, filled | {"type": 2})

    async def create(self, signer: LocalAccount, headers: dict[str, str], budget: int = BUDGET) -> int:
        """prepare -> sign the Permit -> prepare with it -> sign the transaction -> relay -> mined -> indexed."""
        now = self.chain.latest_timestamp()
        terms = {
            "brand": BRAND,
            "starts_at": now,
            "ends_at": now + 86_400,
            "actions": {"ad_view": {"reward": str(2**90)}, "install": {"reward": "5", "lifetime_cap": 1}},
            "attesters": [self.chain.accounts.attester.address],
            "budget": str(budget),
        }
        response = await self.client.post("/v1/campaigns/prepare", json=terms, headers=headers)
        assert response.status_code == 200, response.text
        permit = response.json()["permit"]
        assert permit["message"]["value"] == str(budget) and permit["domain"]["chainId"] == self.chain.chain_id
        domain = typed_data.Domain(
            permit["domain"]["name"], permit["domain"]["chainId"], permit["domain"]["verifyingContract"]
        )
        values = {k: int(v) if k in ("value", "nonce", "deadline") else v for k, v in permit["message"].items()}
        signature = typed_data.sign(signer, domain, "Permit", values)
        body = terms | {"permit_signature": "0x" + signature.hex(), "deadline": values["deadline"]}
        response = await self.client.post("/v1/campaigns/prepare", json=body, headers=headers)
        assert response.status_code == 200, response.text
        transaction = response.json()["transaction"]
        response = await self.client.post(
            "/v1/campaigns", json={"signed_transaction": self.sign_tx(signer, transaction)}, headers=headers
        )
        assert response.status_code == 202, response.text
        status = await self.client.get(response.json()["status_url"], headers=headers)
        assert status.status_code == 200, status.text
        assert status.json()["state"] == "mined"
        self.index()
        campaign_id: int = status.json()["campaign_id"]
        return campaign_id

    def index(self) -> None:
        Indexer(self.chain, self.suite, self.database.sessions).run_once()


@pytest.fixture
async def live(app: FastAPI, database: Database, deployed: tuple[Chain, Suite]) -> AsyncIterator[Live]:
    """The app pointed at the module's anvil and suite; the marketer and another wallet hold tokens; the chain is
    reverted afterwards."""
    chain, suite = deployed
    runtime: Runtime = app.state.runtime
    app.state.runtime = replace(runtime, deployment=suite.deployment, chain=chain)
    snapshot = chain.snapshot()
    try:
        for holder in (chain.accounts.marketer, chain.accounts.consumers[0]):
            suite.transfer(chain.accounts.deployer, holder.address, 2 * BUDGET)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"https://{DOMAIN}") as client:
            yield Live(client, chain, suite, database)
    finally:
        app.state.runtime = runtime
        chain.revert(snapshot)


@pytest.mark.anvil
class TestCreateCampaign:
    async def test_prepared_signed_and_relayed_it_is_mined_indexed_and_shown_exactly(self, live: Live):
        marketer = live.chain.accounts.marketer
        headers = await live.sign_in(marketer)
        campaign_id = await live.create(marketer, headers)
        detail = (await live.client.get(f"/v1/campaigns/{campaign_id}", headers=headers)).json()
        assert (detail["marketer"], detail["status"], detail["budget"]) == (marketer.address, "active", str(BUDGET))
        assert (detail["owed"], detail["spend"], detail["deliveries"]) == ("0", "0", 0)
        assert detail["attesters"] == [live.chain.accounts.attester.address]
        rewards = {a["action"]: (a["reward"], a["lifetime_cap"]) for a in detail["actions"] if a["purposes"]}
        assert rewards == {"ad_view": (str(2**90), 0), "install": ("5", 1)}
        assert detail["indexed_block"] >= detail["updated_block"]
        listed = (await live.client.get("/v1/campaigns", headers=headers)).json()
        assert [c["campaign_id"] for c in listed] == [campaign_id]
        assert live.suite.campaign_state(campaign_id).budget == BUDGET

    async def test_a_transaction_signed_by_another_wallet_is_403(self, live: Live):
        headers = await live.sign_in(live.chain.accounts.marketer)
        raw = live.tx_to_escrow(live.chain.accounts.consumers[0], "pause", 0)
        response = await live.client.post("/v1/campaigns", json={"signed_transaction": raw}, headers=headers)
        assert_problem(response, 403, "wrong_signer")

    async def test_a_token_transfer_is_not_relayed(self, live: Live):
        marketer = live.chain.accounts.marketer
        headers = await live.sign_in(marketer)
        data = live.suite.token.encode_abi("transfer", args=[OTHER.address, 1])
        filled = live.chain.prepare(marketer, {"to": live.suite.escrow.address, "data": data, "gas": 100_000})
        raw = live.sign_tx(marketer, filled | {"type": 2, "nonce": 0})
        response = await live.client.post("/v1/campaigns", json={"signed_transaction": raw}, headers=headers)
        assert_problem(response, 422, "invalid_transaction")
        raw = live.tx_to_escrow(marketer, "pause", 0)  # an escrow function, not a create
        response = await live.client.post("/v1/campaigns", json={"signed_transaction": raw}, headers=headers)
        assert_problem(response, 422, "function_not_allowed")


@pytest.mark.anvil
class TestCampaignTransactions:
    async def test_the_marketer_manages_its_campaign_and_a_revert_comes_back_by_name(self, live: Live):
        marketer, other = live.chain.accounts.marketer, live.chain.accounts.consumers[0]
        headers = await live.sign_in(marketer)
        campaign_id = await live.create(marketer, headers)
        other_headers = await live.sign_in(other)
        others_id = await live.create(other, other_headers, budget=1)

        async def relay(raw: str, cid: int = campaign_id, h: dict[str, str] = headers) -> httpx.Response:
            return await live.client.post(
                f"/v1/campaigns/{cid}/transactions", json={"signed_transaction": raw}, headers=h
            )

        response = await relay(live.tx_to_escrow(marketer, "close", campaign_id))
        problem = assert_problem(response, 409, "campaign_not_ended")
        assert "EscrowCampaignNotEnded" in problem["detail"] and problem["campaign_id"] == str(campaign_id)
        assert_problem(await relay(live.tx_to_escrow(marketer, "pause", others_id)), 403, "campaign_mismatch")
        assert_problem(await relay(live.tx_to_escrow(marketer, "pause", others_id), others_id), 403, "not_marketer")
        assert_problem(await relay(live.tx_to_escrow(other, "pause", campaign_id)), 403, "wrong_signer")
        assert_problem(await relay(live.tx_to_escrow(marketer, "pause", campaign_id), 99), 404, "campaign_not_indexed")

        # topUp pulls with transferFrom: the wallet approves the escrow itself (the token is not relayed here)
        transact(live.chain, marketer, live.suite.token.functions.approve(live.suite.escrow.address, 1_000))
        for function, args in (("pause", ()), ("topUp", (1_000,)), ("addAttester", (OTHER.address,))):
            response = await relay(live.tx_to_escrow(marketer, function, campaign_id, *args))
            assert response.status_code == 202, response.text
        live.index()
        detail = (await live.client.get(f"/v1/campaigns/{campaign_id}", headers=headers)).json()
        assert (detail["status"], detail["budget"]) == ("paused", str(BUDGET + 1_000))
        assert detail["attesters"] == [live.chain.accounts.attester.address, OTHER.address]
        listed = (await live.client.get("/v1/campaigns", headers=headers)).json()
        assert [c["campaign_id"] for c in listed] == [campaign_id]
        assert_problem(await live.client.get(f"/v1/campaigns/{others_id}", headers=headers), 403, "not_marketer")


class TestCampaignDetail:
    async def test_figures_are_exact_and_rejections_attributed_where_known(
        self, client: httpx.AsyncClient, database: Database
    ):
        add_campaign(database, 1, attesters=[OTHER.address], budget=2**103 + 1, owed=2**100 + 3)
        big = 2**95 + 1
        with database.sessions.begin() as session:
            session.add_all(
                [touchpoint(0, amount=big), touchpoint(1, amount=big), touchpoint(2, amount=7, action=Action.INSTALL)]
            )
            session.add_all(
                [rejection(10, event_id=10), rejection(11, event_id=11, reason=RejectReason.DAILY_CAP_REACHED)]
            )
            session.add(
                OutboxEngagement(
                    chain_id=CHAIN_ID, escrow=ESCROW, campaign_id=1, attester=OTHER.address.lower(), attester_ref="r10",
                    event_id=10, consumer="0x" + "c1" * 20, action=Action.EMAIL_OPEN, occurred_at=1,
                    evidence_hash=hash32(5), status="rejected",
                )
            )  # fmt: skip
        nonce = (await client.post("/v1/auth/nonce")).json()["nonce"]
        token = (await client.post("/v1/auth/siwe", json=signed(MARKETER, message(MARKETER, nonce)))).json()["token"]
        detail = (await client.get("/v1/campaigns/1", headers=bearer(token))).json()
        assert (detail["budget"], detail["owed"]) == (str(2**103 + 1), str(2**100 + 3))
        assert (detail["spend"], detail["deliveries"]) == (str(2 * big + 7), 3)
        assert detail["rejections_by_reason"] == {"no_consent": 1, "daily_cap_reached": 1}
        assert detail["rejections_unattributed"] == 1
        assert detail["outbox"]["rejected"] == 1 and detail["indexed_block"] is None
        assert_problem(await client.get("/v1/campaigns/2", headers=bearer(token)), 404, "campaign_not_indexed")
