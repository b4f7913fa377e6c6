"""The consumer's routes on a real chain: one anvil per module with the suite deployed, each test reverted
afterwards, the app's runtime pointed at it; the indexer (which reads logs over JSON-RPC) fills the CRM."""

from __future__ import annotations

import secrets

import pytest
from eth_account.signers.local import LocalAccount

from ledger import typed_data
from ledger.crm.repository import upsert_customer
from ledger.model import Action, Purpose
from tests.api.conftest import assert_problem
from tests.api.world import DAY, World, hexed, world
from tests.contracts.helpers import MARKETER_FUNDS, TOKEN, CampaignFactory
from tests.ledger.indexer.conftest import deployed

__all__ = ["deployed", "world"]

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]


async def grant(world: World, who: LocalAccount, headers: dict[str, str], signer: LocalAccount | None = None, **over):
    expires, deadline = world.later(90 * DAY), world.later(3600)
    mask = int(Purpose.ADS | Purpose.EMAIL)
    signature = world.suite.sign_grant(signer or who, world.brand, mask, expires, deadline)
    body = {
        "brand": world.brand,
        "purposes": ["ads", "email"],
        "expires_at": expires,
        "deadline": deadline,
        "signature": hexed(signature),
    } | over
    return await world.client.post("/v1/consents/grant", json=body, headers=headers)


class TestConsents:
    async def test_grant_relayed_indexed_and_receipted(self, world: World):
        who = world.consumer()
        headers = await world.sign_in(who)
        nonce = await world.client.get("/v1/consents/nonce", headers=headers)
        assert nonce.status_code == 200, nonce.text
        assert nonce.json()["nonce"] == 0
        assert nonce.json()["domain"]["verifyingContract"] == world.suite.registry.address

        response = await grant(world, who, headers)
        assert response.status_code == 202, response.text
        tx_hash = response.json()["tx_hash"]
        assert response.json()["relayer"] == world.suite.chain.accounts.relayer.address
        world.index()

        consents = (await world.client.get("/v1/consents", headers=headers)).json()
        assert [(c["brand"], c["purposes"], c["active"]) for c in consents] == [(world.brand, ["ads", "email"], True)]
        (receipt,) = (await world.client.get("/v1/consents/receipts", headers=headers)).json()
        assert (receipt["change"], receipt["tx_hash"], receipt["brand"]) == ("grant", tx_hash, world.brand)
        assert receipt["expires_at"] == consents[0]["expires_at"]

        # revoke email: a second receipt, ads still held
        deadline = world.later(3600)
        signature = world.suite.sign_revoke(who, world.brand, int(Purpose.EMAIL), deadline)
        body = {"brand": world.brand, "purposes": ["email"], "deadline": deadline, "signature": hexed(signature)}
        revoked = await world.client.post("/v1/consents/revoke", json=body, headers=headers)
        assert revoked.status_code == 202, revoked.text
        world.index()
        receipts = (await world.client.get("/v1/consents/receipts", headers=headers)).json()
        assert [(r["change"], r["held_after"]) for r in receipts] == [("grant", ["ads", "email"]), ("revoke", ["ads"])]

        # another consumer sees none of it
        others = await world.sign_in(world.consumer(1))
        assert (await world.client.get("/v1/consents", headers=others)).json() == []
        assert (await world.client.get("/v1/consents/receipts", headers=others)).json() == []

    async def test_grant_signed_by_another_wallet_is_401(self, world: World):
        headers = await world.sign_in(world.consumer())
        response = await grant(world, world.consumer(), headers, signer=world.consumer(1))
        body = assert_problem(response, 401, "invalid_signature")
        assert body["wallet"] == world.consumer().address and body["signer"] != body["wallet"]

    async def test_grant_with_past_deadline_is_expired_signature(self, world: World):
        who = world.consumer()
        headers = await world.sign_in(who)
        deadline = world.later(-3600)
        mask = int(Purpose.ADS)
        signature = world.suite.sign_grant(who, world.brand, mask, world.later(DAY), deadline)
        over = {"purposes": ["ads"], "deadline": deadline, "signature": hexed(signature)}
        response = await grant(world, who, headers, **over)
        assert_problem(response, 401, "expired_signature")

    async def test_grant_without_session_is_401(self, world: World):
        assert_problem(await grant(world, world.consumer(), {}), 401, "credentials_required")


