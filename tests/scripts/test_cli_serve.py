"""`adledger serve`: uvicorn runs the app built from the settings, on the host and port given; with --settle the
batcher runs beside it in the same process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from typer.testing import CliRunner

from ledger.chain import Chain
from ledger.db import engine_from_url, session_factory, upgrade
from ledger.indexer.runner import Indexer
from ledger.model import Action, Purpose
from ledger.settlement.outbox import EngagementIn, accept_engagements
from ledger.settlement.outbox_models import EngagementStatus, OutboxEngagement
from ledger.suite import Suite
from scripts.cli import app
from tests.contracts.helpers import MARKETER_FUNDS, REWARDS, CampaignFactory
from tests.ledger.indexer.conftest import deployed

__all__ = ["deployed"]


def test_serve_runs_create_app_with_uvicorn_on_the_given_host_and_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda served, **options: calls.append((served, options)))
    env = {"ADLEDGER_DATA_DIR": str(tmp_path), "ADLEDGER_API_DOMAIN": "api.example:9123"}
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9123", "--chain", "eth-tester"], env=env)
    assert result.exit_code == 0, result.output
    ((served, options),) = calls
    assert isinstance(served, FastAPI)
    assert (options["host"], options["port"]) == ("0.0.0.0", 9123)
    settings = served.state.settings
    assert (settings.chain, settings.data_dir, settings.api_domain) == ("eth-tester", tmp_path, "api.example:9123")


def test_serve_refuses_a_port_out_of_range():
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2


@pytest.mark.anvil
def test_serve_with_settle_runs_the_batcher_beside_the_api_until_it_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deployed: tuple[Chain, Suite]
):
    chain, suite = deployed
    accounts = chain.accounts
    suite.deployment.save(tmp_path / "deployment.json")
    suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
    factory = CampaignFactory(suite)
    campaign_id = factory.create()
    consumer = accounts.consumers[0]
    factory.consent(consumer, purposes=int(Purpose.ADS))
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = engine_from_url(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    Indexer(chain, suite, sessions).run_once()  # the batcher settles campaigns the index knows
    seen: list[EngagementStatus] = []

    def serving(served: FastAPI, **_: Any) -> None:
        """Stands in for uvicorn: reports an engagement, then waits for the in-process batcher to settle it."""
        with sessions.begin() as session:
            item = EngagementIn(consumer.address, Action.AD_VIEW, chain.latest_timestamp(), "0x" + "ab" * 32, "view-1")
            accept_engagements(session, chain_id=chain.chain_id, escrow=suite.deployment.escrow,
                               campaign_id=campaign_id, attester=accounts.attester.address, engagements=[item],
                               now=chain.latest_timestamp())  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as session:
                status = session.scalar(
                    select(OutboxEngagement.status).where(OutboxEngagement.attester_ref == "view-1")
                )
            if status == EngagementStatus.SETTLED:
                break
            time.sleep(0.2)
        seen.append(status)

    monkeypatch.setattr(uvicorn, "run", serving)
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    env = {"ADLEDGER_DATA_DIR": str(tmp_path), "ADLEDGER_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, ["serve", "--settle", "--max-wait", "0", "--chain", url], env=env)
    assert result.exit_code == 0, result.output
    assert seen == [EngagementStatus.SETTLED]
    assert suite.accrued(campaign_id, consumer.address) == REWARDS[Action.AD_VIEW]  # paid once, on chain
    engine.dispose()
