"""The main job's demo flow: every path of the ledger once, on eth-tester and on the anvil devnet."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger.chain import connect
from ledger.model import CampaignStatus, RejectReason
from ledger.settings import Settings
from ledger.suite import Suite
from scripts.cli import app
from scripts.demo import BUDGET, run_demo


def _check(suite: Suite, result) -> None:  # type: ignore[no-untyped-def]
    assert result.rejected == {6: RejectReason.LIFETIME_CAP_REACHED, 8: RejectReason.NO_CONSENT}
    assert len(result.paid) == 7
    state = suite.campaign_state(result.campaign_id)
    assert state.status == CampaignStatus.CLOSED
    # what was claimed went to the consumer; the rest is split between refund and still-owed rewards
    assert result.claimed > 0 and result.owed_after_close > 0
    assert result.claimed + result.refund + result.owed_after_close == BUDGET
    assert state.owed == result.owed_after_close and state.budget == 0
    assert suite.balance(suite.escrow.address) == result.owed_after_close
    assert all(step.tx_hash.startswith("0x") and step.gas > 21_000 for step in result.steps)


def test_demo_runs_every_path_on_eth_tester(tmp_path: Path):
    with connect(Settings(chain="eth-tester", data_dir=tmp_path)) as chain:
        suite = Suite.deploy(chain)
        _check(suite, run_demo(suite))


@pytest.mark.anvil
def test_main_job_seeds_the_devnet_and_a_restart_reuses_the_deployment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ADLEDGER_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    first = runner.invoke(app, ["up", "--no-serve", "--port", "0"])
    assert first.exit_code == 0, first.output
    assert "7 paid, 2 rejected" in first.output
    assert "indexed 16 logs" in first.output  # the demo's events, now CRM rows
    manifest = (tmp_path / "deployment.json").read_text()

    second = runner.invoke(app, ["up", "--no-serve", "--port", "0"])
    assert second.exit_code == 0, second.output
    assert (tmp_path / "deployment.json").read_text() == manifest  # the persisted chain kept the suite
    assert "campaign 2:" in second.output

    with connect(Settings(chain="anvil", data_dir=tmp_path)) as chain:
        suite = Suite.load(chain, tmp_path / "deployment.json")
        assert suite.campaign_state(2).status == CampaignStatus.CLOSED


def test_demo_without_a_deployment_on_a_url_chain_reports_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ADLEDGER_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["deploy", "--chain", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "chain_unavailable" in result.output
