"""CampaignEscrow campaigns: creation (approve or permit) and its validation, top-up, pause, attesters, close."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger import typed_data
from ledger.chain import Chain
from ledger.contracts import bind, deploy, events, read, transact
from ledger.errors import (
    ERC20InsufficientAllowance,
    EscrowAttesterAlreadyAdded,
    EscrowAttesterNotFound,
    EscrowBudgetTooLarge,
    EscrowCampaignClosed,
    EscrowCampaignNotEnded,
    EscrowCampaignNotPaused,
    EscrowCampaignPaused,
    EscrowInvalidAttester,
    EscrowInvalidBrand,
    EscrowInvalidDates,
    EscrowInvalidPurposes,
    EscrowInvalidToken,
    EscrowNotMarketer,
    EscrowUnknownCampaign,
    EscrowZeroAmount,
)
from ledger.model import Action, CampaignStatus
from ledger.suite import CampaignTerms, Suite
from tests.contracts.helpers import DAY, REWARDS, TOKEN, CampaignFactory, next_timestamp, reverts

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
NEW_ATTESTER = "0x000000000000000000000000000000000000dEaD"
MAX_BUDGET = 2**104 - 1
BUDGET = 100 * TOKEN


def token_at(chain: Chain, address: str) -> Contract:
    return bind(chain, "RewardToken", address)


def approve(suite: Suite, owner: LocalAccount, amount: int, token: str | None = None) -> TxReceipt:
    contract = token_at(suite.chain, token or suite.token.address)
    return transact(suite.chain, owner, contract.functions.approve(suite.escrow.address, amount))


def permit(suite: Suite, owner: LocalAccount, token: str, value: int, deadline: int) -> tuple[int, bytes, bytes]:
    """(v, r, s) of an EIP-2612 permit for the escrow, on any RewardToken-like token."""
    contract = token_at(suite.chain, token)
    domain = typed_data.Domain(contract.functions.name().call(), suite.chain.chain_id, contract.address)
    nonce = int(contract.functions.nonces(owner.address).call())
    message = typed_data.permit_message(owner.address, suite.escrow.address, value, nonce, deadline)
    return typed_data.split_signature(typed_data.sign(owner, domain, "Permit", message))


Create = Callable[..., TxReceipt]


@pytest.fixture(params=["createCampaign", "createCampaignWithPermit"])
def create(request: pytest.FixtureRequest, suite: Suite, marketer: LocalAccount, attester: LocalAccount) -> Create:
    """Creates a campaign through one entry point, funding it by approval or by permit respectively."""

    def create(terms: CampaignTerms, budget: int = BUDGET, attesters: list[str] | None = None) -> TxReceipt:
        attesters = [attester.address] if attesters is None else attesters
        has_code = bool(suite.chain.w3.eth.get_code(terms.token))
        if request.param == "createCampaign":
            if has_code:
                approve(suite, marketer, budget, terms.token)
            call = suite.escrow.functions.createCampaign(terms.as_abi(), attesters, budget)
        else:
            deadline = suite.chain.latest_timestamp() + 3600
            v, r, s = (
                permit(suite, marketer, terms.token, budget, deadline) if has_code else (27, b"\0" * 32, b"\0" * 32)
            )
            call = suite.escrow.functions.createCampaignWithPermit(terms.as_abi(), attesters, budget, deadline, v, r, s)
        return transact(suite.chain, marketer, call)

    return create


@pytest.fixture
def big_token(suite: Suite, marketer: LocalAccount) -> str:
    """A RewardToken whose supply, all the marketer's, exceeds the 2^104 budget bound."""
    token, _ = deploy(suite.chain, marketer, "RewardToken", "Big Reward", "BIG", marketer.address, 2**106)
    return token.address


def campaign_count(suite: Suite) -> int:
    return int(read(suite.escrow.functions.campaignCount()))


# --------------------------------------------------------------------------------------------------------
# createCampaign / createCampaignWithPermit
# --------------------------------------------------------------------------------------------------------


