"""wallet.client.ApiClient against the API served over HTTP on anvil: sign-in and the session cache, the API's
refusals as ApiProblem, the history's pages, links, a sign-in the wallet must refuse to make; and, with no API
at all, the failure to reach it and the rule deciding which sign-in domains are the API's own."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ledger.crm.repository import upsert_customer
from ledger.model import Action
from tests.contracts.helpers import MARKETER_FUNDS, TOKEN, CampaignFactory
from tests.ledger.indexer.conftest import deployed
from tests.wallet.conftest import FAST, PASSWORD
from tests.wallet.server import Api, api, api_server
from wallet import Wallet, client
from wallet.client import ApiClient, LockedWallet
from wallet.errors import ApiDomainMismatch, ApiProblem, ApiUnreachable
from wallet.sessions import SessionCache

__all__ = ["api", "api_server", "deployed"]


@pytest.fixture
def wallet(wallet_dir: Path) -> Wallet:
    return Wallet.create(PASSWORD, wallet_dir, iterations=FAST)


@pytest.fixture
def cache(wallet_dir: Path) -> SessionCache:
    return SessionCache.in_dir(wallet_dir)


@pytest.fixture
def consumer(api: Api, wallet: Wallet, cache: SessionCache) -> Iterator[ApiClient]:
    with ApiClient(api.url, wallet, cache) as opened:
        yield opened


def locked(wallet: Wallet) -> LockedWallet:
    """The wallet by address only: unlocking it fails the test, so a call that needs a signature shows."""

    def unlock() -> Wallet:
        raise AssertionError("the wallet was unlocked")

    return LockedWallet(wallet.address, unlock)


def settle(api: Api, consumer: str, actions: list[Action]) -> int:
    """A funded campaign of the devnet's brand settling ``actions`` of ``consumer``, then indexed; its id."""
    accounts = api.chain.accounts
    api.suite.transfer(accounts.deployer, accounts.marketer.address, MARKETER_FUNDS)
    factory = CampaignFactory(api.suite)
    campaign = factory.create()
    factory.settle(campaign, [factory.engagement(campaign, consumer, action) for action in actions])
    api.index()
    return campaign


@pytest.mark.anvil
class TestSessions:
    def test_the_next_client_reuses_the_cached_session_without_unlocking_the_wallet(
        self, api: Api, wallet: Wallet, consumer: ApiClient, cache: SessionCache
    ):
        assert consumer.rewards().campaigns == []
        assert api.sign_ins(wallet.address) == 1
        assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
        with ApiClient(api.url, locked(wallet), cache) as again:
            assert again.rewards().wallet == wallet.address
            assert again.consents() == []
        assert api.sign_ins(wallet.address) == 1

    def test_a_session_about_to_expire_is_not_used(self, api: Api, wallet: Wallet, cache: SessionCache):
        cache.put(api.url, wallet.address, "adls_not-a-real-token", datetime.now(UTC) + timedelta(seconds=30))
        with ApiClient(api.url, wallet, cache) as opened:
            opened.links()
        assert api.sign_ins(wallet.address) == 1
        assert cache.get(api.url, wallet.address) != "adls_not-a-real-token"

    def test_a_session_the_api_ended_is_replaced_by_one_new_sign_in(
        self, api: Api, wallet: Wallet, consumer: ApiClient, cache: SessionCache
    ):
        consumer.links()
        ended = cache.get(api.url, wallet.address)
        assert ended is not None
        logout = httpx.post(f"{api.url}/v1/auth/logout", headers={"Authorization": f"Bearer {ended}"})
        assert logout.status_code == 204, logout.text
        assert api.sign_ins(wallet.address) == 0  # logging out deletes the session
        with ApiClient(api.url, wallet, cache) as again:
            assert again.links() == []
        assert api.sign_ins(wallet.address) == 1
        assert cache.get(api.url, wallet.address) not in (None, ended)

    def test_a_sign_in_for_another_site_is_refused_unsigned(self, api: Api, wallet: Wallet, consumer: ApiClient):
        settings = api.app.state.settings
        api.app.state.settings = settings.model_copy(update={"api_domain": "adledger.example"})
        with pytest.raises(ApiDomainMismatch) as refused:
            consumer.rewards()
        assert refused.value.domain == "adledger.example" and refused.value.exit_code == 9
        assert api.sign_ins() == 0


