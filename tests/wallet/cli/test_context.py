"""What every wallet command shares: where the password comes from, the global options and their variables, the
API being down (one line, exit 10), and `adledger wallet` mounted in the main CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scripts.cli import app
from tests.wallet.cli.runner import NO_API, Cli, assert_one_error_line
from tests.wallet.conftest import FAST, PASSWORD
from wallet import Wallet
from wallet.cli.context import API_ENV, PASSWORD_ENV


@pytest.fixture
def wallet(wallet_dir: Path) -> Wallet:
    return Wallet.create(PASSWORD, wallet_dir, iterations=FAST)


class TestPasswords:
    def test_a_password_file_wins_over_the_environment(self, wallet: Wallet, wallet_dir: Path, tmp_path: Path):
        (tmp_path / "password").write_text(PASSWORD + "\r\n")  # the line end an editor adds is not the password
        result = Cli(NO_API, wallet_dir)("--password-file", str(tmp_path / "password"), "export", "--yes",
                                         password="not this one")  # fmt: skip
        assert result.exit_code == 0, result.output

    def test_the_prompt_is_the_last_resort_and_hides_the_answer(self, wallet: Wallet, wallet_dir: Path):
        result = Cli(NO_API, wallet_dir)("export", "--yes", input=f"{PASSWORD}\n")
        assert result.exit_code == 0, result.output
        assert f"Password of {wallet.address}" in result.output and PASSWORD not in result.output


class TestApiDown:
    def test_an_api_that_is_down_is_one_line_and_exit_10(self, wallet: Wallet, wallet_dir: Path):
        result = Cli(NO_API, wallet_dir)("rewards", password=PASSWORD)
        assert result.exit_code == 10, result.output
        assert_one_error_line(result, f"cannot reach the API at {NO_API}")
        assert "make run" in result.stderr

    def test_the_api_url_may_come_from_the_environment(self, wallet: Wallet, wallet_dir: Path):
        env = {API_ENV: "http://127.0.0.1:10", PASSWORD_ENV: PASSWORD, "COLUMNS": "250"}
        result = CliRunner().invoke(app, ["wallet", "--wallet-dir", str(wallet_dir), "consent", "list"], env=env)
        assert result.exit_code == 10, result.output
        assert_one_error_line(result, "cannot reach the API at http://127.0.0.1:10")

    def test_an_api_url_that_is_not_http_is_refused(self, wallet: Wallet, wallet_dir: Path):
        result = Cli("127.0.0.1:8000", wallet_dir)("history")
        assert result.exit_code == 10, result.output
        assert_one_error_line(result, "not an http:// or https:// URL")


class TestMounted:
    def test_adledger_wallet_runs_the_wallets_commands(self, wallet: Wallet, wallet_dir: Path):
        result = CliRunner().invoke(app, ["wallet", "--wallet-dir", str(wallet_dir), "list", "--json"])
        assert result.exit_code == 0, result.output
        assert [row["address"] for row in json.loads(result.stdout)] == [wallet.address]
