"""The attester's journey over HTTP on anvil: a marketer issues a key, the attester reports, the batcher settles,
the indexer stores, and everyone reads the outcome: the attester its engagement's state, the consumer its reward,
the auditor the delivery. The same engagement posted three times (once after it settled) is settled once."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak
from sqlalchemy import func, select

from ledger.crm.onchain import Touchpoint
from ledger.model import Action, Purpose
from ledger.settlement.batcher import Batcher, BatcherOptions
from tests.api.conftest import bearer
from tests.api.world import World, world
from tests.contracts.helpers import MARKETER_FUNDS, REWARDS, CampaignFactory
from tests.ledger.indexer.conftest import deployed

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]
__all__ = ["deployed", "world"]


async def test_an_engagement_posted_three_times_is_settled_once_and_seen_by_every_role(world: World):
    accounts = world.suite.chain.accounts
    world.suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
    factory = CampaignFactory(world.suite)
    campaign_id = factory.create()
    who = world.consumer()
    factory.consent(who, purposes=int(Purpose.ADS))
    world.index()

    marketer = await world.sign_in(accounts.marketer)
    issued = await world.client.post(
        f"/v1/campaigns/{campaign_id}/api-keys", json={"attester": accounts.attester.address}, headers=marketer
    )
    assert issued.status_code == 201, issued.text
    key = bearer(issued.json()["key"])
    item = {
        "attester_ref": "ad-view-1",
        "consumer": who.address,
        "action": "ad_view",
        "occurred_at": world.suite.chain.latest_timestamp(),
        "evidence_hash": "0x" + keccak(text="impression 1").hex(),
    }
    body = {"campaign_id": campaign_id, "engagements": [item]}

    async def post() -> dict:
        answer = await world.client.post("/v1/engagements", json=body, headers=key)
        assert answer.status_code == 202, answer.text
        (result,) = answer.json()["results"]
        return result

    first, second = await post(), await post()
    assert (first["outcome"], second["outcome"]) == ("accepted", "replay")
    assert first["event_id"] == second["event_id"]
    event_id = first["event_id"]

    batcher = Batcher(world.suite.chain, world.suite, world.app.state.runtime.sessions, accounts.attester,
                      BatcherOptions(max_wait_seconds=0))  # fmt: skip
    batcher.run_once()
    world.index()
    third = await post()  # after settlement: still a replay, now saying settled
    assert (third["outcome"], third["event_id"], third["status"]) == ("replay", event_id, "settled")
    batcher.run_once()  # nothing left to send
    world.index()

    state = (await world.client.get(f"/v1/engagements/{campaign_id}/{event_id}", headers=key)).json()
    assert state["status"] == "settled" and state["tx_hash"] and state["amount"] == str(REWARDS[Action.AD_VIEW])
    with world.app.state.runtime.sessions() as session:
        where = (Touchpoint.campaign_id == campaign_id, Touchpoint.event_id == event_id)
        assert session.scalar(select(func.count()).where(*where)) == 1
    assert world.suite.accrued(campaign_id, who.address) == REWARDS[Action.AD_VIEW]  # paid once on chain

    consumer = await world.sign_in(who)
    (rewards,) = (await world.client.get("/v1/rewards", headers=consumer)).json()["campaigns"]
    assert (rewards["paid_count"], rewards["accrued"]) == (1, str(REWARDS[Action.AD_VIEW]))

    delivery = (await world.client.get(f"/v1/audit/campaigns/{campaign_id}/events/{event_id}")).json()
    assert (delivery["outcome"], delivery["tx_hash"]) == ("paid", state["tx_hash"])
    assert delivery["evidence_hash"] == item["evidence_hash"]
    verified = (await world.client.get(f"/v1/audit/campaigns/{campaign_id}/verification")).json()
    assert verified["verified"] is True, verified
