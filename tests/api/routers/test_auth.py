"""Sign-In with Ethereum over HTTP: nonces, sign-in and each way it fails, sessions, expiry, logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from ledger import siwe
from ledger.auth.models import SiweNonce, WalletSession
from ledger.auth.sessions import secret_hash
from ledger.settings import Settings
from tests.api.conftest import (
    DOMAIN,
    MARKETER,
    OTHER,
    assert_problem,
    bearer,
    message,
    new_nonce,
    on_fresh_app,
    sign_in,
    signed,
)
from tests.ledger.crm.rows import CHAIN_ID
from tests.ledger.databases import Database

pytestmark = pytest.mark.anyio


def _at(delta: timedelta) -> str:
    return siwe.format_datetime(datetime.now(UTC) + delta)


class TestNonce:
    async def test_gives_a_nonce_with_what_the_message_must_name(self, client: httpx.AsyncClient, settings: Settings):
        response = await client.post("/v1/auth/nonce")
        assert response.status_code == 201, response.text
        body = response.json()
        assert siwe.RULES["nonce"].fullmatch(body["nonce"])
        assert (body["domain"], body["chain_id"], body["version"]) == (DOMAIN, CHAIN_ID, "1")
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert abs((expires_at - datetime.now(UTC)).total_seconds() - settings.siwe_nonce_ttl) < 30

    async def test_every_call_gives_a_new_nonce(self, client: httpx.AsyncClient):
        assert len({await new_nonce(client) for _ in range(3)}) == 3

    async def test_expired_nonces_are_purged_when_new_ones_are_issued(
        self, client: httpx.AsyncClient, database: Database
    ):
        old = await new_nonce(client)
        with database.sessions.begin() as session:
            session.execute(update(SiweNonce).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        fresh = await new_nonce(client)
        with database.sessions() as session:
            assert session.scalars(select(SiweNonce.nonce)).all() == [fresh]
        assert old != fresh


class TestSignIn:
    async def test_a_signed_message_buys_a_session_token_for_its_address(
        self, client: httpx.AsyncClient, settings: Settings, database: Database
    ):
        msg = message(MARKETER, await new_nonce(client))
        response = await client.post("/v1/auth/siwe", json=signed(MARKETER, msg))
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["address"], body["token_type"]) == (MARKETER.address, "Bearer")
        assert body["token"].startswith("adls_") and len(body["token"]) == len("adls_") + 43
        expires_at = datetime.fromisoformat(body["expires_at"])
        assert abs((expires_at - datetime.now(UTC)).total_seconds() - settings.session_ttl) < 30
        with database.sessions() as session:
            (row,) = session.scalars(select(WalletSession)).all()
        assert (row.token_hash, row.address) == (secret_hash(body["token"]), MARKETER.address.lower())
        assert body["token"] not in repr(row.__dict__)  # only the hash is stored

    @pytest.mark.parametrize(
        ("change", "status", "code"),
        [
            ({"text": lambda text: text.replace("\n", "\r\n")}, 422, "siwe_malformed"),
            ({"domain": "evil.example"}, 401, "siwe_domain_mismatch"),
            ({"chain_id": 1}, 401, "siwe_chain_mismatch"),
            ({"signer": OTHER}, 401, "siwe_invalid_signature"),
            ({"signature": "0x1234"}, 401, "siwe_invalid_signature"),
            ({"expiration_time": _at(timedelta(minutes=-1))}, 401, "siwe_expired"),
            ({"not_before": _at(timedelta(hours=1))}, 401, "siwe_not_yet_valid"),
            ({"issued_at": _at(timedelta(hours=1))}, 401, "siwe_issued_in_future"),
            ({"nonce": "neverIssued123"}, 401, "siwe_nonce_used"),
        ],
        ids=lambda value: value if isinstance(value, str) else None,
    )
    async def test_a_message_that_proves_no_sign_in_here_is_refused_with_its_code(
        self, client: httpx.AsyncClient, change: dict[str, Any], status: int, code: str
    ):
        fields = {name: value for name, value in change.items() if name not in ("text", "signer", "signature")}
        msg = message(MARKETER, fields.pop("nonce", None) or await new_nonce(client), **fields)
        body = signed(change.get("signer", MARKETER), msg)
        if "text" in change:
            body["message"] = change["text"](body["message"])
        if "signature" in change:
            body["signature"] = change["signature"]
        problem = assert_problem(await client.post("/v1/auth/siwe", json=body), status, code)
        assert problem["help"]
        if status == 401:
            assert problem["code"].startswith("siwe_")

    async def test_a_nonce_signs_in_once(self, client: httpx.AsyncClient):
        body = signed(MARKETER, message(MARKETER, await new_nonce(client)))
        assert (await client.post("/v1/auth/siwe", json=body)).status_code == 200
        problem = assert_problem(await client.post("/v1/auth/siwe", json=body), 401, "siwe_nonce_used")
        assert problem["nonce"] == siwe.SiweMessage.parse(body["message"]).nonce

    async def test_a_refused_message_does_not_spend_its_nonce(self, client: httpx.AsyncClient):
        nonce = await new_nonce(client)
        wrong = signed(OTHER, message(MARKETER, nonce))  # signed by another key
        assert_problem(await client.post("/v1/auth/siwe", json=wrong), 401, "siwe_invalid_signature")
        right = signed(MARKETER, message(MARKETER, nonce))
        assert (await client.post("/v1/auth/siwe", json=right)).status_code == 200

    async def test_an_expired_nonce_is_refused(self, client: httpx.AsyncClient, database: Database):
        nonce = await new_nonce(client)
        with database.sessions.begin() as session:
            session.execute(update(SiweNonce).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        body = signed(MARKETER, message(MARKETER, nonce))
        assert_problem(await client.post("/v1/auth/siwe", json=body), 401, "siwe_nonce_used")

    async def test_the_session_ends_no_later_than_the_message_expires(self, client: httpx.AsyncClient):
        expiration = _at(timedelta(minutes=5))
        msg = message(MARKETER, await new_nonce(client), expiration_time=expiration)
        response = await client.post("/v1/auth/siwe", json=signed(MARKETER, msg))
        assert datetime.fromisoformat(response.json()["expires_at"]) == siwe.parse_datetime(expiration)

    async def test_loose_types_are_an_invalid_request(self, client: httpx.AsyncClient):
        response = await client.post("/v1/auth/siwe", json={"message": "text", "signature": 12})
        problem = assert_problem(response, 422, "invalid_request")
        assert problem["errors"] == [
            {"loc": ["body", "signature"], "msg": "Input should be a valid string", "type": "string_type"}
        ]

    async def test_without_a_manifest_sign_in_is_unavailable(self, settings: Settings):
        settings.deployment_file.unlink()
        response = await on_fresh_app(settings, "POST", "/v1/auth/nonce")
        problem = assert_problem(response, 503, "deployment_not_found")
        assert str(settings.deployment_file) not in response.text  # a 5xx names no server path
        assert "log" in problem["detail"] and "adledger deploy" in problem["help"]


class TestSessions:
    async def test_a_session_token_authenticates_until_logout(self, client: httpx.AsyncClient):
        token = await sign_in(client, MARKETER)
        assert (await client.post("/v1/auth/logout", headers=bearer(token))).status_code == 204
        assert_problem(await client.post("/v1/auth/logout", headers=bearer(token)), 401, "invalid_session")

    async def test_logout_ends_only_that_session(self, client: httpx.AsyncClient):
        first, second = await sign_in(client, MARKETER), await sign_in(client, MARKETER)
        assert (await client.post("/v1/auth/logout", headers=bearer(first))).status_code == 204
        assert (await client.post("/v1/auth/logout", headers=bearer(second))).status_code == 204

    async def test_an_expired_session_is_refused(self, client: httpx.AsyncClient, database: Database):
        token = await sign_in(client, MARKETER)
        with database.sessions.begin() as session:
            session.execute(update(WalletSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        response = await client.post("/v1/auth/logout", headers=bearer(token))
        problem = assert_problem(response, 401, "invalid_session")
        assert "expired" in problem["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")

    @pytest.mark.parametrize(
        ("headers", "code"),
        [
            ({}, "credentials_required"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, "credentials_required"),
            (bearer("adls_" + "A" * 43), "invalid_session"),
            (bearer("adl_" + "A" * 43), "invalid_session"),  # an API key is not a session
        ],
        ids=["none", "basic", "unknown-token", "api-key"],
    )
    async def test_without_a_live_session_token_the_caller_is_unauthenticated(
        self, client: httpx.AsyncClient, headers: dict[str, str], code: str
    ):
        assert_problem(await client.post("/v1/auth/logout", headers=headers), 401, code)