class TestLinks:
    async def test_link_then_replay_then_another_wallet(self, world: World):
        with world.app.state.runtime.sessions.begin() as session:
            customer, _ = upsert_customer(session, email="ada@example.com")
            customer_id = customer.id
        who = world.consumer()
        headers = await world.sign_in(who)
        nonce, deadline = secrets.randbits(256), world.later(3600)
        message = typed_data.link_message(who.address, customer_id, world.brand, nonce, deadline)
        signature = typed_data.sign(who, world.suite.registry_domain, "Link", message)
        body = {
            "customer_id": customer_id,
            "brand": world.brand,
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": hexed(signature),
        }
        created = await world.client.post("/v1/links", json=body, headers=headers)
        assert created.status_code == 201, created.text
        links = (await world.client.get("/v1/links", headers=headers)).json()
        assert [(link["brand"], link["chain_id"]) for link in links] == [(world.brand, world.suite.chain.chain_id)]
        assert "customer_id" not in links[0]

        # the same nonce with a fresh signature for another customer: spent
        with world.app.state.runtime.sessions.begin() as session:
            other_customer, _ = upsert_customer(session, email="bob@example.com")
            other_id = other_customer.id
        message = typed_data.link_message(who.address, other_id, world.brand, nonce, deadline)
        again = body | {
            "customer_id": other_id,
            "signature": hexed(typed_data.sign(who, world.suite.registry_domain, "Link", message)),
        }
        assert_problem(await world.client.post("/v1/links", json=again, headers=headers), 409, "nonce_used")

        # another signed-in wallet sending this wallet's signature: the link would be its own, the signature is not
        others = await world.sign_in(world.consumer(1))
        response = await world.client.post("/v1/links", json=body, headers=others)
        assert_problem(response, 401, "invalid_signature")
        assert (await world.client.get("/v1/links", headers=others)).json() == []


