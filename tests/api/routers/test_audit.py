"""The auditor's public reads: campaigns, settled engagements and the verification against the chain.

The read tests use rows as the indexer stores them; the verification journey runs on anvil (the indexer reads
logs over JSON-RPC), where a row tampered with after indexing must fail the check that covers it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from ledger.contracts import transact
from ledger.crm.onchain import Touchpoint
from ledger.crm.repository import upsert_customer
from ledger.model import Action, Purpose, RejectReason
from tests.api.conftest import MARKETER, add_campaign, assert_problem, bearer, sign_in
from tests.api.world import World, world
from tests.contracts.helpers import MARKETER_FUNDS, TOKEN, CampaignFactory
from tests.ledger.crm.rows import CONSUMER, rejection, touchpoint
from tests.ledger.databases import Database
from tests.ledger.indexer.conftest import deployed

pytestmark = pytest.mark.anyio
__all__ = ["deployed", "world"]

OTHER_WALLET = "0x" + "c2" * 20
SECRET_EMAIL = "grace@example.com"


@pytest.fixture
def settled(database: Database) -> int:
    """Campaign 1 with six paid engagements (event ids 0-5; ids 1 and 4 are email clicks, 5 is another wallet's)
    and two rejections (ids 6, 7), every row linked to a customer whose email must never show."""
    add_campaign(database, 1, attesters=[])
    add_campaign(database, 2, attesters=[])
    with database.sessions.begin() as session:
        customer, _ = upsert_customer(session, email=SECRET_EMAIL, display_name="Grace Hopper")
        for event in range(6):
            action = Action.EMAIL_CLICK if event in (1, 4) else Action.AD_VIEW
            consumer = OTHER_WALLET if event == 5 else CONSUMER
            session.add(touchpoint(event, action=action, consumer=consumer, customer_id=customer.id,
                                   amount=2**80 + event))  # fmt: skip
        session.add(rejection(6, customer_id=customer.id, reason=RejectReason.NO_CONSENT))
        session.add(rejection(7, customer_id=customer.id, reason=RejectReason.DAILY_CAP_REACHED))
    return 1


async def pages(client: httpx.AsyncClient, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a keyset list, following next_cursor."""
    found, cursor = [], None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


class TestPublicReads:
    async def test_campaigns_are_listed_by_id_in_pages_without_signing_in(self, client: httpx.AsyncClient, settled):
        listed = await pages(client, "/v1/audit/campaigns", limit=1)
        assert [[c["campaign_id"] for c in page] for page in listed] == [[1], [2]]
        assert listed[0][0]["marketer"] == MARKETER.address

    async def test_campaign_detail_sums_every_delivery_exactly(self, client: httpx.AsyncClient, settled):
        detail = (await client.get("/v1/audit/campaigns/1")).json()
        assert detail["deliveries"] == 6
        assert detail["spend"] == str(sum(2**80 + event for event in range(6)))
        assert detail["rejections_by_reason"] == {"no_consent": 1, "daily_cap_reached": 1}

    async def test_deliveries_in_event_order_across_pages_with_their_log_positions(
        self, client: httpx.AsyncClient, settled
    ):
        listed = await pages(client, "/v1/audit/campaigns/1/deliveries", limit=4)
        assert [len(page) for page in listed] == [4, 2]
        items = [item for page in listed for item in page]
        assert [item["event_id"] for item in items] == list(range(6))
        first = items[0]
        assert (first["outcome"], first["action"], first["amount"]) == ("paid", "ad_view", str(2**80))
        assert first["consumer"].lower() == CONSUMER and first["consumer"] != CONSUMER  # EIP-55
        assert {"block_number", "block_hash", "tx_hash", "log_index", "evidence_hash"} <= first.keys()

    async def test_deliveries_filter_by_action_and_by_wallet(self, client: httpx.AsyncClient, settled):
        clicks = (await client.get("/v1/audit/campaigns/1/deliveries", params={"action": "email_click"})).json()
        assert [item["event_id"] for item in clicks["items"]] == [1, 4]
        others = (await client.get("/v1/audit/campaigns/1/deliveries", params={"consumer": OTHER_WALLET})).json()
        assert [item["event_id"] for item in others["items"]] == [5]

    async def test_rejections_with_the_chains_reason_and_a_reason_filter(self, client: httpx.AsyncClient, settled):
        every = (await client.get("/v1/audit/campaigns/1/rejections")).json()["items"]
        assert [(r["event_id"], r["reason"], r["outcome"]) for r in every] == [
            (6, "no_consent", "rejected"),
            (7, "daily_cap_reached", "rejected"),
        ]
        capped = await client.get("/v1/audit/campaigns/1/rejections", params={"reason": "daily_cap_reached"})
        assert [r["event_id"] for r in capped.json()["items"]] == [7]

    async def test_one_event_id_answers_how_it_was_settled(self, client: httpx.AsyncClient, settled):
        paid = (await client.get("/v1/audit/campaigns/1/events/4")).json()
        assert (paid["outcome"], paid["action"], paid["amount"]) == ("paid", "email_click", str(2**80 + 4))
        refused = (await client.get("/v1/audit/campaigns/1/events/7")).json()
        assert (refused["outcome"], refused["reason"]) == ("rejected", "daily_cap_reached")
        missing = await client.get("/v1/audit/campaigns/1/events/8")
        assert_problem(missing, 404, "settled_event_not_found")

    async def test_no_customer_record_leaks_into_any_public_read(self, client: httpx.AsyncClient, settled):
        paths = [
            "/v1/audit/campaigns",
            "/v1/audit/campaigns/1",
            "/v1/audit/campaigns/1/deliveries",
            "/v1/audit/campaigns/1/rejections",
            "/v1/audit/campaigns/1/events/0",
            "/v1/audit/campaigns/1/events/6",
        ]
        for path in paths:
            text = (await client.get(path)).text
            assert SECRET_EMAIL not in text and "Grace" not in text and "customer" not in text, path

    async def test_unknown_campaign_and_bad_input_are_problems(self, client: httpx.AsyncClient, settled):
        assert_problem(await client.get("/v1/audit/campaigns/99"), 404, "campaign_not_indexed")
        assert_problem(await client.get("/v1/audit/campaigns/99/deliveries"), 404, "campaign_not_indexed")
        assert_problem(await client.get("/v1/audit/campaigns/99/rejections"), 404, "campaign_not_indexed")
        bad_cursor = await client.get("/v1/audit/campaigns/1/deliveries", params={"cursor": "1.2"})
        assert_problem(bad_cursor, 422, "invalid_cursor")
        bad_action = await client.get("/v1/audit/campaigns/1/deliveries", params={"action": "teleport"})
        assert_problem(bad_action, 422, "invalid_request")
        assert_problem(await client.get("/v1/audit/campaigns/-1"), 422, "invalid_request")

    async def test_a_signed_in_wallet_reads_the_same(self, client: httpx.AsyncClient, settled):
        headers = bearer(await sign_in(client, MARKETER))
        signed_in = await client.get("/v1/audit/campaigns/1/deliveries", headers=headers)
        assert signed_in.json() == (await client.get("/v1/audit/campaigns/1/deliveries")).json()


@pytest.mark.anvil
class TestVerification:
    async def test_indexed_figures_tie_out_with_the_chain_until_a_row_is_tampered_with(self, world: World):
        accounts = world.suite.chain.accounts
        world.suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
        factory = CampaignFactory(world.suite)
        campaign_id = factory.create()
        who = world.consumer()
        factory.consent(who, purposes=int(Purpose.ADS))  # no EMAIL: the email click is refused
        factory.settle(
            campaign_id,
            [
                factory.engagement(campaign_id, who.address, Action.AD_CLICK),
                factory.engagement(campaign_id, who.address, Action.AD_VIEW),
                factory.engagement(campaign_id, who.address, Action.EMAIL_CLICK),
            ],
        )
        transact(world.suite.chain, who, world.suite.escrow.functions.claim([campaign_id], who.address))
        world.index()

        verified = (await world.client.get(f"/v1/audit/campaigns/{campaign_id}/verification")).json()
        assert verified["verified"] is True, verified
        checks = {check["name"]: check for check in verified["checks"]}
        assert set(checks) == {"status", "budget", "owed", "budget_from_logs", "owed_from_logs", "batch_amount",
                               "batch_paid", "batch_rejected"}  # fmt: skip
        assert checks["owed"]["expected"] == "0"  # all claimed
        assert checks["batch_amount"]["actual"] == str(TOKEN // 100 + TOKEN // 1000)
        assert (checks["batch_paid"]["actual"], checks["batch_rejected"]["actual"]) == ("2", "1")

        with world.app.state.runtime.sessions.begin() as session:
            row = session.scalars(select(Touchpoint).where(Touchpoint.campaign_id == campaign_id)).first()
            assert row is not None
            session.execute(update(Touchpoint).where(Touchpoint.id == row.id).values(amount=row.amount + 1))
        tampered = (await world.client.get(f"/v1/audit/campaigns/{campaign_id}/verification")).json()
        failed = {check["name"] for check in tampered["checks"] if not check["passed"]}
        assert tampered["verified"] is False
        assert failed == {"budget_from_logs", "owed_from_logs", "batch_amount"}

    async def test_a_campaign_not_indexed_cannot_be_verified(self, world: World):
        assert_problem(await world.client.get("/v1/audit/campaigns/1/verification"), 404, "campaign_not_indexed")
