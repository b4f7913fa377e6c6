"""CampaignEscrow against hostile tokens: a token that calls back into the escrow mid-transfer, and one that
delivers less than it is asked to (contracts/mocks/ReentrantToken.sol, FeeOnTransferToken.sol)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from ledger.contracts import decode_revert, deploy, read, transact
from ledger.errors import (
    EscrowTransferShortfall,
    ReentrancyGuardReentrantCall,
)
from ledger.model import Action, Purpose
from ledger.settlement.batch import encode_batch
from ledger.suite import Suite
from tests.contracts.helpers import DAY, REWARDS, TOKEN, CampaignFactory, reverts

SUPPLY = 10**6 * TOKEN
BUDGET = 100 * TOKEN


@pytest.fixture
def hostile(suite: Suite, marketer: LocalAccount) -> Contract:
    token, _ = deploy(suite.chain, marketer, "ReentrantToken", marketer.address, SUPPLY)
    transact(suite.chain, marketer, token.functions.approve(suite.escrow.address, SUPPLY))
    return token


@pytest.fixture
def campaign_id(suite: Suite, campaigns: CampaignFactory, hostile: Contract, consumer: LocalAccount) -> int:
    """A campaign paid in the hostile token, where the consumer has earned an install, unclaimed."""
    campaign_id = campaigns.create(token=hostile.address, budget=BUDGET, ends_at=suite.chain.latest_timestamp() + DAY)
    campaigns.consent(consumer)
    campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)])
    return campaign_id


def arm(suite: Suite, hostile: Contract, function: str, *args: object) -> None:
    """The hostile token's next transfer touching the escrow calls ``escrow.function(*args)``."""
    data = suite.escrow.encode_abi(function, args=list(args))
    call = hostile.functions.arm(suite.escrow.address, suite.escrow.address, data)
    transact(suite.chain, suite.chain.accounts.deployer, call)


def reentry_error(hostile: Contract) -> Exception:
    """The error the reentered call reverted with, after checking the reentry was attempted and refused."""
    assert read(hostile.functions.attempted()), "the token never called back"
    assert not read(hostile.functions.reentrySucceeded()), "the reentered call succeeded"
    return decode_revert(bytes(read(hostile.functions.reentryResult())))


def settle_call(suite: Suite, campaigns: CampaignFactory, campaign_id: int, consumer: str) -> bytes:
    return encode_batch([campaigns.engagement(campaign_id, consumer, Action.AD_VIEW)])


@pytest.fixture
def hostile_is_attester(suite: Suite, hostile: Contract, marketer: LocalAccount, campaign_id: int) -> None:
    """The token may settle on its own, so only the reentrancy guard can refuse its reentered settle."""
    transact(suite.chain, marketer, suite.escrow.functions.addAttester(campaign_id, hostile.address))


