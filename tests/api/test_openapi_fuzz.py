"""Schemathesis over the app's own OpenAPI document, in process: for every operation, generated requests (valid
and invalid) must never get a server error, and every answer must be one the document declares (status code,
content type, headers and body schema).

The app runs on a SQLite file and an anvil with the contracts deployed, with an indexed campaign, a signed-in
marketer and an attester's API key, so the generated requests reach past authentication: each carries the
marketer's session (``Authorization``) and the attester's key (``X-API-Key``, which attester routes read first).
Signing out is left out: it would end the session every later request rides on (the auth tests cover it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.orm import Session

from api.app import create_app
from ledger import siwe
from ledger.auth import api_keys, sessions
from ledger.chain import Chain
from ledger.crm.models import CampaignEventKind
from ledger.db import create_engine_for, session_factory, upgrade
from ledger.settings import Settings
from ledger.suite import Suite
from tests.api.conftest import ATTESTER, DOMAIN, MARKETER, UNLIMITED, URI
from tests.ledger.crm.rows import campaign, campaign_event, rejection, touchpoint
from tests.ledger.indexer.conftest import deployed

pytestmark = pytest.mark.anvil
__all__ = ["deployed"]

EXAMPLES_PER_OPERATION = 15
EXCLUDED = {"/v1/auth/logout"}
# A request the JSON Schema allows may still be refused with a documented 422: a SIWE message's grammar, a signed
# transaction's RLP, a currency code, start before end. Schemathesis' positive_data_acceptance check counts those as
# failures; every answer is still checked against the document (status, content type, headers, body).
EXCLUDED_CHECKS = [positive_data_acceptance]


@dataclass(frozen=True)
class Fuzzed:
    schema: Any
    headers: dict[str, str]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, deployed: tuple[Chain, Suite]) -> Fuzzed:
    """The app on a SQLite file and the module's anvil with the suite deployed, seeded (see ``_seed``). The app
    reaches the chain by URL and reads the manifest from its data dir, as ``adledger serve`` does."""
    chain, suite = deployed
    directory = tmp_path_factory.mktemp("fuzz")
    suite.deployment.save(directory / "deployment.json")
    settings = Settings(
        chain=chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        data_dir=directory,
        database_url=f"sqlite:///{directory / 'fuzz.db'}",
        api_domain=DOMAIN,
        **UNLIMITED,
    )
    engine = create_engine_for(settings)
    upgrade(engine)
    try:
        with session_factory(engine).begin() as session:
            headers = _seed(session, suite)
    finally:
        engine.dispose()
    return Fuzzed(schemathesis.openapi.from_asgi("/openapi.json", create_app(settings)), headers)


def _seed(session: Session, suite: Suite) -> dict[str, str]:
    """Campaign 1 as indexed (MARKETER's, ATTESTER registered) with a delivery and a rejection; a session token
    for MARKETER and an API key for ATTESTER, as request headers."""
    chain_id, escrow = suite.chain.chain_id, suite.deployment.escrow.lower()
    where = {"chain_id": chain_id, "escrow": escrow}
    session.add(campaign(0, marketer=MARKETER.address, **where))
    session.add(campaign_event(1, kind=CampaignEventKind.ATTESTER_ADDED, account=ATTESTER.address, amount=None,
                               budget=None, **where))  # fmt: skip
    session.add(touchpoint(2, **where))
    session.add(rejection(3, **where))
    session.flush()
    nonce = sessions.issue_nonce(session, ttl=timedelta(minutes=5)).nonce
    message = siwe.SiweMessage(
        domain=DOMAIN, address=MARKETER.address, uri=URI, version=siwe.VERSION, chain_id=chain_id, nonce=nonce,
        issued_at=siwe.format_datetime(datetime.now(UTC)),
    )  # fmt: skip
    signature = "0x" + siwe.sign(MARKETER, message).hex()
    signed_in = sessions.sign_in(
        session, message.prepare(), signature, domain=DOMAIN, chain_id=chain_id, ttl=timedelta(hours=1)
    )
    key = api_keys.issue_api_key(
        session, chain_id=chain_id, escrow=escrow, campaign_id=1, marketer=MARKETER.address, attester=ATTESTER.address
    )
    return {"Authorization": f"Bearer {signed_in.token}", "X-API-Key": key.key}


def _operations() -> list[Any]:
    """Every documented operation but signing out, in both generation modes (negative only where there is an input
    to break). Parametrized by hand: schemathesis' own pytest loader reads a pytest attribute pytest 9.2 dropped."""
    document = create_app(Settings()).openapi()  # the document needs no lifespan: nothing is opened
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in EXCLUDED:
                continue
            modes = (
                list(GenerationMode)
                if operation.get("parameters") or "requestBody" in operation
                else [GenerationMode.POSITIVE]
            )
            found += [pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}") for mode in modes]
    return found


@pytest.mark.parametrize("method, path, mode", _operations())
def test_every_answer_is_declared_and_none_is_a_server_error(
    method: str, path: str, mode: GenerationMode, fuzzed: Fuzzed
) -> None:
    operation = fuzzed.schema[path][method]

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
    )
    def answers_as_documented(case: Case) -> None:
        case.call_and_validate(headers=fuzzed.headers, excluded_checks=EXCLUDED_CHECKS)

    answers_as_documented()