class TestCreateCampaign:
    def test_create_campaign_pulls_the_budget_and_opens_an_active_campaign(
        self, suite, campaigns, create, marketer, attester
    ):
        marketer_before, escrow_before = suite.balance(marketer.address), suite.balance(suite.escrow.address)
        create(campaigns.terms())
        assert campaign_count(suite) == 1
        assert suite.balance(marketer.address) == marketer_before - BUDGET
        assert suite.balance(suite.escrow.address) == escrow_before + BUDGET
        state = suite.campaign_state(1)
        assert (state.marketer, state.status, state.budget, state.owed) == (
            marketer.address,
            CampaignStatus.ACTIVE,
            BUDGET,
            0,
        )
        assert read(suite.escrow.functions.isAttester(1, attester.address))
        assert int(suite.token.functions.allowance(marketer.address, suite.escrow.address).call()) == 0

    def test_create_campaign_emits_campaign_created_with_the_terms_and_budget(self, suite, campaigns, create, marketer):
        terms = campaigns.terms(lifetime_caps={Action.INSTALL: 1, Action.AD_CLICK: 9}, daily_caps={Action.AD_VIEW: 4})
        receipt = create(terms)
        (event,) = events(suite.escrow, "CampaignCreated", receipt)
        token, brand, starts_at, ends_at, rewards, purposes, lifetime_caps, daily_caps = terms.as_abi()
        assert {**event, "terms": dict(event["terms"])} == {
            "campaignId": 1,
            "marketer": marketer.address,
            "token": suite.token.address,
            "terms": {
                "token": token,
                "brand": brand,
                "startsAt": starts_at,
                "endsAt": ends_at,
                "rewards": rewards,
                "purposes": purposes,
                "lifetimeCaps": lifetime_caps,
                "dailyCaps": daily_caps,
            },
            "budget": BUDGET,
        }

    def test_the_terms_view_returns_the_terms_as_created(self, suite, campaigns, create):
        terms = campaigns.terms(lifetime_caps={Action.SUBSCRIBE: 2}, daily_caps={Action.EMAIL_CLICK: 3})
        create(terms)
        assert tuple(read(suite.escrow.functions.terms(1))) == terms.as_abi()

    def test_create_campaign_emits_attester_added_for_each_attester(self, suite, campaigns, create, accounts):
        attesters = [accounts.attester.address, accounts.consumers[6].address]
        receipt = create(campaigns.terms(), attesters=attesters)
        assert events(suite.escrow, "AttesterAdded", receipt) == [{"campaignId": 1, "attester": a} for a in attesters]

    def test_a_campaign_may_start_without_attesters(self, suite, campaigns, create, attester):
        create(campaigns.terms(), attesters=[])
        assert not read(suite.escrow.functions.isAttester(1, attester.address))

    def test_campaign_ids_count_up_from_one(self, suite, campaigns, create):
        for expected in (1, 2, 3):
            (event,) = events(suite.escrow, "CampaignCreated", create(campaigns.terms()))
            assert event["campaignId"] == expected
        assert campaign_count(suite) == 3

    def test_a_budget_of_exactly_the_bound_is_accepted(self, suite, campaigns, create, big_token):
        create(campaigns.terms(token=big_token), budget=MAX_BUDGET)
        assert suite.campaign_state(1).budget == MAX_BUDGET


