"""The main job's demo flow: every path of the ledger once, on eth-tester and on the anvil devnet."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ledger.chain import connect, free_port
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
    assert "indexed 18 logs" in first.output  # the demo's 16 events and the open campaign's 2, now CRM rows
    assert "campaign 2 is open for the API's attester" in first.output
    manifest = (tmp_path / "deployment.json").read_text()

    second = runner.invoke(app, ["up", "--no-serve", "--port", "0"])
    assert second.exit_code == 0, second.output
    assert (tmp_path / "deployment.json").read_text() == manifest  # the persisted chain kept the suite
    assert "campaign 3:" in second.output and "campaign 2 is still open" in second.output  # reused, not another

    with connect(Settings(chain="anvil", data_dir=tmp_path)) as chain:
        suite = Suite.load(chain, tmp_path / "deployment.json")
        assert suite.campaign_state(3).status == CampaignStatus.CLOSED  # the second run's demo
        assert suite.campaign_state(2).status == CampaignStatus.ACTIVE  # the one left open for the API
        # the demo waited for its campaign's end instead of travelling there: the devnet keeps the wall clock,
        # which attesters report times in and wallets sign deadlines by
        assert abs(chain.latest_timestamp() - time.time()) < 15


def test_demo_without_a_deployment_on_a_url_chain_reports_a_clear_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ADLEDGER_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["deploy", "--chain", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "chain_unavailable" in result.output


@pytest.mark.anvil
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_main_job_serves_the_api_with_the_indexer_and_batcher_until_stopped(tmp_path: Path, stop: signal.Signals):
    """`make run` as a user runs it: the API answers ready on the seeded devnet, and Ctrl-C stops everything, as
    SIGTERM (kill, a service manager) does: the devnet's state saved, anvil not left running."""
    api_port = free_port()
    env = os.environ | {"ADLEDGER_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "scripts.cli", "up", "--port", "0", "--api-port", str(api_port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    try:
        ready = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, ready and ready.text
        body = ready.json()
        assert body["checks"] == {"database": "ok", "deployment": "ok", "chain": "ok"}
        assert body["indexer_lag"] <= 3  # the heartbeat mines a block a second; the indexer polls each second
        api = f"http://127.0.0.1:{api_port}"
        login = CliRunner().invoke(
            app, ["dev-login", "marketer", "--api", api], env={"ADLEDGER_DATA_DIR": str(tmp_path)}
        )
        assert login.exit_code == 0, login.output
        token = login.output.strip()
        campaigns = httpx.get(f"{api}/v1/campaigns", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        assert {(c["campaign_id"], c["status"]) for c in campaigns} == {(1, "closed"), (2, "active")}
    finally:
        process.send_signal(stop)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "indexer and batcher following" in output and "stopping the API" in output
    assert (tmp_path / "anvil" / "state.json").exists()
    devnet = re.search(r"devnet running at (http://127\.0\.0\.1:\d+)", output)
    assert devnet is not None, output
    with pytest.raises(httpx.TransportError):  # the devnet is down with it
        httpx.post(devnet[1], json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"}, timeout=2)