@pytest.mark.anvil
class TestProblems:
    def test_a_refusal_carries_the_apis_code_detail_and_help(self, api: Api, wallet: Wallet, consumer: ApiClient):
        api.suite.transfer(api.chain.accounts.deployer, wallet.address, TOKEN)
        with pytest.raises(ApiProblem) as refused:
            consumer.transfer(wallet.address, TOKEN)  # to itself
        problem = refused.value
        assert (problem.code, problem.status, problem.exit_code) == ("invalid_recipient", 422, 9)
        assert problem.help == problem.body["help"] == "name the other wallet's address"
        assert problem.detail == problem.body["detail"] and problem.detail in str(problem)

    def test_nothing_to_claim_is_the_chains_refusal(self, consumer: ApiClient):
        with pytest.raises(ApiProblem) as refused:
            consumer.claim([999])
        assert (refused.value.code, refused.value.status) == ("nothing_to_claim", 409)

    def test_a_transfer_beyond_the_balance_is_refused_and_sends_nothing(self, api: Api, consumer: ApiClient):
        nonce = api.chain.w3.eth.get_transaction_count(api.chain.accounts.relayer.address)
        with pytest.raises(ApiProblem) as refused:
            consumer.transfer(api.consumer(1).address, TOKEN)  # the wallet holds no tokens
        assert refused.value.code == "insufficient_balance"
        assert api.chain.w3.eth.get_transaction_count(api.chain.accounts.relayer.address) == nonce


@pytest.mark.anvil
class TestRewards:
    def test_history_follows_the_cursor_page_by_page(
        self, api: Api, wallet: Wallet, consumer: ApiClient, monkeypatch: pytest.MonkeyPatch
    ):
        consumer.grant(api.brand, ["ads"], api.chain.latest_timestamp() + 86_400)
        settle(api, wallet.address, [Action.AD_VIEW, Action.AD_CLICK, Action.AD_VIEW])
        monkeypatch.setattr(client, "HISTORY_PAGE", 1)
        paid = consumer.reward_history()
        assert [(r.event_id, r.action) for r in paid] == [(2, "ad_view"), (1, "ad_click"), (0, "ad_view")]
        assert [r.event_id for r in consumer.reward_history(limit=2)] == [2, 1]
        (row,) = consumer.rewards().campaigns
        assert (row.accrued, row.claimable, row.paid_count) == (TOKEN // 100 + 2 * (TOKEN // 1000),) * 2 + (3,)


@pytest.mark.anvil
class TestLinks:
    def test_a_link_names_the_brand_and_never_the_customer(self, api: Api, consumer: ApiClient):
        with api.sessions.begin() as session:
            customer, _ = upsert_customer(session, email="ada@example.com")
            customer_id = customer.id
        made = consumer.link(customer_id, api.brand.lower())
        assert (made.brand, made.chain_id) == (api.brand, api.chain.chain_id)
        assert [(link.brand, link.chain_id) for link in consumer.links()] == [(api.brand, api.chain.chain_id)]


class TestUnreachable:
    def test_a_read_from_an_api_that_is_down_never_reached_it(self, wallet: Wallet):
        with ApiClient("http://127.0.0.1:9", wallet) as down, pytest.raises(ApiUnreachable) as failed:
            down.rewards()
        assert (failed.value.sent, failed.value.exit_code) == (False, 10)
        assert "cannot reach the API at http://127.0.0.1:9" in str(failed.value)

    def test_an_api_url_must_be_http(self, wallet: Wallet):
        with pytest.raises(ApiUnreachable, match="not an http"):
            ApiClient("ftp://127.0.0.1", wallet)


class TestSameSite:
    @pytest.mark.parametrize(
        ("domain", "api"),
        [
            ("localhost:8000", "http://127.0.0.1:8000"),  # `make run` names localhost; clients use 127.0.0.1
            ("127.0.0.1:8000", "http://localhost:8000/"),
            ("api.adledger.example", "https://api.adledger.example"),
            ("api.adledger.example:443", "https://api.adledger.example"),
        ],
    )
    def test_the_apis_own_domain(self, domain: str, api: str):
        assert client._same_site(domain, httpx.URL(api))

    @pytest.mark.parametrize(
        ("domain", "api"),
        [
            ("localhost:8001", "http://127.0.0.1:8000"),
            ("adledger.example", "http://127.0.0.1:8000"),
            ("api.adledger.example", "https://api.adledger.example.evil.example"),
            ("api.adledger.example:8443", "https://api.adledger.example"),
            ("user@api.adledger.example", "https://api.adledger.example"),
            ("api.adledger.example/path", "https://api.adledger.example"),
        ],
    )
    def test_another_site(self, domain: str, api: str):
        assert not client._same_site(domain, httpx.URL(api))
