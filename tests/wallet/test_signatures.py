"""Every signature a Wallet makes, accepted where it counts: the deployed contracts on eth-tester (Grant, Revoke and
Claim relayed through ledger.gasless as the API relays them, Permit by the token itself) and the CRM's link
verifier (no contract verifies a Link). The wallet signing is one stored in a keystore and loaded back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ledger import typed_data
from ledger.contracts import read, transact
from ledger.crm.links import link_wallet
from ledger.crm.repository import upsert_customer
from ledger.errors import ConsentInvalidSigner
from ledger.gasless import GaslessRelay
from ledger.model import Action, Purpose
from ledger.suite import Suite
from tests.contracts.conftest import campaign_id
from tests.contracts.helpers import DAY, TOKEN, CampaignFactory, reverts
from tests.wallet.conftest import ANVIL_MNEMONIC, FAST, PASSWORD
from wallet import Wallet

__all__ = ["campaign_id"]

ALL_PURPOSES = Purpose(0x3F)


def as_bytes(signature: str) -> bytes:
    return bytes.fromhex(signature.removeprefix("0x"))


@pytest.fixture
def wallet(wallet_dir: Path) -> Wallet:
    """A new consumer wallet, stored and loaded back: it holds no ether, so every action must be gasless."""
    created = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
    return Wallet.load(created.address, PASSWORD, wallet_dir)


@pytest.fixture
def relay(suite: Suite) -> GaslessRelay:
    return GaslessRelay(suite.chain, suite.deployment)


def token_domain(suite: Suite) -> typed_data.Domain:
    return typed_data.Domain(str(suite.token.functions.name().call()), suite.chain.chain_id, suite.token.address)


def grant(suite: Suite, relay: GaslessRelay, wallet: Wallet, brand: str, purposes: Purpose = ALL_PURPOSES) -> int:
    """The wallet's signed Grant, relayed; returns its expiry. (web3 takes a Purpose flag for an array: int() it.)"""
    expires_at, deadline = suite.chain.latest_timestamp() + 90 * DAY, suite.chain.latest_timestamp() + 3600
    nonce = relay.registry_nonce(wallet.address)
    signature = wallet.sign_consent(suite.registry_domain, brand, purposes, expires_at, nonce, deadline)
    relay.grant(wallet.address, brand, int(purposes), expires_at, deadline, as_bytes(signature))
    return expires_at


def consent_of(suite: Suite, consumer: str, brand: str) -> tuple[int, int]:
    purposes, expires_at, _ = read(suite.registry.functions.consentOf(consumer, brand))
    return int(purposes), int(expires_at)


class TestConsent:
    def test_a_signed_grant_is_relayed_and_held_on_chain(self, suite: Suite, relay: GaslessRelay, wallet: Wallet):
        brand = suite.chain.accounts.marketer.address
        expires_at = grant(suite, relay, wallet, brand, Purpose.ADS | Purpose.EMAIL)
        assert consent_of(suite, wallet.address, brand) == (int(Purpose.ADS | Purpose.EMAIL), expires_at)
        assert relay.registry_nonce(wallet.address) == 1
        assert suite.chain.balance(wallet.address) == 0  # the relayer paid the gas

    def test_a_signed_revoke_is_relayed_and_withdraws_the_purposes(
        self, suite: Suite, relay: GaslessRelay, wallet: Wallet
    ):
        brand = suite.chain.accounts.marketer.address
        expires_at = grant(suite, relay, wallet, brand, Purpose.ADS | Purpose.EMAIL)
        deadline = suite.chain.latest_timestamp() + 3600
        nonce = relay.registry_nonce(wallet.address)
        signature = wallet.sign_revoke(suite.registry_domain, brand, Purpose.EMAIL, nonce, deadline)
        relay.revoke(wallet.address, brand, int(Purpose.EMAIL), deadline, as_bytes(signature))
        assert consent_of(suite, wallet.address, brand) == (int(Purpose.ADS), expires_at)

    def test_the_registry_itself_accepts_the_grant_signature(self, suite: Suite, wallet: Wallet):
        # straight to grantBySig, past the relay's own checks: the contract's ECDSA verification alone
        brand, relayer = suite.chain.accounts.marketer.address, suite.chain.accounts.relayer
        expires_at, deadline = suite.chain.latest_timestamp() + DAY, suite.chain.latest_timestamp() + 3600
        signature = wallet.sign_consent(suite.registry_domain, brand, Purpose.ADS, expires_at, 0, deadline)
        call = suite.registry.functions.grantBySig(
            wallet.address, brand, int(Purpose.ADS), expires_at, deadline, as_bytes(signature)
        )
        transact(suite.chain, relayer, call)
        assert consent_of(suite, wallet.address, brand) == (int(Purpose.ADS), expires_at)

    def test_the_registry_refuses_a_grant_signed_for_another_nonce(self, suite: Suite, wallet: Wallet):
        brand, relayer = suite.chain.accounts.marketer.address, suite.chain.accounts.relayer
        expires_at, deadline = suite.chain.latest_timestamp() + DAY, suite.chain.latest_timestamp() + 3600
        signature = wallet.sign_consent(suite.registry_domain, brand, Purpose.ADS, expires_at, 1, deadline)
        call = suite.registry.functions.grantBySig(
            wallet.address, brand, int(Purpose.ADS), expires_at, deadline, as_bytes(signature)
        )
        with reverts(ConsentInvalidSigner, consumer=wallet.address):
            transact(suite.chain, relayer, call)


