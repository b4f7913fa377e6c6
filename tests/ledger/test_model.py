"""ledger.model: purposes, actions, rejection reasons and statuses, against the contracts that define them."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest

from ledger.contracts import read, transact
from ledger.errors import ConsentInvalidPurposes, EscrowInvalidAction, EscrowInvalidPurposes
from ledger.model import (
    ACTION_COUNT,
    ALL_PURPOSES,
    DEFAULT_PURPOSES,
    Action,
    CampaignStatus,
    Purpose,
    RejectReason,
)
from ledger.settlement.batch import GROUP_HEADER_BYTES, Engagement, encode_batch
from ledger.suite import Suite
from tests.contracts import conftest as contract_fixtures
from tests.contracts.helpers import DAY, REWARDS, CampaignFactory, reverts

# The contract tests' fixtures (an eth-tester chain, the suite deployed once, each test in a snapshot), reused.
chain, deployed, suite = contract_fixtures.chain, contract_fixtures.deployed, contract_fixtures.suite

INTERFACE = Path(__file__).resolve().parents[2] / "contracts" / "interfaces" / "ICampaignEscrow.sol"
VALID = "ads, email, location, profile, purchases, analytics"


@pytest.fixture
def campaigns(suite: Suite) -> CampaignFactory:
    return CampaignFactory(suite)


def solidity_enum(name: str) -> list[str]:
    """The members of ``enum name`` in ICampaignEscrow.sol, in declaration order, as UPPER_SNAKE names."""
    match = re.search(rf"enum {name} \{{(.*?)\}}", INTERFACE.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"no enum {name} in {INTERFACE}"
    body = re.sub(r"//[^\n]*", "", match.group(1))
    members = [m.strip() for m in body.split(",") if m.strip()]
    return [m if m.isupper() else re.sub(r"(?<!^)(?=[A-Z])", "_", m).upper() for m in members]


class TestPurposeParse:
    def test_parse_combines_comma_separated_purposes(self):
        assert Purpose.parse("ads,email") == Purpose.ADS | Purpose.EMAIL

    def test_parse_ignores_case_and_spaces(self):
        assert Purpose.parse(" ADS , Email,location ") == Purpose.ADS | Purpose.EMAIL | Purpose.LOCATION

    def test_parse_of_every_purpose_is_all_purposes(self):
        assert Purpose.parse(VALID) == ALL_PURPOSES == 0x3F

    def test_parse_tolerates_repeats_and_empty_items(self):
        assert Purpose.parse("ads,,ads,") == Purpose.ADS

    def test_parse_refuses_an_unknown_word_naming_the_valid_purposes(self):
        with pytest.raises(ValueError, match="unknown purpose 'spam'") as info:
            Purpose.parse("ads,spam")
        assert str(info.value).endswith(f"choose from {VALID}")

    @pytest.mark.parametrize("text", ["", " ", ",", " , "])
    def test_parse_refuses_no_purposes(self, text):
        with pytest.raises(ValueError, match="at least one purpose"):
            Purpose.parse(text)


class TestPurposeBits:
    def test_purposes_are_the_six_low_bits_in_the_registrys_order(self):
        assert {p.name: int(p) for p in Purpose} == {
            "ADS": 0x01,
            "EMAIL": 0x02,
            "LOCATION": 0x04,
            "PROFILE": 0x08,
            "PURCHASES": 0x10,
            "ANALYTICS": 0x20,
        }

    def test_each_purpose_sets_its_own_grant_time_slot_in_the_registry(self, suite: Suite):
        consumer, brand = suite.chain.accounts.consumers[0], suite.chain.accounts.marketer.address
        expires = suite.chain.latest_timestamp() + DAY
        for index, purpose in enumerate(Purpose):
            receipt = transact(suite.chain, consumer, suite.registry.functions.grant(brand, int(purpose), expires))
            purposes, _, granted_at = read(suite.registry.functions.consentOf(consumer.address, brand))
            assert purposes == (1 << (index + 1)) - 1
            assert granted_at[index] == suite.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
        assert purposes == ALL_PURPOSES

    def test_the_registry_rejects_the_bit_above_the_last_purpose(self, suite: Suite):
        consumer, brand = suite.chain.accounts.consumers[0], suite.chain.accounts.marketer.address
        expires = suite.chain.latest_timestamp() + DAY
        with reverts(ConsentInvalidPurposes, purposes=int(ALL_PURPOSES) + 1):
            transact(suite.chain, consumer, suite.registry.functions.grant(brand, int(ALL_PURPOSES) + 1, expires))

    def test_the_escrow_accepts_all_purposes_and_rejects_bit_0x40(self, campaigns: CampaignFactory):
        campaigns.create(purposes={Action.AD_VIEW: int(ALL_PURPOSES)})
        with reverts(EscrowInvalidPurposes, action=Action.AD_VIEW, purposes=0x40):
            campaigns.create(purposes={Action.AD_VIEW: 0x40})

    def test_default_purposes_cover_every_action(self):
        assert set(DEFAULT_PURPOSES) == set(Action)
        assert all(purpose in Purpose and purpose for purpose in DEFAULT_PURPOSES.values())


class TestEnumsMatchTheInterface:
    @pytest.mark.parametrize(
        ("python", "solidity"),
        [(Action, "Action"), (RejectReason, "RejectReason"), (CampaignStatus, "Status")],
    )
    def test_python_enum_lists_the_solidity_enum_in_order(self, python: type[IntEnum], solidity):
        assert [member.name for member in python] == solidity_enum(solidity)
        assert [int(member) for member in python] == list(range(len(python)))

    def test_action_count_is_the_number_of_actions(self):
        assert len(Action) == ACTION_COUNT


class TestAgainstTheEscrow:
    def test_every_action_is_paid_under_its_own_code(self, suite: Suite, campaigns: CampaignFactory):
        consumer = suite.chain.accounts.consumers[0]
        campaign_id = campaigns.create()
        campaigns.consent(consumer)
        items = [campaigns.engagement(campaign_id, consumer.address, action) for action in Action]
        paid = campaigns.rewarded(campaigns.settle(campaign_id, items))
        assert [(p["action"], p["amount"]) for p in paid] == [(a, REWARDS[a]) for a in Action]

    def test_the_escrow_refuses_action_code_action_count(self, suite: Suite, campaigns: CampaignFactory):
        consumer = suite.chain.accounts.consumers[0]
        campaign_id = campaigns.create()
        batch = bytearray(encode_batch([campaigns.engagement(campaign_id, consumer.address, Action.SUBSCRIBE)]))
        batch[GROUP_HEADER_BYTES] = ACTION_COUNT
        call = suite.escrow.functions.settle(campaign_id, bytes(batch))
        with reverts(EscrowInvalidAction, offset=GROUP_HEADER_BYTES, action=ACTION_COUNT):
            transact(suite.chain, suite.chain.accounts.attester, call)

    def test_each_reject_reason_names_the_rule_the_escrow_applied(self, suite: Suite, campaigns: CampaignFactory):
        chain_ = suite.chain
        consumer, stranger = chain_.accounts.consumers[0], chain_.accounts.consumers[1]
        campaigns.consent(consumer)
        consented_at = chain_.latest_timestamp()
        chain_.increase_time(2 * DAY)
        offered = {a: p for a, p in DEFAULT_PURPOSES.items() if a != Action.AD_CLICK}
        # enough budget for one install and one daily open, nothing more
        campaign_id = campaigns.create(
            budget=REWARDS[Action.INSTALL] + REWARDS[Action.DAILY_OPEN], purposes=offered, starts_at=consented_at
        )
        now = chain_.latest_timestamp()

        def at(action: Action, time: int = now, consumer_address: str = consumer.address) -> Engagement:
            return campaigns.engagement(campaign_id, consumer_address, action, time=time)

        install, daily = at(Action.INSTALL), at(Action.DAILY_OPEN)
        expected = {
            at(Action.INSTALL): RejectReason.LIFETIME_CAP_REACHED,
            at(Action.DAILY_OPEN): RejectReason.DAILY_CAP_REACHED,
            at(Action.DAILY_OPEN, now - DAY): RejectReason.STALE_DAY,
            at(Action.AD_CLICK): RejectReason.ACTION_NOT_OFFERED,
            at(Action.AD_VIEW, now + 1000): RejectReason.TIME_IN_FUTURE,
            at(Action.AD_VIEW, consented_at - 1): RejectReason.OUTSIDE_CAMPAIGN_DATES,
            at(Action.LOCATION_OPT_IN): RejectReason.BUDGET_EXHAUSTED,
            campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW, now, install.event_id): (
                RejectReason.DUPLICATE_EVENT
            ),
            at(Action.AD_VIEW, now, stranger.address): RejectReason.NO_CONSENT,
        }
        receipt = campaigns.settle(campaign_id, [install, daily, *expected])
        assert [p["event_id"] for p in campaigns.rewarded(receipt)] == [install.event_id, daily.event_id]
        assert campaigns.rejected(receipt) == {e.event_id: reason for e, reason in expected.items()}
        assert set(RejectReason) - {RejectReason.NONE} == set(expected.values())

    def test_campaign_status_follows_the_escrows_status(self, suite: Suite, campaigns: CampaignFactory):
        marketer = suite.chain.accounts.marketer
        campaign_id = campaigns.create()
        assert suite.campaign_state(campaign_id).status is CampaignStatus.ACTIVE
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        assert suite.campaign_state(campaign_id).status is CampaignStatus.PAUSED
