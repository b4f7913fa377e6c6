"""Engagement intake over HTTP (idempotent, per-engagement answers, limits) and each engagement's state."""

from __future__ import annotations

import sqlite3
import time
from typing import Any, get_args

import httpx
import pytest
from eth_utils.address import to_checksum_address
from sqlalchemy import select, update

from api.schemas.engagements import ActionName, RejectReasonName
from ledger.crm.models import Campaign
from ledger.db import outbox_file
from ledger.model import Action, CampaignStatus, RejectReason
from ledger.settlement.outbox import MAX_PER_CALL
from ledger.settlement.outbox_models import EngagementStatus, OutboxEngagement
from tests.api.conftest import OTHER, add_campaign, assert_problem, bearer, issue_key, now
from tests.ledger.crm.rows import CONSUMER, hash32, rejection, touchpoint
from tests.ledger.databases import Database

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("campaign_1")]


def engagement(n: int = 0, **fields: Any) -> dict[str, Any]:
    values = {
        "attester_ref": f"ref-{n}",
        "consumer": CONSUMER,
        "action": "ad_view",
        "occurred_at": now() - 10_000 + n,
        "evidence_hash": hash32(70_000 + n),
    }
    return values | fields


@pytest.fixture
async def key(client: httpx.AsyncClient) -> str:
    """ATTESTER's API key for campaign 1."""
    issued: str = (await issue_key(client))["key"]
    return issued


async def post(client: httpx.AsyncClient, key: str, engagements: list[dict[str, Any]], campaign_id: int = 1):
    return await client.post(
        "/v1/engagements", json={"campaign_id": campaign_id, "engagements": engagements}, headers=bearer(key)
    )


def test_api_names_are_the_ledger_enums_names():
    assert set(get_args(ActionName)) == {action.name.lower() for action in Action}
    assert set(get_args(RejectReasonName)) == {reason.name.lower() for reason in RejectReason if reason}


