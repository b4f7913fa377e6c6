"""Attester API keys: issued by the campaign's marketer for an attester registered on chain, hashed, revocable."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select

from ledger.auth.models import ApiKey
from ledger.crm.models import CampaignEventKind
from tests.api.conftest import (
    ATTESTER,
    MARKETER,
    OTHER,
    account,
    add_campaign,
    assert_problem,
    attester_event,
    bearer,
    issue_key,
    sign_in,
)
from tests.ledger.crm.rows import CHAIN_ID, ESCROW
from tests.ledger.databases import Database

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("campaign_1")]

ENGAGEMENTS = "/v1/engagements/1/0"  # any attester route: a live key gets past authentication to a 404


async def _issue(client: httpx.AsyncClient, token: str, attester: object, campaign_id: int = 1) -> httpx.Response:
    return await client.post(
        f"/v1/campaigns/{campaign_id}/api-keys", json={"attester": attester}, headers=bearer(token)
    )


class TestIssueApiKey:
    async def test_the_marketer_gets_a_key_shown_once_and_stored_as_its_sha256(
        self, client: httpx.AsyncClient, database: Database
    ):
        response = await _issue(client, await sign_in(client, MARKETER), ATTESTER.address.lower())
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["campaign_id"], body["attester"]) == (1, ATTESTER.address)  # given back checksummed
        assert body["key"].startswith("adl_") and len(body["key"]) == len("adl_") + 43
        with database.sessions() as session:
            (row,) = session.scalars(select(ApiKey)).all()
        assert row.id == body["key_id"]
        assert row.key_hash == hashlib.sha256(body["key"].encode()).hexdigest()
        assert (row.chain_id, row.escrow, row.campaign_id) == (CHAIN_ID, ESCROW, 1)
        assert (row.attester, row.issued_by, row.revoked_at) == (
            ATTESTER.address.lower(),
            MARKETER.address.lower(),
            None,
        )
        # the key works: the attester is authenticated, and the engagement it asks for does not exist
        assert_problem(await client.get(ENGAGEMENTS, headers=bearer(body["key"])), 404, "engagement_not_found")

    async def test_another_wallet_is_not_the_campaigns_marketer(self, client: httpx.AsyncClient):
        problem = assert_problem(
            await _issue(client, await sign_in(client, OTHER), ATTESTER.address), 403, "not_marketer"
        )
        assert problem["campaign_id"] == 1

    async def test_an_unknown_campaign_is_404(self, client: httpx.AsyncClient):
        response = await _issue(client, await sign_in(client, MARKETER), ATTESTER.address, campaign_id=2)
        assert_problem(response, 404, "campaign_not_indexed")

    async def test_an_address_that_is_not_an_attester_on_chain_is_refused(self, client: httpx.AsyncClient):
        response = await _issue(client, await sign_in(client, MARKETER), account(9).address)
        problem = assert_problem(response, 409, "attester_not_registered")
        assert problem["attester"] == account(9).address.lower()

    async def test_an_attester_removed_on_chain_gets_no_key_until_added_again(
        self, client: httpx.AsyncClient, database: Database
    ):
        token = await sign_in(client, MARKETER)
        with database.sessions.begin() as session:
            attester_event(session, 1, ATTESTER.address, CampaignEventKind.ATTESTER_REMOVED)
        assert_problem(await _issue(client, token, ATTESTER.address), 409, "attester_not_registered")
        with database.sessions.begin() as session:
            attester_event(session, 1, ATTESTER.address, CampaignEventKind.ATTESTER_ADDED)
        assert (await _issue(client, token, ATTESTER.address)).status_code == 201

    async def test_registration_in_another_campaign_does_not_count(self, client: httpx.AsyncClient, database: Database):
        add_campaign(database, 2, attesters=[account(9).address])
        response = await _issue(client, await sign_in(client, MARKETER), account(9).address)
        assert_problem(response, 409, "attester_not_registered")

    @pytest.mark.parametrize(
        "attester",
        ["0x1234", "0x" + "g" * 40, ATTESTER.address[:-1] + ("a" if ATTESTER.address[-1] != "a" else "b"), 42],
        ids=["short", "not-hex", "bad-checksum", "number"],
    )
    async def test_a_malformed_attester_is_an_invalid_request(self, client: httpx.AsyncClient, attester: object):
        problem = assert_problem(
            await _issue(client, await sign_in(client, MARKETER), attester), 422, "invalid_request"
        )
        assert problem["errors"][0]["loc"] == ["body", "attester"]

    async def test_a_wallet_session_is_required(self, client: httpx.AsyncClient):
        key = (await issue_key(client))["key"]
        assert_problem(await _issue(client, key, ATTESTER.address), 401, "invalid_session")
        response = await client.post("/v1/campaigns/1/api-keys", json={"attester": ATTESTER.address})
        assert_problem(response, 401, "credentials_required")


class TestRevokeApiKey:
    async def test_a_revoked_key_stops_working_and_revoking_again_changes_nothing(self, client: httpx.AsyncClient):
        issued = await issue_key(client)
        token = await sign_in(client, MARKETER)
        for _ in range(2):
            response = await client.delete(f"/v1/campaigns/1/api-keys/{issued['key_id']}", headers=bearer(token))
            assert response.status_code == 204, response.text
        assert_problem(await client.get(ENGAGEMENTS, headers=bearer(issued["key"])), 401, "invalid_api_key")

    async def test_other_keys_keep_working(self, client: httpx.AsyncClient):
        first, second = await issue_key(client), await issue_key(client)
        token = await sign_in(client, MARKETER)
        await client.delete(f"/v1/campaigns/1/api-keys/{first['key_id']}", headers=bearer(token))
        assert_problem(await client.get(ENGAGEMENTS, headers=bearer(second["key"])), 404, "engagement_not_found")

    async def test_only_the_marketer_revokes(self, client: httpx.AsyncClient):
        issued = await issue_key(client)
        response = await client.delete(
            f"/v1/campaigns/1/api-keys/{issued['key_id']}", headers=bearer(await sign_in(client, OTHER))
        )
        assert_problem(response, 403, "not_marketer")
        assert_problem(await client.get(ENGAGEMENTS, headers=bearer(issued["key"])), 404, "engagement_not_found")

    async def test_a_key_of_another_campaign_or_none_is_404(self, client: httpx.AsyncClient, database: Database):
        add_campaign(database, 2, attesters=[ATTESTER.address])
        issued = await issue_key(client, campaign_id=2)
        token = await sign_in(client, MARKETER)
        response = await client.delete(f"/v1/campaigns/1/api-keys/{issued['key_id']}", headers=bearer(token))
        assert_problem(response, 404, "api_key_not_found")
        response = await client.delete("/v1/campaigns/1/api-keys/999999", headers=bearer(token))
        assert_problem(response, 404, "api_key_not_found")

    async def test_an_attester_removed_on_chain_loses_its_keys(self, client: httpx.AsyncClient, database: Database):
        issued = await issue_key(client)
        with database.sessions.begin() as session:
            attester_event(session, 1, ATTESTER.address, CampaignEventKind.ATTESTER_REMOVED)
        problem = assert_problem(await client.get(ENGAGEMENTS, headers=bearer(issued["key"])), 401, "invalid_api_key")
        assert "no longer an attester" in problem["detail"]
