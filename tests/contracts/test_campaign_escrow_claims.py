"""CampaignEscrow claims: direct and relayed (gasless) claims, over one or several campaigns, and their refusals."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger import typed_data
from ledger.contracts import bind, deploy, events, read, transact
from ledger.errors import (
    EscrowExpiredSignature,
    EscrowInvalidRecipient,
    EscrowInvalidSigner,
    EscrowNothingToClaim,
)
from ledger.model import Action, RejectReason
from ledger.suite import Suite
from tests.contracts.helpers import DAY, REWARDS, TOKEN, CampaignFactory, reverts
from tests.contracts.signed_behavior import SignedAction, SignedActionBehavior

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
EARNED = REWARDS[Action.INSTALL] + REWARDS[Action.AD_CLICK]


def claim(suite: Suite, consumer: LocalAccount, campaign_ids: list[int], to: str | None = None) -> TxReceipt:
    to = consumer.address if to is None else to
    return transact(suite.chain, consumer, suite.escrow.functions.claim(campaign_ids, to))


def claim_result(suite: Suite, consumer: LocalAccount, campaign_ids: list[int]) -> int:
    """What ``claim`` returns, read without sending it."""
    return int(read(suite.escrow.functions.claim(campaign_ids, consumer.address), **{"from": consumer.address}))


def relay_claim(
    suite: Suite,
    relayer: LocalAccount,
    consumer: str,
    campaign_ids: list[int],
    to: str,
    deadline: int,
    signature: bytes,
) -> TxReceipt:
    call = suite.escrow.functions.claimBySig(consumer, campaign_ids, to, deadline, signature)
    return transact(suite.chain, relayer, call)


def escrow_nonce(suite: Suite, account: str) -> int:
    return int(suite.escrow.functions.nonces(account).call())


def earn(campaigns: CampaignFactory, campaign_id: int, consumer: LocalAccount, *actions: Action) -> None:
    receipt = campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, a) for a in actions])
    assert campaigns.rejected(receipt) == {}


@pytest.fixture
def campaign_id(campaigns: CampaignFactory, consumer: LocalAccount) -> int:
    """A campaign where the consumer has earned EARNED (an install and an ad click), unclaimed."""
    campaign_id = campaigns.create()
    campaigns.consent(consumer)
    earn(campaigns, campaign_id, consumer, Action.INSTALL, Action.AD_CLICK)
    return campaign_id


class TestClaim:
    def test_claim_pays_the_accrued_rewards_to_the_caller(self, suite, campaign_id, consumer):
        consumer_before, escrow_before = suite.balance(consumer.address), suite.balance(suite.escrow.address)
        assert claim_result(suite, consumer, [campaign_id]) == EARNED
        receipt = claim(suite, consumer, [campaign_id])
        assert events(suite.escrow, "Claimed", receipt) == [
            {"campaignId": campaign_id, "consumer": consumer.address, "to": consumer.address, "amount": EARNED}
        ]
        assert suite.balance(consumer.address) == consumer_before + EARNED
        assert suite.balance(suite.escrow.address) == escrow_before - EARNED
        assert suite.accrued(campaign_id, consumer.address) == 0
        assert suite.campaign_state(campaign_id).owed == 0

    def test_claim_to_another_address_pays_that_address(self, suite, campaign_id, consumer, accounts):
        recipient = accounts.consumers[4].address
        consumer_before, recipient_before = suite.balance(consumer.address), suite.balance(recipient)
        receipt = claim(suite, consumer, [campaign_id], to=recipient)
        assert events(suite.escrow, "Claimed", receipt)[0]["to"] == recipient
        assert suite.balance(recipient) == recipient_before + EARNED
        assert suite.balance(consumer.address) == consumer_before

    def test_claim_leaves_the_counters_so_account_of_shows_them_with_nothing_accrued(
        self, suite, campaigns, campaign_id, consumer
    ):
        earn(campaigns, campaign_id, consumer, Action.DAILY_OPEN)
        _, day_before, lifetime_before, daily_before = read(
            suite.escrow.functions.accountOf(campaign_id, consumer.address)
        )
        claim(suite, consumer, [campaign_id])
        accrued, day, lifetime, daily = read(suite.escrow.functions.accountOf(campaign_id, consumer.address))
        assert accrued == 0
        assert (day, list(lifetime), list(daily)) == (day_before, list(lifetime_before), list(daily_before))
        assert lifetime[Action.INSTALL] == lifetime[Action.AD_CLICK] == lifetime[Action.DAILY_OPEN] == 1

    def test_caps_still_hold_after_a_claim(self, suite, campaigns, campaign_id, consumer):
        claim(suite, consumer, [campaign_id])
        again = campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)
        receipt = campaigns.settle(campaign_id, [again])
        assert campaigns.rejected(receipt) == {again.event_id: RejectReason.LIFETIME_CAP_REACHED}

    def test_rewards_accrued_after_a_claim_can_be_claimed_in_turn(self, suite, campaigns, campaign_id, consumer):
        claim(suite, consumer, [campaign_id])
        earn(campaigns, campaign_id, consumer, Action.AD_VIEW)
        assert claim_result(suite, consumer, [campaign_id]) == REWARDS[Action.AD_VIEW]

    def test_claim_reverts_the_second_time(self, suite, campaign_id, consumer):
        claim(suite, consumer, [campaign_id])
        with reverts(EscrowNothingToClaim, consumer=consumer.address):
            claim(suite, consumer, [campaign_id])

    def test_claim_reverts_when_nothing_was_earned(self, suite, campaign_id, accounts):
        idle = accounts.consumers[1]
        with reverts(EscrowNothingToClaim, consumer=idle.address):
            claim(suite, idle, [campaign_id])

    def test_claim_of_no_campaigns_reverts_nothing_to_claim(self, suite, consumer):
        with reverts(EscrowNothingToClaim, consumer=consumer.address):
            claim(suite, consumer, [])

    def test_zero_reward_engagements_leave_nothing_to_claim(self, suite, campaigns, consumer):
        campaign_id = campaigns.create()
        campaigns.consent(consumer)
        earn(campaigns, campaign_id, consumer, Action.EMAIL_OPEN)
        with reverts(EscrowNothingToClaim, consumer=consumer.address):
            claim(suite, consumer, [campaign_id])

    def test_claim_reverts_on_the_zero_recipient(self, suite, campaign_id, consumer):
        with reverts(EscrowInvalidRecipient, to=ZERO_ADDRESS):
            claim(suite, consumer, [campaign_id], to=ZERO_ADDRESS)
        assert suite.accrued(campaign_id, consumer.address) == EARNED

    def test_claim_after_the_campaign_closed_pays_what_was_accrued(self, suite, campaigns, consumer, marketer):
        campaign_id = campaigns.create(ends_at=suite.chain.latest_timestamp() + DAY)
        campaigns.consent(consumer)
        earn(campaigns, campaign_id, consumer, Action.INSTALL)
        suite.chain.increase_time(DAY + 1)
        transact(suite.chain, marketer, suite.escrow.functions.close(campaign_id))
        before = suite.balance(consumer.address)
        claim(suite, consumer, [campaign_id])
        assert suite.balance(consumer.address) == before + REWARDS[Action.INSTALL]


class TestClaimSeveralCampaigns:
    def test_claim_from_several_campaigns_pays_the_total_with_one_claimed_event_each(
        self, suite, campaigns, campaign_id, consumer
    ):
        second = campaigns.create()
        earn(campaigns, second, consumer, Action.LOCATION_OPT_IN)
        before = suite.balance(consumer.address)
        assert claim_result(suite, consumer, [campaign_id, second]) == EARNED + REWARDS[Action.LOCATION_OPT_IN]
        receipt = claim(suite, consumer, [campaign_id, second])
        assert [(e["campaignId"], e["amount"]) for e in events(suite.escrow, "Claimed", receipt)] == [
            (campaign_id, EARNED),
            (second, REWARDS[Action.LOCATION_OPT_IN]),
        ]
        assert suite.balance(consumer.address) == before + EARNED + REWARDS[Action.LOCATION_OPT_IN]
        assert suite.campaign_state(campaign_id).owed == suite.campaign_state(second).owed == 0

    def test_claim_skips_campaigns_with_nothing_accrued_and_unknown_ones(self, suite, campaigns, campaign_id, consumer):
        empty = campaigns.create()
        receipt = claim(suite, consumer, [empty, campaign_id, 999])
        assert [e["campaignId"] for e in events(suite.escrow, "Claimed", receipt)] == [campaign_id]

    def test_a_campaign_listed_twice_is_paid_once(self, suite, campaign_id, consumer):
        before = suite.balance(consumer.address)
        receipt = claim(suite, consumer, [campaign_id, campaign_id])
        assert len(events(suite.escrow, "Claimed", receipt)) == 1
        assert suite.balance(consumer.address) == before + EARNED

    def test_each_campaign_pays_in_its_own_token(self, suite, campaigns, campaign_id, consumer, marketer):
        other, _ = deploy(suite.chain, marketer, "RewardToken", "Other Reward", "OTH", marketer.address, 10**6 * TOKEN)
        transact(suite.chain, marketer, other.functions.approve(suite.escrow.address, 100 * TOKEN))
        second = campaigns.create(token=other.address, budget=100 * TOKEN)
        earn(campaigns, second, consumer, Action.AD_VIEW)
        before = suite.balance(consumer.address)
        claim(suite, consumer, [campaign_id, second])
        assert suite.balance(consumer.address) == before + EARNED
        assert (
            bind(suite.chain, "RewardToken", other.address).functions.balanceOf(consumer.address).call()
            == (REWARDS[Action.AD_VIEW])
        )


class TestClaimBySig:
    def test_claim_by_sig_relayed_is_gasless_for_the_consumer(self, suite, campaign_id, consumer, relayer, accounts):
        recipient = accounts.consumers[4].address
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_claim(consumer, [campaign_id], recipient, deadline)
        consumer_eth, recipient_before = suite.chain.balance(consumer.address), suite.balance(recipient)
        receipt = relay_claim(suite, relayer, consumer.address, [campaign_id], recipient, deadline, signature)
        assert suite.chain.balance(consumer.address) == consumer_eth
        assert suite.balance(recipient) == recipient_before + EARNED
        assert events(suite.escrow, "Claimed", receipt) == [
            {"campaignId": campaign_id, "consumer": consumer.address, "to": recipient, "amount": EARNED}
        ]
        assert escrow_nonce(suite, consumer.address) == 1

    def test_claim_by_sig_reverts_when_the_relayer_changes_the_recipient(self, suite, campaign_id, consumer, relayer):
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_claim(consumer, [campaign_id], consumer.address, deadline)
        with reverts(EscrowInvalidSigner, expected=consumer.address):
            relay_claim(suite, relayer, consumer.address, [campaign_id], relayer.address, deadline, signature)

    def test_claim_by_sig_reverts_when_the_relayer_changes_the_campaigns(
        self, suite, campaigns, campaign_id, consumer, relayer
    ):
        second = campaigns.create()
        earn(campaigns, second, consumer, Action.AD_VIEW)
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_claim(consumer, [campaign_id], consumer.address, deadline)
        with reverts(EscrowInvalidSigner, expected=consumer.address):
            relay_claim(suite, relayer, consumer.address, [campaign_id, second], consumer.address, deadline, signature)

    def test_claim_by_sig_applies_the_claim_rules_and_keeps_the_nonce_on_refusal(
        self, suite, campaign_id, consumer, relayer
    ):
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_claim(consumer, [campaign_id], ZERO_ADDRESS, deadline)
        with reverts(EscrowInvalidRecipient, to=ZERO_ADDRESS):
            relay_claim(suite, relayer, consumer.address, [campaign_id], ZERO_ADDRESS, deadline, signature)
        assert escrow_nonce(suite, consumer.address) == 0

    def test_claim_by_sig_with_nothing_accrued_reverts_nothing_to_claim(self, suite, campaign_id, relayer, accounts):
        idle = accounts.consumers[1]
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_claim(idle, [campaign_id], idle.address, deadline)
        with reverts(EscrowNothingToClaim, consumer=idle.address):
            relay_claim(suite, relayer, idle.address, [campaign_id], idle.address, deadline, signature)


class TestClaimBySigSignature(SignedActionBehavior):
    @pytest.fixture
    def signed_action(self, suite, campaign_id, consumer, relayer) -> SignedAction:
        def sign(signer: LocalAccount, domain: typed_data.Domain, deadline: int) -> bytes:
            nonce = escrow_nonce(suite, consumer.address)
            message = typed_data.claim_message(consumer.address, [campaign_id], consumer.address, nonce, deadline)
            return typed_data.sign(signer, domain, "Claim", message)

        def relay(signature: bytes, deadline: int) -> TxReceipt:
            return relay_claim(suite, relayer, consumer.address, [campaign_id], consumer.address, deadline, signature)

        return SignedAction(
            owner=consumer,
            domain=suite.escrow_domain,
            sign=sign,
            relay=relay,
            nonce=lambda: escrow_nonce(suite, consumer.address),
            expired_error=EscrowExpiredSignature,
            invalid_signer_error=EscrowInvalidSigner,
            invalid_signer_field="expected",
        )