class TestPostEngagements:
    async def test_the_same_engagement_three_times_is_accepted_once_then_replayed(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        item = engagement()  # built once: its occurred_at comes from the clock
        answers = [await post(client, key, [item]) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [202] * 3
        first, *again = (answer.json() for answer in answers)
        assert {name: first[name] for name in ("accepted", "duplicates", "conflicts", "invalid")} == {
            "accepted": 1,
            "duplicates": 0,
            "conflicts": 0,
            "invalid": 0,
        }
        assert first["results"] == [
            {
                "attester_ref": "ref-0",
                "outcome": "accepted",
                "event_id": 0,
                "status": "queued",
                "code": None,
                "message": None,
            }
        ]
        for replay in again:
            assert (replay["accepted"], replay["duplicates"]) == (0, 1)
            assert replay["results"][0] | {"outcome": "accepted"} == first["results"][0]
        with database.sessions() as session:
            assert len(session.scalars(select(OutboxEngagement.id)).all()) == 1

    async def test_the_key_works_as_x_api_key_too(self, client: httpx.AsyncClient, key: str):
        response = await client.post(
            "/v1/engagements", json={"campaign_id": 1, "engagements": [engagement()]}, headers={"X-API-Key": key}
        )
        assert (response.status_code, response.json()["accepted"]) == (202, 1)

    async def test_invalid_engagements_are_answered_each_and_never_sink_the_valid_ones(
        self, client: httpx.AsyncClient, key: str
    ):
        batch = [
            engagement(0),
            engagement(1, consumer="0x1234"),
            engagement(2, evidence_hash="0xabc"),
            engagement(3, occurred_at=now() + 3600),
            engagement(4, attester_ref=""),
            engagement(5),
            engagement(6, attester_ref="ref-0", evidence_hash=hash32(1)),  # ref-0 again, with other content
        ]
        body = (await post(client, key, batch)).json()
        assert [(r["attester_ref"], r["outcome"], r["event_id"], r["code"]) for r in body["results"]] == [
            ("ref-0", "accepted", 0, None),
            ("ref-1", "invalid", None, "invalid_address"),
            ("ref-2", "invalid", None, "invalid_evidence_hash"),
            ("ref-3", "invalid", None, "time_in_future"),
            ("", "invalid", None, "invalid_attester_ref"),
            ("ref-5", "accepted", 1, None),
            ("ref-0", "conflict", 0, "engagement_conflict"),
        ]
        assert (body["accepted"], body["duplicates"], body["conflicts"], body["invalid"]) == (2, 0, 1, 4)
        assert all(r["message"] for r in body["results"] if r["outcome"] != "accepted")

    async def test_more_than_max_per_call_is_refused_whole_with_413_naming_the_limit(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        problem = assert_problem(
            await post(client, key, [engagement(n) for n in range(MAX_PER_CALL + 1)]), 413, "too_many_engagements"
        )
        assert f"at most {MAX_PER_CALL}" in problem["detail"]
        with database.sessions() as session:
            assert session.scalars(select(OutboxEngagement.id)).all() == []
        response = await post(client, key, [engagement(n) for n in range(MAX_PER_CALL)])
        assert (response.status_code, response.json()["accepted"]) == (202, MAX_PER_CALL)

    async def test_another_campaign_than_the_keys_is_403(self, client: httpx.AsyncClient, key: str, database: Database):
        add_campaign(database, 2, attesters=[OTHER.address])
        problem = assert_problem(await post(client, key, [engagement()], campaign_id=2), 403, "access_denied")
        assert "campaign 1, not campaign 2" in problem["detail"]

    async def test_a_closed_campaign_takes_no_engagements(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        with database.sessions.begin() as session:
            session.execute(update(Campaign).values(status=CampaignStatus.CLOSED))
        assert_problem(await post(client, key, [engagement()]), 409, "campaign_not_open")

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"campaign_id": True, "engagements": []}, ["body", "campaign_id"]),
            ({"campaign_id": "1", "engagements": []}, ["body", "campaign_id"]),
            ({"campaign_id": 2**48, "engagements": []}, ["body", "campaign_id"]),
            (
                {"campaign_id": 1, "engagements": [engagement(occurred_at=True)]},
                ["body", "engagements", "0", "occurred_at"],
            ),
            (
                {"campaign_id": 1, "engagements": [engagement(occurred_at=1.5)]},
                ["body", "engagements", "0", "occurred_at"],
            ),
            ({"campaign_id": 1, "engagements": [engagement(action=3)]}, ["body", "engagements", "0", "action"]),
            (
                {"campaign_id": 1, "engagements": [engagement(action="ad_views")]},
                ["body", "engagements", "0", "action"],
            ),
            ({"campaign_id": 1, "engagements": [engagement(extra=1)]}, ["body", "engagements", "0", "extra"]),
            ({"campaign_id": 1}, ["body", "engagements"]),
        ],
        ids=[
            "bool-campaign",
            "string-campaign",
            "campaign-too-large",
            "bool-time",
            "float-time",
            "action-number",
            "unknown-action",
            "extra-field",
            "no-engagements",
        ],
    )
    async def test_a_batch_of_the_wrong_shape_is_an_invalid_request_naming_the_field(
        self, client: httpx.AsyncClient, key: str, body: dict[str, Any], loc: list[str]
    ):
        response = await client.post("/v1/engagements", json=body, headers=bearer(key))
        problem = assert_problem(response, 422, "invalid_request")
        assert loc in [error["loc"] for error in problem["errors"]]

    @pytest.mark.parametrize(
        ("headers", "code"),
        [
            ({}, "credentials_required"),
            (bearer("adl_" + "A" * 43), "invalid_api_key"),
            (bearer("nope"), "invalid_api_key"),
        ],
        ids=["none", "unknown", "not-a-key"],
    )
    async def test_an_api_key_is_required(self, client: httpx.AsyncClient, headers: dict[str, str], code: str):
        response = await client.post("/v1/engagements", json={"campaign_id": 1, "engagements": []}, headers=headers)
        assert_problem(response, 401, code)

    async def test_a_request_refused_for_its_key_or_its_shape_never_waits_for_the_write_lock(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        """Credentials and the body are checked before the route's transaction takes the outbox file's write lock,
        which every other intake and the batcher wait for (here another process holds it, past the 15 s busy
        timeout)."""
        if database.kind != "sqlite":
            pytest.skip("SQLite's write lock per file")
        holder = sqlite3.connect(outbox_file(str(database.engine.url.database)), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            began = time.perf_counter()
            unknown = await client.post("/v1/engagements", json={"campaign_id": 1, "engagements": []},
                                        headers=bearer("adl_" + "A" * 43))  # fmt: skip
            assert_problem(unknown, 401, "invalid_api_key")
            shapeless = await client.post("/v1/engagements", json={"campaign_id": "1"}, headers=bearer(key))
            assert_problem(shapeless, 422, "invalid_request")
            assert time.perf_counter() - began < 5
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    async def test_intake_does_not_wait_for_the_indexers_write_lock(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        """The outbox is a SQLite file of its own: while the indexer (here another process) holds the main file's
        write lock, past the 15 s busy timeout, engagements are still accepted, and stored."""
        if database.kind != "sqlite":
            pytest.skip("SQLite's write lock per file")
        holder = sqlite3.connect(str(database.engine.url.database), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            began = time.perf_counter()
            response = await post(client, key, [engagement(attester_ref="while-indexing")])
            assert response.status_code == 202, response.text
            answer = response.json()
            assert answer["accepted"] == 1
            assert time.perf_counter() - began < 5
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        state = await client.get(f"/v1/engagements/1/{answer['results'][0]['event_id']}", headers=bearer(key))
        assert state.json()["status"] == "queued"


class TestGetEngagement:
    async def test_a_queued_engagement(self, client: httpx.AsyncClient, key: str):
        await post(client, key, [engagement(action="email_click")])
        response = await client.get("/v1/engagements/1/0", headers=bearer(key))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "queued"
        assert (body["action"], body["attester_ref"], body["event_id"], body["campaign_id"]) == (
            "email_click",
            "ref-0",
            0,
            1,
        )
        assert body["consumer"] == to_checksum_address(CONSUMER)
        assert (body["tx_hash"], body["block_number"], body["amount"], body["reject_reason"]) == (None,) * 4

    async def test_a_settled_engagement_has_its_tx_block_and_exact_amount_as_a_decimal_string(
        self, client: httpx.AsyncClient, key: str, database: Database
    ):
        await post(client, key, [engagement(0), engagement(1)])
        with database.sessions.begin() as session:
            session.execute(update(OutboxEngagement).values(status=EngagementStatus.SENT))
            session.add(touchpoint(0, event_id=0, amount=10**24 + 1, block_number=120))
            session.add(rejection(1, event_id=1, reason=RejectReason.NO_CONSENT, block_number=120))
        settled = (await client.get("/v1/engagements/1/0", headers=bearer(key))).json()
        assert (settled["status"], settled["block_number"], settled["amount"]) == ("settled", 120, str(10**24 + 1))
        assert settled["tx_hash"] == hash32(1)
        rejected = (await client.get("/v1/engagements/1/1", headers=bearer(key))).json()
        assert (rejected["status"], rejected["reject_reason"], rejected["amount"]) == ("rejected", "no_consent", None)

    async def test_another_attesters_engagement_is_403(self, client: httpx.AsyncClient, key: str):
        await post(client, key, [engagement()])
        other_key = (await issue_key(client, attester=OTHER))["key"]
        problem = assert_problem(
            await client.get("/v1/engagements/1/0", headers=bearer(other_key)), 403, "access_denied"
        )
        assert "another attester" in problem["detail"]

    async def test_another_campaign_is_403_and_an_unknown_event_404(self, client: httpx.AsyncClient, key: str):
        assert_problem(await client.get("/v1/engagements/2/0", headers=bearer(key)), 403, "access_denied")
        assert_problem(await client.get("/v1/engagements/1/5", headers=bearer(key)), 404, "engagement_not_found")

    @pytest.mark.parametrize(
        "path", ["/v1/engagements/1/281474976710656", "/v1/engagements/-1/0", "/v1/engagements/1/x"]
    )
    async def test_ids_out_of_range_are_invalid_requests(self, client: httpx.AsyncClient, key: str, path: str):
        assert_problem(await client.get(path, headers=bearer(key)), 422, "invalid_request")