class TestCreateCampaignValidation:
    def test_create_campaign_reverts_on_a_token_without_code(self, suite, campaigns, create, accounts):
        eoa = accounts.consumers[0].address
        with reverts(EscrowInvalidToken, token=eoa):
            create(campaigns.terms(token=eoa))
        assert campaign_count(suite) == 0

    def test_create_campaign_reverts_on_the_zero_token(self, campaigns, create):
        with reverts(EscrowInvalidToken, token=ZERO_ADDRESS):
            create(campaigns.terms(token=ZERO_ADDRESS))

    def test_create_campaign_reverts_on_the_zero_brand(self, campaigns, create):
        with reverts(EscrowInvalidBrand, brand=ZERO_ADDRESS):
            create(campaigns.terms(brand=ZERO_ADDRESS))

    @pytest.mark.parametrize(
        ("start", "end"),
        [(10 * DAY, 10 * DAY), (10 * DAY, 5 * DAY), (-10 * DAY, -DAY)],
        ids=["starts-when-it-ends", "starts-after-it-ends", "already-ended"],
    )
    def test_create_campaign_reverts_on_invalid_dates(self, suite, campaigns, create, start, end):
        now = suite.chain.latest_timestamp()
        with reverts(EscrowInvalidDates, starts_at=now + start, ends_at=now + end):
            create(campaigns.terms(starts_at=now + start, ends_at=now + end))

    def test_create_campaign_reverts_when_it_ends_at_the_block_time(self, suite, campaigns, create):
        now = next_timestamp(suite.chain)
        with reverts(EscrowInvalidDates, starts_at=now - DAY, ends_at=now):
            create(campaigns.terms(starts_at=now - DAY, ends_at=now))

    @pytest.mark.parametrize("purposes", [0x40, 0x80, 0xFF])
    def test_create_campaign_reverts_on_an_undefined_purpose(self, campaigns, create, purposes):
        terms = campaigns.terms()
        with reverts(EscrowInvalidPurposes, action=Action.AD_CLICK, purposes=purposes):
            create(replace(terms, purposes={**terms.purposes, Action.AD_CLICK: purposes}))

    def test_create_campaign_reverts_with_action_8_when_no_action_is_offered(self, campaigns, create):
        with reverts(EscrowInvalidPurposes, action=8, purposes=0):
            create(campaigns.terms(purposes={}))

    def test_create_campaign_reverts_on_a_zero_budget(self, campaigns, create):
        with reverts(EscrowZeroAmount):
            create(campaigns.terms(), budget=0)

    def test_create_campaign_reverts_on_a_budget_of_2_to_the_104(self, suite, campaigns, create, big_token):
        with reverts(EscrowBudgetTooLarge, campaign_id=1, total=2**104, max=MAX_BUDGET):
            create(campaigns.terms(token=big_token), budget=2**104)
        assert campaign_count(suite) == 0

    def test_create_campaign_reverts_on_a_zero_attester(self, campaigns, create, attester):
        with reverts(EscrowInvalidAttester, attester=ZERO_ADDRESS):
            create(campaigns.terms(), attesters=[attester.address, ZERO_ADDRESS])

    def test_create_campaign_reverts_on_a_repeated_attester(self, campaigns, create, attester):
        with reverts(EscrowAttesterAlreadyAdded, campaign_id=1, attester=attester.address):
            create(campaigns.terms(), attesters=[attester.address, attester.address])


class TestCreateCampaignFunding:
    def test_create_campaign_without_approval_reverts_insufficient_allowance(self, suite, campaigns, marketer):
        call = suite.escrow.functions.createCampaign(campaigns.terms().as_abi(), [], BUDGET)
        with reverts(ERC20InsufficientAllowance, spender=suite.escrow.address, allowance=0, needed=BUDGET):
            transact(suite.chain, marketer, call)

    def test_create_campaign_with_an_invalid_permit_and_no_approval_reverts_insufficient_allowance(
        self, suite, campaigns, marketer
    ):
        deadline = suite.chain.latest_timestamp() + 3600
        v, r, s = permit(suite, marketer, suite.token.address, BUDGET - 1, deadline)  # signed for less
        call = suite.escrow.functions.createCampaignWithPermit(
            campaigns.terms().as_abi(), [], BUDGET, deadline, v, r, s
        )
        with reverts(ERC20InsufficientAllowance, spender=suite.escrow.address, allowance=0, needed=BUDGET):
            transact(suite.chain, marketer, call)

    def test_create_campaign_with_permit_needs_no_prior_transaction(self, suite, campaigns, marketer):
        nonce_before = suite.chain.w3.eth.get_transaction_count(marketer.address)
        campaign_id, receipt = suite.create_campaign(marketer, campaigns.terms(), BUDGET, [])
        assert suite.chain.w3.eth.get_transaction_count(marketer.address) == nonce_before + 1
        assert events(suite.token, "Transfer", receipt) == [
            {"from": marketer.address, "to": suite.escrow.address, "value": BUDGET}
        ]
        assert suite.campaign_state(campaign_id).budget == BUDGET

    def test_create_campaign_with_permit_still_works_when_someone_used_the_permit_first(
        self, suite, campaigns, marketer, relayer
    ):
        deadline = suite.chain.latest_timestamp() + 3600
        v, r, s = permit(suite, marketer, suite.token.address, BUDGET, deadline)
        front_run = suite.token.functions.permit(marketer.address, suite.escrow.address, BUDGET, deadline, v, r, s)
        transact(suite.chain, relayer, front_run)
        call = suite.escrow.functions.createCampaignWithPermit(
            campaigns.terms().as_abi(), [], BUDGET, deadline, v, r, s
        )
        transact(suite.chain, marketer, call)
        assert suite.campaign_state(1).budget == BUDGET


