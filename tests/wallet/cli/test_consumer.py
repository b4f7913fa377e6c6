"""`adledger wallet` commands against the API served over HTTP on anvil, beyond the journey: the session cache
between commands, failures as one line and an exit code (wrong password, unknown wallet, the API's refusal, a
typo in an amount), links, and a direct transfer that pays its own gas."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ledger.crm.repository import upsert_customer
from tests.contracts.helpers import TOKEN
from tests.ledger.indexer.conftest import deployed
from tests.wallet.cli.runner import Cli, assert_one_error_line
from tests.wallet.conftest import FAST, PASSWORD
from tests.wallet.server import Api, api, api_server
from wallet import Wallet
from wallet.sessions import FILE_NAME

__all__ = ["api", "api_server", "deployed"]

pytestmark = pytest.mark.anvil


@pytest.fixture
def wallet(wallet_dir: Path) -> Wallet:
    return Wallet.create(PASSWORD, wallet_dir, iterations=FAST)


@pytest.fixture
def cli(api: Api, wallet_dir: Path) -> Cli:
    return Cli(api.url, wallet_dir, api.rpc_url)


class TestSession:
    def test_the_second_command_neither_signs_in_nor_asks_for_the_password(
        self, api: Api, cli: Cli, wallet: Wallet, wallet_dir: Path
    ):
        first = cli("rewards", "--json", password=PASSWORD)
        assert first.exit_code == 0, first.output
        assert json.loads(first.stdout) == {"wallet": wallet.address, "campaigns": []}
        second = cli("links", "--json")  # no password anywhere: a prompt would abort on the empty input
        assert second.exit_code == 0, second.output
        assert json.loads(second.stdout) == []
        assert api.sign_ins(wallet.address) == 1
        cache = wallet_dir / FILE_NAME
        assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
        assert PASSWORD not in cache.read_text()


class TestFailures:
    def test_a_wrong_password_exits_4_and_relays_nothing(self, api: Api, cli: Cli, wallet: Wallet):
        result = cli("consent", "grant", "--brand", api.brand, "--purposes", "ads", password="not the password")
        assert result.exit_code == 4, result.output
        assert_one_error_line(result, "the password does not open the keystore", wallet.address)
        assert "not the password" not in result.output
        assert api.sign_ins() == 0
        assert api.suite.registry.functions.nonces(wallet.address).call() == 0

    def test_an_unknown_address_exits_3(self, cli: Cli, wallet: Wallet):
        stranger = "0x" + "12" * 20
        result = cli("--address", stranger, "rewards", password=PASSWORD)
        assert result.exit_code == 3, result.output
        assert_one_error_line(result, "no keystore for 0x1212")

    def test_an_api_refusal_exits_9_with_its_code(self, api: Api, cli: Cli, wallet: Wallet):
        result = cli("claim", "--campaign", "999", password=PASSWORD)
        assert result.exit_code == 9, result.output
        assert_one_error_line(result, "(nothing_to_claim, HTTP 409)")

    def test_an_amount_with_19_decimals_is_refused_before_anything_is_asked(self, api: Api, cli: Cli, wallet: Wallet):
        result = cli("transfer", "--to", api.consumer(1).address, "--amount", "0.0000000000000000001")
        assert result.exit_code == 7, result.output
        assert_one_error_line(result, "the token has 18 decimals")
        assert api.sign_ins() == 0

    def test_an_unknown_purpose_exits_7(self, api: Api, cli: Cli, wallet: Wallet):
        result = cli("consent", "grant", "--brand", api.brand, "--purposes", "ads,spam", password=PASSWORD)
        assert result.exit_code == 7, result.output
        assert_one_error_line(result, "unknown purpose 'spam'")


class TestChainClock:
    def test_deadlines_follow_a_devnet_clock_that_runs_ahead(self, api: Api, wallet: Wallet, wallet_dir: Path):
        api.chain.increase_time(2 * 3600)  # as `make run`'s demo leaves anvil, an hour ahead per run
        grant = ["consent", "grant", "--brand", api.brand, "--purposes", "ads", "--days", "1"]
        by_the_wall = Cli(api.url, wallet_dir)(*grant, password=PASSWORD)  # no node to read the chain's clock from
        assert by_the_wall.exit_code == 9, by_the_wall.output
        assert_one_error_line(by_the_wall, "expired_signature")
        by_the_chain = Cli(api.url, wallet_dir, api.rpc_url)(*grant, password=PASSWORD)
        assert by_the_chain.exit_code == 0, by_the_chain.output
        api.index()
        (consent,) = json.loads(Cli(api.url, wallet_dir)("consent", "list", "--json").stdout)
        assert abs(consent["expires_at"] - (api.chain.latest_timestamp() + 86_400)) < 60


class TestLink:
    def test_link_then_list_the_brand(self, api: Api, cli: Cli, wallet: Wallet):
        with api.sessions.begin() as session:
            customer, _ = upsert_customer(session, email="ada@example.com")
            customer_id = customer.id
        linked = cli("link", "--customer", str(customer_id), "--brand", api.brand, password=PASSWORD)
        assert linked.exit_code == 0, linked.output
        assert f"linked to customer {customer_id} of {api.brand}" in linked.stdout
        (link,) = json.loads(cli("links", "--json").stdout)
        assert (link["brand"], link["chain_id"]) == (api.brand, api.chain.chain_id)
        assert api.brand in cli("links").stdout


class TestDirectTransfer:
    def test_a_wallet_with_ether_sends_the_transfer_itself(self, api: Api, cli: Cli, wallet: Wallet):
        deployer = api.chain.accounts.deployer
        api.chain.send(deployer, {"to": wallet.address, "value": 10**18})
        api.suite.transfer(deployer, wallet.address, 2 * TOKEN)
        friend = api.consumer(1).address
        before = api.suite.balance(friend)
        relayer_nonce = api.chain.w3.eth.get_transaction_count(deployer.address)
        sent = cli("transfer", "--direct", "--to", friend, "--amount", "1.5", "--json",
                   password=PASSWORD)  # fmt: skip
        assert sent.exit_code == 0, sent.output
        answer = json.loads(sent.stdout)
        receipt = api.chain.w3.eth.get_transaction_receipt(answer["tx_hash"])
        assert (receipt["from"], receipt["to"]) == (wallet.address, api.suite.token.address)
        assert answer["value"] == str(3 * TOKEN // 2) and answer["block_number"] == receipt["blockNumber"]
        assert api.suite.balance(wallet.address) == TOKEN // 2
        assert api.suite.balance(friend) == before + 3 * TOKEN // 2
        assert api.chain.balance(wallet.address) < 10**18  # it paid its own gas
        assert api.chain.w3.eth.get_transaction_count(deployer.address) == relayer_nonce  # the relayer did not

    def test_a_wallet_without_ether_is_told_to_go_gasless(self, api: Api, cli: Cli, wallet: Wallet):
        api.suite.transfer(api.chain.accounts.deployer, wallet.address, TOKEN)
        result = cli("transfer", "--direct", "--to", api.consumer(1).address, "--amount", "1",
                     password=PASSWORD)  # fmt: skip
        assert result.exit_code == 11, result.output
        assert_one_error_line(result, "holds no ether")
        assert "leave out --direct" in result.output
        assert api.suite.balance(wallet.address) == TOKEN

    def test_a_balance_too_small_is_the_chains_named_refusal(self, api: Api, cli: Cli, wallet: Wallet):
        api.chain.send(api.chain.accounts.deployer, {"to": wallet.address, "value": 10**18})
        result = cli("transfer", "--direct", "--to", api.consumer(1).address, "--amount", "1",
                     password=PASSWORD)  # fmt: skip
        assert result.exit_code == 11, result.output
        assert_one_error_line(result, "(insufficient_balance)")