class TestClaim:
    def test_a_signed_claim_pays_the_accrued_reward_to_the_chosen_address(
        self, suite: Suite, relay: GaslessRelay, campaigns: CampaignFactory, campaign_id: int, wallet: Wallet
    ):
        grant(suite, relay, wallet, suite.chain.accounts.marketer.address)
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, wallet.address, Action.INSTALL)])
        assert relay.accrued(campaign_id, wallet.address) == TOKEN
        payee = Wallet.from_mnemonic(ANVIL_MNEMONIC, index=8).address
        deadline = suite.chain.latest_timestamp() + 3600
        nonce = relay.escrow_nonce(wallet.address)
        signature = wallet.sign_claim(suite.escrow_domain, [campaign_id], payee, nonce, deadline)
        relay.claim(wallet.address, [campaign_id], payee, deadline, as_bytes(signature))
        assert suite.balance(payee) == TOKEN
        assert relay.accrued(campaign_id, wallet.address) == 0


class TestPermit:
    def test_a_signed_permit_lets_the_spender_move_the_wallets_tokens(self, suite: Suite, wallet: Wallet):
        accounts = suite.chain.accounts
        suite.transfer(accounts.deployer, wallet.address, 5 * TOKEN)
        spender, friend = accounts.relayer, Wallet.from_mnemonic(ANVIL_MNEMONIC, index=7).address
        deadline = suite.chain.latest_timestamp() + 3600
        nonce = int(suite.token.functions.nonces(wallet.address).call())
        signature = wallet.sign_permit(token_domain(suite), spender.address, 2 * TOKEN, nonce, deadline)
        v, r, s = typed_data.split_signature(as_bytes(signature))
        transact(
            suite.chain,
            spender,
            suite.token.functions.permit(wallet.address, spender.address, 2 * TOKEN, deadline, v, r, s),
        )
        assert int(suite.token.functions.allowance(wallet.address, spender.address).call()) == 2 * TOKEN
        transact(suite.chain, spender, suite.token.functions.transferFrom(wallet.address, friend, 2 * TOKEN))
        assert (suite.balance(wallet.address), suite.balance(friend)) == (3 * TOKEN, 2 * TOKEN)


class TestLink:
    def test_a_signed_link_is_accepted_by_the_crm_in_the_registrys_domain(
        self, suite: Suite, session: Session, wallet: Wallet
    ):
        customer, _ = upsert_customer(session, email="ann@example.com", display_name="Ann")
        brand, deadline = suite.chain.accounts.marketer.address, suite.chain.latest_timestamp() + 3600
        signature = wallet.sign_link(suite.registry_domain, customer.id, brand, 2**200 + 3, deadline)
        link = link_wallet(
            session,
            customer_id=customer.id,
            brand=brand,
            wallet=wallet.address,
            nonce=2**200 + 3,
            deadline=deadline,
            signature=signature,  # the API's LinkIn carries it as 0x-hex, as the wallet returns it
            domain=suite.registry_domain,
        )
        session.commit()
        assert (link.customer_id, link.wallet, link.signature) == (customer.id, wallet.address.lower(), signature)


class TestSameBytesAsTheContractTests:
    """The contract tests sign through ledger.suite.Suite's helpers; the wallet's bytes are the same."""

    @pytest.fixture
    def consumer(self, suite: Suite) -> Wallet:
        wallet = Wallet.from_mnemonic(ANVIL_MNEMONIC, index=3)
        assert wallet.address == suite.chain.accounts.consumers[0].address
        return wallet

    def test_grant_revoke_claim_and_permit(self, suite: Suite, consumer: Wallet):
        account, brand, to = suite.chain.accounts.consumers[0], suite.chain.accounts.marketer.address, consumer.address
        expires_at, deadline = suite.chain.latest_timestamp() + DAY, suite.chain.latest_timestamp() + 3600
        registry_nonce = int(suite.registry.functions.nonces(consumer.address).call())
        escrow_nonce = int(suite.escrow.functions.nonces(consumer.address).call())
        token_nonce = int(suite.token.functions.nonces(consumer.address).call())
        pairs = [
            (
                consumer.sign_consent(suite.registry_domain, brand, 3, expires_at, registry_nonce, deadline),
                suite.sign_grant(account, brand, 3, expires_at, deadline),
            ),
            (
                consumer.sign_revoke(suite.registry_domain, brand, 1, registry_nonce, deadline),
                suite.sign_revoke(account, brand, 1, deadline),
            ),
            (
                consumer.sign_claim(suite.escrow_domain, [0, 1], to, escrow_nonce, deadline),
                suite.sign_claim(account, [0, 1], to, deadline),
            ),
            (
                consumer.sign_permit(token_domain(suite), suite.escrow.address, TOKEN, token_nonce, deadline),
                suite.permit_signature(account, suite.escrow.address, TOKEN, deadline),
            ),
        ]
        for ours, theirs in pairs:
            assert as_bytes(ours) == theirs