# --------------------------------------------------------------------------------------------------------
# topUp
# --------------------------------------------------------------------------------------------------------


def top_up(suite: Suite, sender: LocalAccount, campaign_id: int, amount: int) -> TxReceipt:
    return transact(suite.chain, sender, suite.escrow.functions.topUp(campaign_id, amount))


class TestTopUp:
    def test_top_up_adds_to_the_budget_and_emits_campaign_funded(self, suite, campaigns, marketer):
        campaign_id = campaigns.create(budget=BUDGET)
        approve(suite, marketer, 5 * TOKEN)
        escrow_before = suite.balance(suite.escrow.address)
        receipt = top_up(suite, marketer, campaign_id, 5 * TOKEN)
        assert events(suite.escrow, "CampaignFunded", receipt) == [
            {"campaignId": campaign_id, "funder": marketer.address, "amount": 5 * TOKEN, "budget": BUDGET + 5 * TOKEN}
        ]
        assert suite.campaign_state(campaign_id).budget == BUDGET + 5 * TOKEN
        assert suite.balance(suite.escrow.address) == escrow_before + 5 * TOKEN

    def test_top_up_works_while_paused(self, suite, campaigns, marketer):
        campaign_id = campaigns.create(budget=BUDGET)
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        approve(suite, marketer, 1)
        top_up(suite, marketer, campaign_id, 1)
        assert suite.campaign_state(campaign_id).budget == BUDGET + 1

    def test_top_up_reverts_on_zero(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        with reverts(EscrowZeroAmount):
            top_up(suite, marketer, campaign_id, 0)

    def test_top_up_without_approval_reverts_insufficient_allowance(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        with reverts(ERC20InsufficientAllowance, spender=suite.escrow.address, allowance=0, needed=TOKEN):
            top_up(suite, marketer, campaign_id, TOKEN)

    def test_top_up_reverts_past_the_budget_bound(self, suite, campaigns, marketer, big_token):
        approve(suite, marketer, MAX_BUDGET - 5, big_token)
        campaign_id = campaigns.create(token=big_token, budget=MAX_BUDGET - 5)
        approve(suite, marketer, 6, big_token)
        with reverts(EscrowBudgetTooLarge, campaign_id=campaign_id, total=MAX_BUDGET + 1, max=MAX_BUDGET):
            top_up(suite, marketer, campaign_id, 6)
        top_up(suite, marketer, campaign_id, 5)
        assert suite.campaign_state(campaign_id).budget == MAX_BUDGET

    def test_top_up_of_an_amount_near_2_to_the_256_reverts_budget_too_large(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        # the total would overflow: it is reported saturated
        with reverts(EscrowBudgetTooLarge, campaign_id=campaign_id, total=2**256 - 1, max=MAX_BUDGET):
            top_up(suite, marketer, campaign_id, 2**256 - 1)

    def test_owed_rewards_count_towards_the_budget_bound(self, suite, campaigns, marketer, consumer, big_token):
        reward = REWARDS[Action.INSTALL]
        approve(suite, marketer, MAX_BUDGET - 5, big_token)
        campaign_id = campaigns.create(token=big_token, budget=MAX_BUDGET - 5)
        campaigns.consent(consumer)
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)])
        assert suite.campaign_state(campaign_id).budget == MAX_BUDGET - 5 - reward
        # budget + amount alone would fit; budget + owed + amount does not
        approve(suite, marketer, reward, big_token)
        with reverts(EscrowBudgetTooLarge, campaign_id=campaign_id, total=MAX_BUDGET + reward - 5, max=MAX_BUDGET):
            top_up(suite, marketer, campaign_id, reward)


# --------------------------------------------------------------------------------------------------------
# pause / unpause
# --------------------------------------------------------------------------------------------------------


def pause(suite: Suite, marketer: LocalAccount, campaign_id: int) -> TxReceipt:
    return transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))


