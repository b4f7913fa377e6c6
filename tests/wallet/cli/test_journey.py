"""A consumer's journey through `adledger wallet`, against the API served over HTTP and anvil: a new wallet,
consent, rewards settled by the attester, a revoke and the engagement it refuses, a claim, a gasless transfer and
the history. The wallet never holds ether; one sign-in serves the whole journey."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ledger.model import Action
from tests.contracts.helpers import MARKETER_FUNDS, TOKEN, CampaignFactory
from tests.ledger.indexer.conftest import deployed
from tests.wallet.cli.runner import Cli
from tests.wallet.conftest import PASSWORD
from tests.wallet.server import Api, api, api_server

__all__ = ["api", "api_server", "deployed"]

pytestmark = pytest.mark.anvil

DAY = 86_400


def test_new_wallet_consent_rewards_revoke_refusal_claim_transfer_history(api: Api, wallet_dir: Path):
    cli = Cli(api.url, wallet_dir, api.rpc_url)
    created = cli("new", input=f"{PASSWORD}\n{PASSWORD}\n")  # asked twice, hidden
    assert created.exit_code == 0, created.output
    assert PASSWORD not in created.output
    wallet = cli("address").stdout.strip()
    assert wallet in created.stdout

    # consent to the brand, gasless: the first command that needs the API signs in
    grant = ["consent", "grant", "--brand", api.brand, "--purposes", "email,ads", "--days", "90"]
    granted = cli(*grant, password=PASSWORD)
    assert granted.exit_code == 0, granted.output
    assert f"granted ads, email to {api.brand}" in granted.stdout
    api.index()
    listed = cli("consent", "list", "--json")  # no password given: the cached session needs none
    assert listed.exit_code == 0, listed.output
    (consent,) = json.loads(listed.stdout)
    assert (consent["brand"], consent["purposes"], consent["active"]) == (api.brand, ["ads", "email"], True)
    assert abs(consent["expires_at"] - (time.time() + 90 * DAY)) < 60
    assert api.brand in cli("consent", "list").stdout

    # the brand's attester reports two ad engagements; the escrow pays them
    accounts = api.chain.accounts
    api.suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
    factory = CampaignFactory(api.suite)
    campaign = factory.create()
    paid = factory.settle(campaign, [factory.engagement(campaign, wallet, Action.AD_CLICK),
                                     factory.engagement(campaign, wallet, Action.AD_VIEW)])  # fmt: skip
    api.index()
    accrued = TOKEN // 100 + TOKEN // 1000
    rewards = cli("rewards", "--json")
    assert rewards.exit_code == 0, rewards.output
    (row,) = json.loads(rewards.stdout)["campaigns"]
    assert (row["campaign_id"], row["accrued"], row["claimable"], row["paid_count"]) == (
        campaign, str(accrued), str(accrued), 2,
    )  # fmt: skip
    assert row["rejected"] == []
    table = cli("rewards").stdout
    assert "0.011" in table and str(accrued) in table  # tokens, and the base units beneath

    # ads revoked: the next ad click is refused on chain, and `rewards` says why
    revoked = cli("consent", "revoke", "--brand", api.brand, "--purposes", "ads", password=PASSWORD)
    assert revoked.exit_code == 0, revoked.output
    refused = factory.settle(campaign, [factory.engagement(campaign, wallet, Action.AD_CLICK)])
    api.index()
    (row,) = json.loads(cli("rewards", "--json").stdout)["campaigns"]
    assert [(r["event_id"], r["reason"]) for r in row["rejected"]] == [(2, "no_consent")]
    assert row["accrued"] == str(accrued)
    table = cli("rewards").stdout
    assert "no_consent" in table and "0x" + bytes(refused["transactionHash"]).hex() in table
    (consent,) = json.loads(cli("consent", "list", "--json").stdout)
    assert consent["purposes"] == ["email"]
    receipts = json.loads(cli("consent", "receipts", "--json").stdout)
    assert [(r["change"], r["purposes"], r["held_after"]) for r in receipts] == [
        ("grant", ["ads", "email"], ["ads", "email"]),
        ("revoke", ["ads"], ["email"]),
    ]

    # claim everything claimable, to the wallet itself
    claimed = cli("claim", password=PASSWORD)
    assert claimed.exit_code == 0, claimed.output
    assert f"claimed 0.011 tokens from campaign {campaign} to {wallet}" in claimed.stdout
    assert api.suite.balance(wallet) == accrued
    api.index()
    (row,) = json.loads(cli("rewards", "--json").stdout)["campaigns"]
    assert (row["claimed"], row["claimable"]) == (str(accrued), "0")
    assert "nothing to claim" in cli("claim").stdout

    # give part of it to another consumer, gaslessly
    friend = api.consumer(1).address
    before = api.suite.balance(friend)
    sent = cli("transfer", "--to", friend, "--amount", "0.005", password=PASSWORD)
    assert sent.exit_code == 0, sent.output
    assert api.suite.balance(wallet) == accrued - 5 * 10**15
    assert api.suite.balance(friend) == before + 5 * 10**15

    # every reward with its transaction and block
    history = json.loads(cli("history", "--json").stdout)
    paid_tx = "0x" + bytes(paid["transactionHash"]).hex()
    assert sorted((r["action"], r["amount"], r["tx_hash"], r["block_number"]) for r in history) == [
        ("ad_click", str(TOKEN // 100), paid_tx, paid["blockNumber"]),
        ("ad_view", str(TOKEN // 1000), paid_tx, paid["blockNumber"]),
    ]
    table = cli("history").stdout
    assert paid_tx in table and str(paid["blockNumber"]) in table and "ad_click" in table
    narrow = cli("history", env={"COLUMNS": "80"}).stdout  # too narrow for the table: one block per reward
    assert f"tx: {paid_tx}" in narrow and f"block: {paid['blockNumber']}" in narrow
    assert "amount: 0.01 tokens (10000000000000000 base units)" in narrow

    assert api.chain.balance(wallet) == 0  # never a wei of gas: the relayer paid for everything
    assert api.sign_ins(wallet) == 1  # one sign-in, reused by every command since
