"""ledger.gasless on eth-tester: signatures checked off chain, simulated, relayed from the relayer account."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.chain import connect
from ledger.errors import EscrowNothingToClaim, InvalidActionSignature, SignatureExpired
from ledger.gasless import GaslessRelay
from ledger.model import Purpose
from ledger.settings import Settings
from ledger.suite import Suite

DAY = 86_400
ADS = int(Purpose.ADS)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    with connect(Settings(chain="eth-tester", data_dir=tmp_path_factory.mktemp("gasless"))) as chain:
        yield Suite.deploy(chain)


@pytest.fixture
def relay(suite: Suite) -> GaslessRelay:
    return GaslessRelay(suite.chain, suite.deployment)


class TestGrant:
    def test_relayed_grant_is_held_and_spends_the_nonce(self, suite: Suite, relay: GaslessRelay):
        consumer, brand = suite.chain.accounts.consumers[0], suite.chain.accounts.marketer.address
        expires, deadline = suite.chain.latest_timestamp() + DAY, suite.chain.latest_timestamp() + 3600
        nonce = relay.registry_nonce(consumer.address)
        signature = suite.sign_grant(consumer, brand, ADS, expires, deadline)
        relayed = relay.grant(consumer.address, brand, ADS, expires, deadline, signature)
        assert (relayed.nonce, relayed.relayer) == (nonce, suite.chain.accounts.relayer.address)
        assert relay.registry_nonce(consumer.address) == nonce + 1
        purposes, expires_at, _ = suite.registry.functions.consentOf(consumer.address, brand).call()
        assert (purposes, expires_at) == (ADS, expires)

    def test_signature_of_another_wallet_is_refused_before_sending(self, suite: Suite, relay: GaslessRelay):
        consumer, other = suite.chain.accounts.consumers[1], suite.chain.accounts.consumers[2]
        brand, deadline = suite.chain.accounts.marketer.address, suite.chain.latest_timestamp() + 3600
        sent = suite.chain.w3.eth.get_transaction_count(relay.relayer.address)
        signature = suite.sign_grant(other, brand, ADS, deadline + DAY, deadline)
        with pytest.raises(InvalidActionSignature) as info:
            relay.grant(consumer.address, brand, ADS, deadline + DAY, deadline, signature)
        assert info.value.wallet == consumer.address
        assert suite.chain.w3.eth.get_transaction_count(relay.relayer.address) == sent

    def test_past_deadline_is_expired(self, suite: Suite, relay: GaslessRelay):
        consumer, brand = suite.chain.accounts.consumers[1], suite.chain.accounts.marketer.address
        signature = suite.sign_grant(consumer, brand, ADS, 2**32, 100)
        with pytest.raises(SignatureExpired) as info:
            relay.grant(consumer.address, brand, ADS, 2**32, 100, signature, now=101)
        assert (info.value.deadline, info.value.now) == (100, 101)

    def test_short_signature_is_invalid(self, suite: Suite, relay: GaslessRelay):
        consumer, brand = suite.chain.accounts.consumers[1], suite.chain.accounts.marketer.address
        with pytest.raises(InvalidActionSignature, match="has 64 bytes"):
            relay.grant(consumer.address, brand, ADS, 2**32, 2**40, bytes(64))


class TestClaim:
    def test_nothing_to_claim_is_refused_by_the_simulation(self, suite: Suite, relay: GaslessRelay):
        consumer = suite.chain.accounts.consumers[3]
        deadline = suite.chain.latest_timestamp() + 3600
        sent = suite.chain.w3.eth.get_transaction_count(relay.relayer.address)
        signature = suite.sign_claim(consumer, [0], consumer.address, deadline)
        with pytest.raises(EscrowNothingToClaim):
            relay.claim(consumer.address, [0], consumer.address, deadline, signature)
        assert suite.chain.w3.eth.get_transaction_count(relay.relayer.address) == sent