def unpause(suite: Suite, marketer: LocalAccount, campaign_id: int) -> TxReceipt:
    return transact(suite.chain, marketer, suite.escrow.functions.unpause(campaign_id))


class TestPause:
    def test_pause_emits_campaign_paused_and_stops_settlement(self, suite, campaigns, marketer, consumer):
        campaign_id = campaigns.create()
        receipt = pause(suite, marketer, campaign_id)
        assert events(suite.escrow, "CampaignPaused", receipt) == [{"campaignId": campaign_id}]
        assert suite.campaign_state(campaign_id).status == CampaignStatus.PAUSED
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)])

    def test_pause_reverts_when_already_paused(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        pause(suite, marketer, campaign_id)
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            pause(suite, marketer, campaign_id)

    def test_unpause_emits_campaign_unpaused_and_settlement_resumes(self, suite, campaigns, marketer, consumer):
        campaign_id = campaigns.create()
        campaigns.consent(consumer)
        pause(suite, marketer, campaign_id)
        receipt = unpause(suite, marketer, campaign_id)
        assert events(suite.escrow, "CampaignUnpaused", receipt) == [{"campaignId": campaign_id}]
        assert suite.campaign_state(campaign_id).status == CampaignStatus.ACTIVE
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)])
        assert suite.accrued(campaign_id, consumer.address) == REWARDS[Action.AD_VIEW]

    def test_unpause_reverts_when_not_paused(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        with reverts(EscrowCampaignNotPaused, campaign_id=campaign_id):
            unpause(suite, marketer, campaign_id)


# --------------------------------------------------------------------------------------------------------
# attesters
# --------------------------------------------------------------------------------------------------------


def is_attester(suite: Suite, campaign_id: int, address: str) -> bool:
    return bool(read(suite.escrow.functions.isAttester(campaign_id, address)))


class TestAttesters:
    def test_add_attester_emits_attester_added_and_lets_it_settle(self, suite, campaigns, marketer, consumer, accounts):
        campaign_id = campaigns.create(attesters=[])
        newcomer = accounts.consumers[6]
        receipt = transact(suite.chain, marketer, suite.escrow.functions.addAttester(campaign_id, newcomer.address))
        assert events(suite.escrow, "AttesterAdded", receipt) == [
            {"campaignId": campaign_id, "attester": newcomer.address}
        ]
        assert is_attester(suite, campaign_id, newcomer.address)
        campaigns.consent(consumer)
        engagement = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        campaigns.settle(campaign_id, [engagement], attester=newcomer)
        assert suite.accrued(campaign_id, consumer.address) == REWARDS[Action.AD_VIEW]

    def test_add_attester_reverts_when_already_added(self, suite, campaigns, marketer, attester):
        campaign_id = campaigns.create()
        with reverts(EscrowAttesterAlreadyAdded, campaign_id=campaign_id, attester=attester.address):
            transact(suite.chain, marketer, suite.escrow.functions.addAttester(campaign_id, attester.address))

    def test_add_attester_reverts_on_the_zero_address(self, suite, campaigns, marketer):
        campaign_id = campaigns.create()
        with reverts(EscrowInvalidAttester, attester=ZERO_ADDRESS):
            transact(suite.chain, marketer, suite.escrow.functions.addAttester(campaign_id, ZERO_ADDRESS))

    def test_remove_attester_emits_attester_removed(self, suite, campaigns, marketer, attester):
        campaign_id = campaigns.create()
        receipt = transact(suite.chain, marketer, suite.escrow.functions.removeAttester(campaign_id, attester.address))
        assert events(suite.escrow, "AttesterRemoved", receipt) == [
            {"campaignId": campaign_id, "attester": attester.address}
        ]
        assert not is_attester(suite, campaign_id, attester.address)

    def test_remove_attester_reverts_when_not_an_attester(self, suite, campaigns, marketer, accounts):
        campaign_id = campaigns.create()
        stranger = accounts.consumers[6].address
        with reverts(EscrowAttesterNotFound, campaign_id=campaign_id, attester=stranger):
            transact(suite.chain, marketer, suite.escrow.functions.removeAttester(campaign_id, stranger))

    def test_attesters_are_per_campaign(self, suite, campaigns, attester, accounts):
        first = campaigns.create(attesters=[attester.address])
        second = campaigns.create(attesters=[accounts.consumers[6].address])
        assert is_attester(suite, first, attester.address) and not is_attester(suite, second, attester.address)


# --------------------------------------------------------------------------------------------------------
# who may manage a campaign
# --------------------------------------------------------------------------------------------------------

MANAGEMENT: dict[str, Callable[[Contract, int, str], ContractFunction]] = {
    "topUp": lambda escrow, cid, attester: escrow.functions.topUp(cid, 1),
    "pause": lambda escrow, cid, attester: escrow.functions.pause(cid),
    "unpause": lambda escrow, cid, attester: escrow.functions.unpause(cid),
    "addAttester": lambda escrow, cid, attester: escrow.functions.addAttester(cid, NEW_ATTESTER),
    "removeAttester": lambda escrow, cid, attester: escrow.functions.removeAttester(cid, attester),
    "close": lambda escrow, cid, attester: escrow.functions.close(cid),
}


@pytest.mark.parametrize("function", MANAGEMENT)
class TestManagementAccess:
    def test_only_the_marketer_may_manage_a_campaign(self, suite, campaigns, accounts, attester, function):
        campaign_id = campaigns.create()
        for caller in (attester, accounts.deployer, accounts.consumers[0]):
            with reverts(EscrowNotMarketer, campaign_id=campaign_id, caller=caller.address):
                transact(suite.chain, caller, MANAGEMENT[function](suite.escrow, campaign_id, attester.address))

    def test_managing_an_unknown_campaign_reverts(self, suite, campaigns, marketer, attester, function):
        campaigns.create()
        with reverts(EscrowUnknownCampaign, campaign_id=2):
            transact(suite.chain, marketer, MANAGEMENT[function](suite.escrow, 2, attester.address))


# --------------------------------------------------------------------------------------------------------
# close
# --------------------------------------------------------------------------------------------------------


def close(suite: Suite, marketer: LocalAccount, campaign_id: int) -> TxReceipt:
    return transact(suite.chain, marketer, suite.escrow.functions.close(campaign_id))


def claim(suite: Suite, consumer: LocalAccount, campaign_id: int) -> TxReceipt:
    return transact(suite.chain, consumer, suite.escrow.functions.claim([campaign_id], consumer.address))


class TestClose:
    def test_close_reverts_before_the_end_with_the_end_and_the_time(self, suite, campaigns, marketer):
        ends_at = suite.chain.latest_timestamp() + 10 * DAY
        campaign_id = campaigns.create(ends_at=ends_at)
        now = next_timestamp(suite.chain)
        with reverts(EscrowCampaignNotEnded, campaign_id=campaign_id, ends_at=ends_at, now=now):
            close(suite, marketer, campaign_id)

    def test_close_reverts_at_the_last_second_and_succeeds_one_second_later(self, suite, campaigns, marketer):
        ends_at = suite.chain.latest_timestamp() + 10 * DAY
        campaign_id = campaigns.create(ends_at=ends_at)
        suite.chain.increase_time(ends_at - 1 - suite.chain.latest_timestamp())
        assert next_timestamp(suite.chain) == ends_at
        with reverts(EscrowCampaignNotEnded, campaign_id=campaign_id, ends_at=ends_at, now=ends_at):
            close(suite, marketer, campaign_id)
        suite.chain.increase_time(1)  # the refused close was never mined
        assert next_timestamp(suite.chain) == ends_at + 1
        close(suite, marketer, campaign_id)
        assert suite.campaign_state(campaign_id).status == CampaignStatus.CLOSED

    def test_close_refunds_only_the_unspent_budget_and_accrued_rewards_stay_claimable(
        self, suite, campaigns, marketer, accounts
    ):
        early, late = accounts.consumers[0], accounts.consumers[1]
        ends_at = suite.chain.latest_timestamp() + 10 * DAY
        campaign_id = campaigns.create(budget=10 * TOKEN, ends_at=ends_at)
        other_campaign = campaigns.create(budget=3 * TOKEN)  # its funds share the escrow's balance
        for consumer in (early, late):
            campaigns.consent(consumer)
        campaigns.settle(
            campaign_id,
            [
                campaigns.engagement(campaign_id, early.address, Action.INSTALL),
                campaigns.engagement(campaign_id, early.address, Action.AD_CLICK),
                campaigns.engagement(campaign_id, late.address, Action.LOCATION_OPT_IN),
            ],
        )
        early_reward = REWARDS[Action.INSTALL] + REWARDS[Action.AD_CLICK]
        late_reward = REWARDS[Action.LOCATION_OPT_IN]
        claim(suite, early, campaign_id)  # one consumer claims before the close, the other after
        suite.chain.increase_time(ends_at + 1 - suite.chain.latest_timestamp())

        refund = 10 * TOKEN - early_reward - late_reward
        assert read(suite.escrow.functions.close(campaign_id), **{"from": marketer.address}) == refund
        marketer_before, escrow_before = suite.balance(marketer.address), suite.balance(suite.escrow.address)
        receipt = close(suite, marketer, campaign_id)
        assert events(suite.escrow, "CampaignClosed", receipt) == [
            {"campaignId": campaign_id, "refund": refund, "owed": late_reward}
        ]
        assert suite.balance(marketer.address) == marketer_before + refund
        assert suite.balance(suite.escrow.address) == escrow_before - refund == 3 * TOKEN + late_reward
        state = suite.campaign_state(campaign_id)
        assert (state.status, state.budget, state.owed) == (CampaignStatus.CLOSED, 0, late_reward)

        late_before = suite.balance(late.address)
        claim(suite, late, campaign_id)
        assert suite.balance(late.address) == late_before + late_reward
        assert suite.campaign_state(campaign_id).owed == 0
        assert suite.balance(suite.escrow.address) == 3 * TOKEN
        assert suite.campaign_state(other_campaign).budget == 3 * TOKEN

    def test_close_with_nothing_left_refunds_zero_without_a_transfer(self, suite, campaigns, marketer, consumer):
        ends_at = suite.chain.latest_timestamp() + DAY
        campaign_id = campaigns.create(budget=REWARDS[Action.INSTALL], ends_at=ends_at)
        campaigns.consent(consumer)
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consumer.address, Action.INSTALL)])
        suite.chain.increase_time(DAY + 1)
        receipt = close(suite, marketer, campaign_id)
        assert events(suite.escrow, "CampaignClosed", receipt) == [
            {"campaignId": campaign_id, "refund": 0, "owed": REWARDS[Action.INSTALL]}
        ]
        assert events(suite.token, "Transfer", receipt) == []

    def test_a_paused_campaign_can_be_closed(self, suite, campaigns, marketer):
        ends_at = suite.chain.latest_timestamp() + DAY
        campaign_id = campaigns.create(budget=BUDGET, ends_at=ends_at)
        pause(suite, marketer, campaign_id)
        suite.chain.increase_time(DAY + 1)
        marketer_before = suite.balance(marketer.address)
        close(suite, marketer, campaign_id)
        assert suite.balance(marketer.address) == marketer_before + BUDGET

    @pytest.fixture
    def closed(self, suite: Suite, campaigns: CampaignFactory, marketer: LocalAccount) -> int:
        ends_at = suite.chain.latest_timestamp() + DAY
        campaign_id = campaigns.create(ends_at=ends_at)
        suite.chain.increase_time(DAY + 1)
        close(suite, marketer, campaign_id)
        return campaign_id

    def test_close_reverts_on_a_closed_campaign(self, suite, marketer, closed):
        with reverts(EscrowCampaignClosed, campaign_id=closed):
            close(suite, marketer, closed)

    def test_settle_reverts_on_a_closed_campaign(self, suite, campaigns, consumer, closed):
        campaigns.consent(consumer)
        engagement = campaigns.engagement(campaign_id=closed, consumer=consumer.address, action=Action.AD_VIEW)
        with reverts(EscrowCampaignClosed, campaign_id=closed):
            campaigns.settle(closed, [engagement])

    @pytest.mark.parametrize("function", ["topUp", "pause", "unpause", "addAttester"])
    def test_a_closed_campaign_cannot_be_changed(self, suite, marketer, attester, closed, function):
        approve(suite, marketer, 1)
        with reverts(EscrowCampaignClosed, campaign_id=closed):
            transact(suite.chain, marketer, MANAGEMENT[function](suite.escrow, closed, attester.address))
