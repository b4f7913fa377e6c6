"""CRM customers over HTTP: marketers only, create or merge, edit, erase, search, pages, and the scoped timeline."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from ledger.crm.models import Conversion, WalletLink
from ledger.crm.repository import upsert_customer
from tests.api.conftest import MARKETER, OTHER, account, assert_problem, bearer, sign_in
from tests.ledger.crm.rows import (
    BRAND,
    CHAIN_ID,
    CONSUMER,
    campaign,
    claim,
    consent_event,
    hash32,
    rejection,
    touchpoint,
)
from tests.ledger.databases import Database

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("campaign_1")]

RIVAL = account(7)  # the marketer of campaign 9, another brand
RIVAL_BRAND = "0x" + "b9" * 20


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await sign_in(client, MARKETER))


def link(database: Database, customer_id: int, wallet: str = CONSUMER, brand: str = BRAND) -> None:
    with database.sessions.begin() as session:
        session.add(
            WalletLink(
                customer_id=customer_id,
                brand=brand,
                wallet=wallet,
                chain_id=CHAIN_ID,
                nonce=1,
                deadline=2**40,
                signature="0x" + "11" * 65,
            )
        )


class TestAccess:
    async def test_a_wallet_that_markets_no_campaign_is_denied(self, client: httpx.AsyncClient):
        headers = bearer(await sign_in(client, OTHER))
        assert_problem(await client.get("/v1/customers", headers=headers), 403, "access_denied")
        assert_problem(await client.post("/v1/customers", json={}, headers=headers), 403, "access_denied")

    async def test_without_a_session_credentials_are_required(self, client: httpx.AsyncClient):
        assert_problem(await client.get("/v1/customers/1"), 401, "credentials_required")


class TestCrud:
    async def test_create_then_duplicate_email_merges(self, client: httpx.AsyncClient, auth: dict[str, str]):
        created = await client.post(
            "/v1/customers", json={"email": "Ann@Example.com", "display_name": "Ann"}, headers=auth
        )
        assert created.status_code == 201, created.text
        assert created.json()["merged"] is False
        merged = await client.post(
            "/v1/customers", json={"email": " ann@example.COM", "phone": "+44 20 7946 0958"}, headers=auth
        )
        assert merged.status_code == 200, merged.text
        body = merged.json()
        assert (body["merged"], body["id"], body["display_name"]) == (True, created.json()["id"], "Ann")
        assert body["phone"] == "+44 20 7946 0958"

    async def test_get_patch_and_collision(self, client: httpx.AsyncClient, auth: dict[str, str]):
        ann = (await client.post("/v1/customers", json={"email": "ann@example.com"}, headers=auth)).json()["id"]
        await client.post("/v1/customers", json={"email": "bob@example.com"}, headers=auth)
        patched = await client.patch(
            f"/v1/customers/{ann}", json={"lifecycle_stage": "loyal", "tier": "gold", "owner": "kim"}, headers=auth
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["lifecycle_stage"], patched.json()["tier"]) == ("loyal", "gold")
        clash = await client.patch(f"/v1/customers/{ann}", json={"email": "BOB@example.com "}, headers=auth)
        assert_problem(clash, 409, "contact_in_use")
        bad = await client.patch(f"/v1/customers/{ann}", json={"phone": "020 7946 0958"}, headers=auth)
        assert_problem(bad, 422, "invalid_contact")
        got = (await client.get(f"/v1/customers/{ann}", headers=auth)).json()
        assert (got["email"], got["owner"], got["phone"]) == ("ann@example.com", "kim", None)
        assert_problem(await client.get("/v1/customers/999999", headers=auth), 404, "customer_not_found")

    async def test_delete_erases_and_reports(self, client: httpx.AsyncClient, auth: dict[str, str], database: Database):
        ann = (await client.post("/v1/customers", json={"email": "ann@example.com"}, headers=auth)).json()["id"]
        link(database, ann)
        with database.sessions.begin() as session:
            session.add(touchpoint(0, customer_id=ann))
        erased = await client.delete(f"/v1/customers/{ann}", headers=auth)
        assert erased.status_code == 200, erased.text
        assert erased.json() | {"customer_id": 0} == {
            "customer_id": 0,
            "wallet_links_deleted": 1,
            "touchpoints_detached": 1,
            "rejections_detached": 0,
            "claims_detached": 0,
            "conversions_detached": 0,
        }
        assert_problem(await client.get(f"/v1/customers/{ann}", headers=auth), 404, "customer_not_found")


class TestSearch:
    async def test_by_email_phone_name_and_stage(self, client: httpx.AsyncClient, auth: dict[str, str]):
        for body in (
            {"email": "ann@example.com", "display_name": "Ann Lee"},
            {"phone": "+1 415 555 0100", "display_name": "Annika"},
            {"email": "bob@example.com", "display_name": "Bob"},
        ):
            assert (await client.post("/v1/customers", json=body, headers=auth)).status_code == 201

        async def names(**params: str) -> list[str]:
            response = await client.get("/v1/customers", params=params, headers=auth)
            assert response.status_code == 200, response.text
            return [item["display_name"] for item in response.json()["items"]]

        assert await names(q="ANN@example.com") == ["Ann Lee"]
        assert await names(q="+14155550100") == ["Annika"]
        assert await names(q="ann") == ["Ann Lee", "Annika"]
        assert await names(q="an%") == []
        assert await names(stage="aware") == ["Ann Lee", "Annika", "Bob"]
        assert await names(stage="loyal") == []

    async def test_pages_by_id(self, client: httpx.AsyncClient, auth: dict[str, str]):
        for n in range(5):
            await client.post("/v1/customers", json={"email": f"c{n}@example.com"}, headers=auth)
        seen, cursor = [], None
        while True:
            params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/v1/customers", params=params, headers=auth)).json()
            seen += [item["email"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"c{n}@example.com" for n in range(5)]
        bad = await client.get("/v1/customers", params={"cursor": "x"}, headers=auth)
        assert_problem(bad, 422, "invalid_cursor")


class TestTimeline:
    async def test_shows_only_the_callers_campaigns_and_brands(
        self, client: httpx.AsyncClient, auth: dict[str, str], database: Database
    ):
        with database.sessions.begin() as session:
            ann, _ = upsert_customer(session, email="ann@example.com")
            ann_id = ann.id
            session.add(campaign(8, marketer=RIVAL.address, brand=RIVAL_BRAND))  # campaign 9
            session.add(touchpoint(1, occurred_at=1_750_000_100, block_number=101))
            session.add(touchpoint(2, campaign_id=9, occurred_at=1_750_000_200, block_number=102))
            session.add(rejection(3, block_number=103, tx_hash=hash32(3)))
            session.add(claim(4, block_number=104, tx_hash=hash32(4)))
            session.add(consent_event(5, block_number=99, tx_hash=hash32(5)))
            session.add(consent_event(6, brand=RIVAL_BRAND, block_number=99, tx_hash=hash32(6)))
            session.add(
                Conversion(
                    customer_id=ann_id,
                    source="shop",
                    order_ref="o-1",
                    value_minor=1234,
                    currency="USD",
                    occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
                )
            )
        link(database, ann_id)
        response = await client.get(f"/v1/customers/{ann_id}/timeline", headers=auth)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["kind"] for item in items] == ["consent", "touchpoint", "rejection", "claim", "conversion"]
        assert all(item.get("campaign_id") in (None, 1) for item in items)
        assert items[1]["amount"] == str(10**18) and items[1]["tx_hash"] == hash32(1)
        assert items[1]["action"] == "ad_view" and items[1]["block_number"] == 101
        assert (items[4]["value_minor"], items[4]["value"], items[4]["currency"]) == ("1234", "12.34", "USD")
        first = (await client.get(f"/v1/customers/{ann_id}/timeline?limit=2", headers=auth)).json()
        rest = (
            await client.get(f"/v1/customers/{ann_id}/timeline?limit=10&cursor={first['next_cursor']}", headers=auth)
        ).json()
        assert [i["kind"] for i in first["items"] + rest["items"]] == [i["kind"] for i in items]
        assert rest["next_cursor"] is None

    async def test_the_rival_marketer_sees_only_its_campaign(self, client: httpx.AsyncClient, database: Database):
        with database.sessions.begin() as session:
            ann, _ = upsert_customer(session, email="ann@example.com")
            ann_id = ann.id
            session.add(campaign(8, marketer=RIVAL.address, brand=RIVAL_BRAND))
            session.add(touchpoint(1, customer_id=ann_id))
            session.add(touchpoint(2, campaign_id=9, customer_id=ann_id))
        headers = bearer(await sign_in(client, RIVAL))
        items = (await client.get(f"/v1/customers/{ann_id}/timeline", headers=headers)).json()["items"]
        assert [(item["kind"], item["campaign_id"]) for item in items] == [("touchpoint", 9)]