class TestRewards:
    async def test_rewards_after_a_settled_batch_then_claim(self, world: World):
        accounts = world.suite.chain.accounts
        world.suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
        factory = CampaignFactory(world.suite)
        campaign_id = factory.create()
        who, other = world.consumer(), world.consumer(1)
        factory.consent(who, purposes=int(Purpose.ADS))  # no EMAIL: the email click is refused
        engagements = [
            factory.engagement(campaign_id, who.address, Action.AD_CLICK),
            factory.engagement(campaign_id, who.address, Action.AD_VIEW),
            factory.engagement(campaign_id, who.address, Action.EMAIL_CLICK),
        ]
        factory.settle(campaign_id, engagements)
        world.index()
        headers = await world.sign_in(who)

        rewards = (await world.client.get("/v1/rewards", headers=headers)).json()
        (row,) = rewards["campaigns"]
        accrued = TOKEN // 100 + TOKEN // 1000
        assert (row["campaign_id"], row["accrued"], row["claimed"]) == (campaign_id, str(accrued), "0")
        assert (row["claimable"], row["claimable_source"], row["paid_count"]) == (str(accrued), "chain", 2)
        assert [r["reason"] for r in row["rejected"]] == ["no_consent"]

        first = (await world.client.get("/v1/rewards/history?limit=1", headers=headers)).json()
        assert len(first["items"]) == 1 and first["next_cursor"]
        rest = await world.client.get(f"/v1/rewards/history?limit=1&cursor={first['next_cursor']}", headers=headers)
        assert rest.json()["next_cursor"] is None
        amounts = {first["items"][0]["amount"], rest.json()["items"][0]["amount"]}
        assert amounts == {str(TOKEN // 100), str(TOKEN // 1000)}
        bad = await world.client.get("/v1/rewards/history?cursor=nope", headers=headers)
        assert_problem(bad, 422, "invalid_cursor")

        # the other consumer sees nothing of it
        others = await world.sign_in(other)
        assert (await world.client.get("/v1/rewards", headers=others)).json()["campaigns"] == []

        deadline = world.later(3600)
        signature = world.suite.sign_claim(who, [campaign_id], who.address, deadline)
        body = {"campaign_ids": [campaign_id], "to": who.address, "deadline": deadline, "signature": hexed(signature)}
        claimed = await world.client.post("/v1/claims", json=body, headers=headers)
        assert claimed.status_code == 202, claimed.text
        assert world.suite.balance(who.address) == accrued
        world.index()
        (row,) = (await world.client.get("/v1/rewards", headers=headers)).json()["campaigns"]
        assert (row["claimed"], row["claimable"]) == (str(accrued), "0")

        # nothing left: the simulation refuses before any gas is spent
        signature = world.suite.sign_claim(who, [campaign_id], who.address, deadline)
        again = body | {"signature": hexed(signature)}
        assert_problem(await world.client.post("/v1/claims", json=again, headers=headers), 409, "nothing_to_claim")


class TestTransfers:
    async def permit(self, world: World, who: LocalAccount, headers: dict[str, str], value: int) -> dict:
        """A transfer body signed with the nonce and domain GET /v1/consents/nonce gives."""
        nonces = (await world.client.get("/v1/consents/nonce", headers=headers)).json()
        domain = typed_data.Domain(
            nonces["permit_domain"]["name"], nonces["permit_domain"]["chainId"],
            nonces["permit_domain"]["verifyingContract"],
        )  # fmt: skip
        deadline = world.later(3600)
        message = typed_data.permit_message(who.address, nonces["permit_spender"], value, nonces["permit_nonce"],
                                            deadline)  # fmt: skip
        signature = typed_data.sign(who, domain, "Permit", message)
        return {"to": world.consumer(1).address, "value": str(value), "deadline": deadline,
                "signature": hexed(signature)}  # fmt: skip

    async def test_a_signed_permit_moves_exactly_the_value_and_cannot_be_replayed(self, world: World):
        accounts = world.suite.chain.accounts
        who, to = world.consumer(), world.consumer(1)
        world.suite.transfer(accounts.deployer, who.address, 5 * TOKEN)
        before = world.suite.balance(to.address)
        headers = await world.sign_in(who)
        body = await self.permit(world, who, headers, 2 * TOKEN)

        sent = await world.client.post("/v1/transfers", json=body, headers=headers)
        assert sent.status_code == 202, sent.text
        assert (sent.json()["action"], sent.json()["nonce"]) == ("transfer", 0)
        assert world.suite.balance(who.address) == 3 * TOKEN
        assert world.suite.balance(to.address) == before + 2 * TOKEN
        spender = (await world.client.get("/v1/consents/nonce", headers=headers)).json()["permit_spender"]
        assert world.suite.token.functions.allowance(who.address, spender).call() == 0  # used up

        replay = await world.client.post("/v1/transfers", json=body, headers=headers)  # the nonce moved on
        assert_problem(replay, 401, "invalid_signature")

    async def test_refusals_cost_no_gas(self, world: World):
        accounts = world.suite.chain.accounts
        who = world.consumer()
        world.suite.transfer(accounts.deployer, who.address, TOKEN)
        headers = await world.sign_in(who)
        body = await self.permit(world, who, headers, 2 * TOKEN)
        assert_problem(await world.client.post("/v1/transfers", json=body, headers=headers), 409,
                       "insufficient_balance")  # fmt: skip
        to_self = body | {"to": who.address}
        assert_problem(await world.client.post("/v1/transfers", json=to_self, headers=headers), 422,
                       "invalid_recipient")  # fmt: skip
        zero = body | {"value": "0"}
        assert_problem(await world.client.post("/v1/transfers", json=zero, headers=headers), 422, "invalid_request")
        too_big = body | {"value": str(2**256)}
        assert_problem(await world.client.post("/v1/transfers", json=too_big, headers=headers), 422,
                       "invalid_request")  # fmt: skip
        other = await world.sign_in(world.consumer(2))  # another wallet cannot spend this wallet's permit
        assert_problem(await world.client.post("/v1/transfers", json=body, headers=other), 401, "invalid_signature")
        assert world.suite.balance(who.address) == TOKEN
