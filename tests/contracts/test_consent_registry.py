"""ConsentRegistry: grants and revocations per purpose, expiry, views, and the relayed (signed) paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger import typed_data
from ledger.chain import DevAccounts
from ledger.contracts import events, read, transact
from ledger.errors import (
    ConsentExpiredSignature,
    ConsentInvalidBrand,
    ConsentInvalidExpiry,
    ConsentInvalidPurposes,
    ConsentInvalidSigner,
)
from ledger.model import ALL_PURPOSES, Purpose
from ledger.suite import Suite
from tests.contracts.helpers import DAY, block_time, next_timestamp, reverts
from tests.contracts.signed_behavior import SignedAction, SignedActionBehavior

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
UINT32_MAX = 2**32 - 1
ADS, EMAIL, LOCATION, ANALYTICS = (int(p) for p in (Purpose.ADS, Purpose.EMAIL, Purpose.LOCATION, Purpose.ANALYTICS))


@pytest.fixture
def brand(accounts: DevAccounts) -> str:
    return accounts.marketer.address


def grant(suite: Suite, consumer: LocalAccount, brand: str, purposes: int, expires_at: int) -> TxReceipt:
    return transact(suite.chain, consumer, suite.registry.functions.grant(brand, purposes, expires_at))


def revoke(suite: Suite, consumer: LocalAccount, brand: str, purposes: int) -> TxReceipt:
    return transact(suite.chain, consumer, suite.registry.functions.revoke(brand, purposes))


def has_consent(suite: Suite, consumer: str, brand: str, purposes: int, at: int) -> bool:
    return bool(read(suite.registry.functions.hasConsent(consumer, brand, purposes, at)))


def consent_of(suite: Suite, consumer: str, brand: str) -> tuple[int, int, list[int]]:
    purposes, expires_at, granted_at = read(suite.registry.functions.consentOf(consumer, brand))
    return int(purposes), int(expires_at), [int(t) for t in granted_at]


def granted(purposes: int, at: int) -> list[int]:
    """The expected ``grantedAt`` array: ``at`` for each purpose bit in ``purposes``, zero elsewhere."""
    return [at if purposes & (1 << i) else 0 for i in range(6)]


# --------------------------------------------------------------------------------------------------------
# grant
# --------------------------------------------------------------------------------------------------------


class TestGrant:
    def test_grant_emits_consent_granted_with_the_added_and_all_purposes(self, suite, consumer, brand):
        expires = suite.chain.latest_timestamp() + 30 * DAY
        first = grant(suite, consumer, brand, ADS, expires)
        second = grant(suite, consumer, brand, EMAIL | ADS, expires + DAY)
        assert events(suite.registry, "ConsentGranted", first) == [
            {"consumer": consumer.address, "brand": brand, "purposes": ADS, "allPurposes": ADS, "expiresAt": expires}
        ]
        assert events(suite.registry, "ConsentGranted", second) == [
            {
                "consumer": consumer.address,
                "brand": brand,
                "purposes": EMAIL | ADS,
                "allPurposes": ADS | EMAIL,
                "expiresAt": expires + DAY,
            }
        ]

    def test_grant_is_readable_through_every_view(self, suite, consumer, brand):
        expires = suite.chain.latest_timestamp() + 30 * DAY
        now = block_time(suite.chain, grant(suite, consumer, brand, ADS | LOCATION, expires))
        assert consent_of(suite, consumer.address, brand) == (ADS | LOCATION, expires, granted(ADS | LOCATION, now))
        # the packed word of IConsentRegistry: purposes | expiresAt << 8 | grantedAt[i] << (64 + 32 i)
        packed = (ADS | LOCATION) | expires << 8 | now << 64 | now << (64 + 32 * 2)
        assert read(suite.registry.functions.consentRecord(consumer.address, brand)) == packed
        assert has_consent(suite, consumer.address, brand, ADS, now)
        assert has_consent(suite, consumer.address, brand, ADS | LOCATION, now)
        assert not has_consent(suite, consumer.address, brand, EMAIL, now)
        assert not has_consent(suite, consumer.address, brand, ADS | EMAIL, now)

    def test_consent_is_held_per_consumer_and_per_brand(self, suite, consumer, brand, accounts):
        other_consumer, other_brand = accounts.consumers[1].address, accounts.attester.address
        now = block_time(suite.chain, grant(suite, consumer, brand, ADS, suite.chain.latest_timestamp() + DAY))
        assert has_consent(suite, consumer.address, brand, ADS, now)
        assert not has_consent(suite, consumer.address, other_brand, ADS, now)
        assert not has_consent(suite, other_consumer, brand, ADS, now)
        assert consent_of(suite, other_consumer, brand) == (0, 0, [0] * 6)

    def test_registry_accepts_all_six_purposes_at_once(self, suite, consumer, brand):
        now = block_time(suite.chain, grant(suite, consumer, brand, 0x3F, suite.chain.latest_timestamp() + DAY))
        assert consent_of(suite, consumer.address, brand)[2] == [now] * 6
        assert has_consent(suite, consumer.address, brand, int(ALL_PURPOSES), now)

    def test_a_purpose_already_active_keeps_its_original_grant_time(self, suite, consumer, brand):
        chain = suite.chain
        expires = chain.latest_timestamp() + 30 * DAY
        first = block_time(chain, grant(suite, consumer, brand, ADS, expires))
        chain.increase_time(DAY)
        later = block_time(chain, grant(suite, consumer, brand, ADS | EMAIL, expires + DAY))
        assert later > first
        assert consent_of(suite, consumer.address, brand) == (ADS | EMAIL, expires + DAY, [first, later, 0, 0, 0, 0])
        assert has_consent(suite, consumer.address, brand, ADS, first)
        assert not has_consent(suite, consumer.address, brand, EMAIL, first)
        assert not has_consent(suite, consumer.address, brand, ADS | EMAIL, later - 1)
        assert has_consent(suite, consumer.address, brand, ADS | EMAIL, later)

    def test_grant_sets_the_expiry_of_the_whole_record(self, suite, consumer, brand):
        start = suite.chain.latest_timestamp()
        grant(suite, consumer, brand, ADS, start + 30 * DAY)
        grant(suite, consumer, brand, EMAIL, start + 10 * DAY)
        assert consent_of(suite, consumer.address, brand)[1] == start + 10 * DAY
        assert not has_consent(suite, consumer.address, brand, ADS, start + 10 * DAY)

    def test_regrant_after_expiry_does_not_revive_lapsed_purposes(self, suite, consumer, brand):
        chain = suite.chain
        lapsed = block_time(chain, grant(suite, consumer, brand, ADS | EMAIL, chain.latest_timestamp() + DAY))
        chain.increase_time(2 * DAY)
        expires = chain.latest_timestamp() + 30 * DAY
        receipt = grant(suite, consumer, brand, ANALYTICS, expires)
        now = block_time(chain, receipt)
        (event,) = events(suite.registry, "ConsentGranted", receipt)
        assert event["allPurposes"] == ANALYTICS
        assert consent_of(suite, consumer.address, brand) == (ANALYTICS, expires, granted(ANALYTICS, now))
        assert not has_consent(suite, consumer.address, brand, ADS, now)
        assert not has_consent(suite, consumer.address, brand, EMAIL, lapsed + 1)

    def test_regrant_after_expiry_restarts_the_grant_time_of_a_purpose_granted_again(self, suite, consumer, brand):
        chain = suite.chain
        lapsed = block_time(chain, grant(suite, consumer, brand, ADS, chain.latest_timestamp() + DAY))
        chain.increase_time(2 * DAY)
        now = block_time(chain, grant(suite, consumer, brand, ADS, chain.latest_timestamp() + 30 * DAY))
        assert consent_of(suite, consumer.address, brand)[2] == granted(ADS, now)
        # an engagement from the lapsed grant's time does not qualify under the new grant
        assert not has_consent(suite, consumer.address, brand, ADS, lapsed)
        assert has_consent(suite, consumer.address, brand, ADS, now)

    def test_grant_accepts_an_expiry_at_uint32_max(self, suite, consumer, brand):
        grant(suite, consumer, brand, ADS, UINT32_MAX)
        assert consent_of(suite, consumer.address, brand)[1] == UINT32_MAX
        assert has_consent(suite, consumer.address, brand, ADS, UINT32_MAX - 1)
        assert not has_consent(suite, consumer.address, brand, ADS, UINT32_MAX)


class TestGrantErrors:
    @pytest.mark.parametrize("purposes", [0, 0x40, 0x41, 0x100], ids=["empty", "bit-0x40", "ads-and-0x40", "bit-0x100"])
    def test_grant_reverts_on_invalid_purposes(self, suite, consumer, brand, purposes):
        with reverts(ConsentInvalidPurposes, purposes=purposes):
            grant(suite, consumer, brand, purposes, suite.chain.latest_timestamp() + DAY)

    def test_grant_reverts_on_an_expiry_in_the_past(self, suite, consumer, brand):
        past = suite.chain.latest_timestamp() - DAY
        with reverts(ConsentInvalidExpiry, expires_at=past, now=next_timestamp(suite.chain)):
            grant(suite, consumer, brand, ADS, past)

    def test_grant_reverts_on_an_expiry_equal_to_now(self, suite, consumer, brand):
        now = next_timestamp(suite.chain)
        with reverts(ConsentInvalidExpiry, expires_at=now, now=now):
            grant(suite, consumer, brand, ADS, now)

    def test_grant_reverts_on_an_expiry_beyond_uint32_max(self, suite, consumer, brand):
        with reverts(ConsentInvalidExpiry, expires_at=UINT32_MAX + 1, now=next_timestamp(suite.chain)):
            grant(suite, consumer, brand, ADS, UINT32_MAX + 1)

    def test_grant_reverts_on_the_zero_brand(self, suite, consumer):
        with reverts(ConsentInvalidBrand, brand=ZERO_ADDRESS):
            grant(suite, consumer, ZERO_ADDRESS, ADS, suite.chain.latest_timestamp() + DAY)

    def test_a_reverted_grant_leaves_no_record(self, suite, consumer, brand):
        with reverts(ConsentInvalidPurposes, purposes=0x40):
            grant(suite, consumer, brand, 0x40, suite.chain.latest_timestamp() + DAY)
        assert read(suite.registry.functions.consentRecord(consumer.address, brand)) == 0


# --------------------------------------------------------------------------------------------------------
# revoke
# --------------------------------------------------------------------------------------------------------


class TestRevoke:
    def test_revoke_takes_effect_immediately_and_emits_consent_revoked(self, suite, consumer, brand):
        chain = suite.chain
        now = block_time(chain, grant(suite, consumer, brand, ADS | EMAIL, chain.latest_timestamp() + 30 * DAY))
        receipt = revoke(suite, consumer, brand, ADS)
        assert events(suite.registry, "ConsentRevoked", receipt) == [
            {"consumer": consumer.address, "brand": brand, "purposes": ADS, "allPurposes": EMAIL}
        ]
        # not only from now on: no time is covered any more, not even the original grant's
        assert not has_consent(suite, consumer.address, brand, ADS, now)
        assert not has_consent(suite, consumer.address, brand, ADS, block_time(chain, receipt))

    def test_revoking_one_purpose_keeps_the_others_and_their_grant_times(self, suite, consumer, brand):
        chain = suite.chain
        expires = chain.latest_timestamp() + 30 * DAY
        now = block_time(chain, grant(suite, consumer, brand, ADS | EMAIL | LOCATION, expires))
        chain.increase_time(DAY)
        revoke(suite, consumer, brand, EMAIL)
        assert consent_of(suite, consumer.address, brand) == (ADS | LOCATION, expires, granted(ADS | LOCATION, now))
        assert has_consent(suite, consumer.address, brand, ADS | LOCATION, now)
        assert not has_consent(suite, consumer.address, brand, EMAIL, now)

    def test_revoking_every_purpose_leaves_no_consent(self, suite, consumer, brand):
        now = block_time(suite.chain, grant(suite, consumer, brand, ADS | EMAIL, suite.chain.latest_timestamp() + DAY))
        receipt = revoke(suite, consumer, brand, ADS | EMAIL)
        (event,) = events(suite.registry, "ConsentRevoked", receipt)
        assert event["allPurposes"] == 0
        assert consent_of(suite, consumer.address, brand)[0] == 0
        assert not has_consent(suite, consumer.address, brand, ADS, now)

    def test_a_revoked_purpose_granted_again_counts_from_the_new_grant(self, suite, consumer, brand):
        chain = suite.chain
        expires = chain.latest_timestamp() + 30 * DAY
        first = block_time(chain, grant(suite, consumer, brand, ADS, expires))
        revoke(suite, consumer, brand, ADS)
        chain.increase_time(DAY)
        again = block_time(chain, grant(suite, consumer, brand, ADS, expires))
        assert consent_of(suite, consumer.address, brand)[2] == granted(ADS, again)
        assert not has_consent(suite, consumer.address, brand, ADS, first)
        assert has_consent(suite, consumer.address, brand, ADS, again)

    @pytest.mark.parametrize("purposes", [0, 0x40], ids=["empty", "bit-0x40"])
    def test_revoke_reverts_on_invalid_purposes(self, suite, consumer, brand, purposes):
        with reverts(ConsentInvalidPurposes, purposes=purposes):
            revoke(suite, consumer, brand, purposes)


# --------------------------------------------------------------------------------------------------------
# hasConsent
# --------------------------------------------------------------------------------------------------------


class TestHasConsent:
    def test_has_consent_is_false_at_and_after_expires_at(self, suite, consumer, brand):
        expires = suite.chain.latest_timestamp() + DAY
        grant(suite, consumer, brand, ADS, expires)
        assert has_consent(suite, consumer.address, brand, ADS, expires - 1)
        assert not has_consent(suite, consumer.address, brand, ADS, expires)
        assert not has_consent(suite, consumer.address, brand, ADS, expires + 1)

    def test_has_consent_is_false_once_the_chain_passes_the_expiry(self, suite, consumer, brand):
        chain = suite.chain
        expires = chain.latest_timestamp() + DAY
        grant(suite, consumer, brand, ADS, expires)
        now = chain.increase_time(DAY + 1)
        assert now >= expires
        assert not has_consent(suite, consumer.address, brand, ADS, now)

    def test_has_consent_before_the_grant_time_is_false(self, suite, consumer, brand):
        now = block_time(suite.chain, grant(suite, consumer, brand, ADS, suite.chain.latest_timestamp() + DAY))
        assert not has_consent(suite, consumer.address, brand, ADS, now - 1)
        assert has_consent(suite, consumer.address, brand, ADS, now)

    def test_has_consent_for_no_purposes_is_false(self, suite, consumer, brand):
        now = block_time(suite.chain, grant(suite, consumer, brand, 0x3F, suite.chain.latest_timestamp() + DAY))
        assert not has_consent(suite, consumer.address, brand, 0, now)


# --------------------------------------------------------------------------------------------------------
# grantBySig / revokeBySig
# --------------------------------------------------------------------------------------------------------


def nonce_of(suite: Suite, account: str) -> int:
    return int(suite.registry.functions.nonces(account).call())


def relay_grant(
    suite: Suite,
    relayer: LocalAccount,
    consumer: str,
    brand: str,
    purposes: int,
    expires_at: int,
    deadline: int,
    signature: bytes,
) -> TxReceipt:
    call = suite.registry.functions.grantBySig(consumer, brand, purposes, expires_at, deadline, signature)
    return transact(suite.chain, relayer, call)


def relay_revoke(
    suite: Suite, relayer: LocalAccount, consumer: str, brand: str, purposes: int, deadline: int, signature: bytes
) -> TxReceipt:
    call = suite.registry.functions.revokeBySig(consumer, brand, purposes, deadline, signature)
    return transact(suite.chain, relayer, call)


class TestGrantBySig:
    def test_grant_by_sig_relayed_by_another_account_costs_the_consumer_no_gas(self, suite, consumer, relayer, brand):
        chain = suite.chain
        expires, deadline = chain.latest_timestamp() + 30 * DAY, chain.latest_timestamp() + 3600
        signature = suite.sign_grant(consumer, brand, ADS | EMAIL, expires, deadline)
        consumer_eth, relayer_eth = chain.balance(consumer.address), chain.balance(relayer.address)
        receipt = relay_grant(suite, relayer, consumer.address, brand, ADS | EMAIL, expires, deadline, signature)
        assert chain.balance(consumer.address) == consumer_eth
        assert chain.balance(relayer.address) < relayer_eth
        assert events(suite.registry, "ConsentGranted", receipt) == [
            {
                "consumer": consumer.address,
                "brand": brand,
                "purposes": ADS | EMAIL,
                "allPurposes": ADS | EMAIL,
                "expiresAt": expires,
            }
        ]
        now = block_time(chain, receipt)
        assert consent_of(suite, consumer.address, brand) == (ADS | EMAIL, expires, granted(ADS | EMAIL, now))
        assert nonce_of(suite, consumer.address) == 1

    def test_grant_by_sig_checks_the_grant_rules_too(self, suite, consumer, relayer, brand):
        deadline = suite.chain.latest_timestamp() + 3600
        expires = UINT32_MAX + 1
        signature = suite.sign_grant(consumer, brand, ADS, expires, deadline)
        with reverts(ConsentInvalidExpiry, expires_at=expires):
            relay_grant(suite, relayer, consumer.address, brand, ADS, expires, deadline, signature)

    def test_grant_by_sig_reverts_when_the_relayer_changes_the_signed_purposes(self, suite, consumer, relayer, brand):
        deadline = suite.chain.latest_timestamp() + 3600
        expires = deadline + DAY
        signature = suite.sign_grant(consumer, brand, ADS, expires, deadline)
        with reverts(ConsentInvalidSigner, consumer=consumer.address):
            relay_grant(suite, relayer, consumer.address, brand, ADS | LOCATION, expires, deadline, signature)


class TestRevokeBySig:
    def test_revoke_by_sig_relayed_by_another_account_costs_the_consumer_no_gas(self, suite, consumer, relayer, brand):
        chain = suite.chain
        grant(suite, consumer, brand, ADS | EMAIL, chain.latest_timestamp() + 30 * DAY)
        deadline = chain.latest_timestamp() + 3600
        signature = suite.sign_revoke(consumer, brand, EMAIL, deadline)
        consumer_eth = chain.balance(consumer.address)
        receipt = relay_revoke(suite, relayer, consumer.address, brand, EMAIL, deadline, signature)
        assert chain.balance(consumer.address) == consumer_eth
        assert events(suite.registry, "ConsentRevoked", receipt) == [
            {"consumer": consumer.address, "brand": brand, "purposes": EMAIL, "allPurposes": ADS}
        ]
        assert consent_of(suite, consumer.address, brand)[0] == ADS
        assert nonce_of(suite, consumer.address) == 1


# --------------------------------------------------------------------------------------------------------
# Signature binding of the two signed actions: the shared checks of tests/contracts/signed_behavior.py (deadline,
# replay, wrong signer, chain id, contract, domain name or version, malleated s).
# --------------------------------------------------------------------------------------------------------


def registry_signed_action(
    suite: Suite,
    consumer: LocalAccount,
    primary: str,
    message: Callable[[int, int], dict[str, Any]],
    relay: Callable[[bytes, int], TxReceipt],
) -> SignedAction:
    """A registry action signed by ``consumer``: ``message(nonce, deadline)`` builds what they sign."""

    def sign(signer: LocalAccount, domain: typed_data.Domain, deadline: int) -> bytes:
        return typed_data.sign(signer, domain, primary, message(nonce_of(suite, consumer.address), deadline))

    return SignedAction(
        owner=consumer,
        domain=suite.registry_domain,
        sign=sign,
        relay=relay,
        nonce=lambda: nonce_of(suite, consumer.address),
        expired_error=ConsentExpiredSignature,
        invalid_signer_error=ConsentInvalidSigner,
        invalid_signer_field="consumer",
    )


class TestGrantBySigSignature(SignedActionBehavior):
    @pytest.fixture
    def signed_action(self, suite, consumer, relayer, brand) -> SignedAction:
        expires = suite.chain.latest_timestamp() + 30 * DAY
        return registry_signed_action(
            suite,
            consumer,
            "Grant",
            lambda nonce, deadline: typed_data.grant_message(consumer.address, brand, ADS, expires, nonce, deadline),
            lambda signature, deadline: relay_grant(
                suite, relayer, consumer.address, brand, ADS, expires, deadline, signature
            ),
        )


class TestRevokeBySigSignature(SignedActionBehavior):
    @pytest.fixture
    def signed_action(self, suite, consumer, relayer, brand) -> SignedAction:
        grant(suite, consumer, brand, ADS, suite.chain.latest_timestamp() + 30 * DAY)
        return registry_signed_action(
            suite,
            consumer,
            "Revoke",
            lambda nonce, deadline: typed_data.revoke_message(consumer.address, brand, ADS, nonce, deadline),
            lambda signature, deadline: relay_revoke(suite, relayer, consumer.address, brand, ADS, deadline, signature),
        )