class TestReentrancy:
    def test_a_token_reentering_claim_during_a_payout_is_refused_and_the_payout_completes(
        self, suite, campaigns, campaign_id, hostile, consumer
    ):
        # the token has rewards of its own, so without the guard its reentered claim would pay out
        brand, expires = suite.chain.accounts.marketer.address, suite.chain.latest_timestamp() + 30 * DAY
        grant = suite.registry.encode_abi("grant", args=[brand, int(Purpose.ADS), expires])
        transact(suite.chain, consumer, hostile.functions.execute(suite.registry.address, grant))
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, hostile.address, Action.AD_VIEW)])
        arm(suite, hostile, "claim", [campaign_id], hostile.address)

        transact(suite.chain, consumer, suite.escrow.functions.claim([campaign_id], consumer.address))
        assert isinstance(reentry_error(hostile), ReentrancyGuardReentrantCall)
        assert hostile.functions.balanceOf(consumer.address).call() == REWARDS[Action.INSTALL]
        assert suite.accrued(campaign_id, hostile.address) == REWARDS[Action.AD_VIEW]  # not claimed by the reentry
        assert suite.campaign_state(campaign_id).owed == REWARDS[Action.AD_VIEW]

    @pytest.mark.usefixtures("hostile_is_attester")
    def test_a_token_reentering_settle_during_a_payout_is_refused(
        self, suite, campaigns, campaign_id, hostile, consumer
    ):
        arm(suite, hostile, "settle", campaign_id, settle_call(suite, campaigns, campaign_id, consumer.address))
        transact(suite.chain, consumer, suite.escrow.functions.claim([campaign_id], consumer.address))
        assert isinstance(reentry_error(hostile), ReentrancyGuardReentrantCall)
        assert suite.accrued(campaign_id, consumer.address) == 0  # the reentered settle paid nothing

    @pytest.mark.usefixtures("hostile_is_attester")
    def test_the_same_settle_by_the_token_outside_a_transfer_succeeds(
        self, suite, campaigns, campaign_id, hostile, consumer
    ):
        """The control for the test above: what refused the reentry was the guard, not the attester check."""
        data = suite.escrow.encode_abi(
            "settle", args=[campaign_id, settle_call(suite, campaigns, campaign_id, consumer.address)]
        )
        transact(suite.chain, consumer, hostile.functions.execute(suite.escrow.address, data))
        assert suite.accrued(campaign_id, consumer.address) == REWARDS[Action.INSTALL] + REWARDS[Action.AD_VIEW]

    def test_a_token_reentering_claim_during_a_close_refund_is_refused(
        self, suite, campaign_id, hostile, consumer, marketer
    ):
        suite.chain.increase_time(DAY + 1)
        arm(suite, hostile, "claim", [campaign_id], hostile.address)
        transact(suite.chain, marketer, suite.escrow.functions.close(campaign_id))
        assert isinstance(reentry_error(hostile), ReentrancyGuardReentrantCall)
        assert hostile.functions.balanceOf(marketer.address).call() == SUPPLY - REWARDS[Action.INSTALL]

    @pytest.mark.usefixtures("hostile_is_attester")
    def test_a_token_reentering_settle_while_a_top_up_is_pulled_in_is_refused(
        self, suite, campaigns, campaign_id, hostile, consumer, marketer
    ):
        arm(suite, hostile, "settle", campaign_id, settle_call(suite, campaigns, campaign_id, consumer.address))
        transact(suite.chain, marketer, suite.escrow.functions.topUp(campaign_id, TOKEN))
        assert isinstance(reentry_error(hostile), ReentrancyGuardReentrantCall)
        state = suite.campaign_state(campaign_id)
        assert (state.budget, state.owed) == (BUDGET + TOKEN - REWARDS[Action.INSTALL], REWARDS[Action.INSTALL])


# --------------------------------------------------------------------------------------------------------
# fee-on-transfer tokens
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def fee_token(suite: Suite, marketer: LocalAccount) -> Contract:
    token, _ = deploy(suite.chain, marketer, "FeeOnTransferToken", marketer.address, SUPPLY, 0)
    transact(suite.chain, marketer, token.functions.approve(suite.escrow.address, SUPPLY))
    return token


class TestFeeOnTransferToken:
    def test_funding_with_a_fee_on_transfer_token_reverts_transfer_shortfall(
        self, suite, campaigns, fee_token, marketer
    ):
        transact(suite.chain, marketer, fee_token.functions.setFee(100))  # 1 %
        terms = campaigns.terms(token=fee_token.address)
        call = suite.escrow.functions.createCampaign(terms.as_abi(), [], BUDGET)
        with reverts(EscrowTransferShortfall, token=fee_token.address, expected=BUDGET, received=BUDGET * 99 // 100):
            transact(suite.chain, marketer, call)
        assert fee_token.functions.balanceOf(suite.escrow.address).call() == 0

    def test_a_top_up_once_the_token_takes_a_fee_reverts_transfer_shortfall(
        self, suite, campaigns, fee_token, marketer
    ):
        campaign_id = campaigns.create(token=fee_token.address, budget=BUDGET)
        assert fee_token.functions.balanceOf(suite.escrow.address).call() == BUDGET  # no fee yet: accepted
        transact(suite.chain, marketer, fee_token.functions.setFee(50))
        with reverts(EscrowTransferShortfall, token=fee_token.address, expected=1_000, received=995):
            transact(suite.chain, marketer, suite.escrow.functions.topUp(campaign_id, 1_000))
        assert suite.campaign_state(campaign_id).budget == BUDGET
