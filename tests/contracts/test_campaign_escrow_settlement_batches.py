"""CampaignEscrow.settle on whole batches: the accounting, records and logs of what it pays, the packed encoding
and malformed batches, and a batch sized to the transaction gas cap."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import keccak

from ledger.contracts import events, transact
from ledger.errors import EscrowInvalidAction, EscrowMalformedBatch
from ledger.model import Action, Purpose, RejectReason
from ledger.settlement.batch import TX_GAS_CAP, Engagement, encode_batch, estimate_gas, plan_batches
from ledger.settlement.records import RewardRecord
from tests.contracts.helpers import (
    DAY,
    PAID,
    REWARDED_TOPIC,
    REWARDS,
    TOKEN,
    account,
    batch_settled,
    evidence,
    is_settled,
    outcomes,
    reverts,
    settle_raw,
)

ADS = int(Purpose.ADS)


# --------------------------------------------------------------------------------------------------------
# paid engagements: accounting and logs
# --------------------------------------------------------------------------------------------------------


class TestSettlePays:
    def test_settle_pays_a_consented_engagement_into_the_consumers_accrued_balance(
        self, suite, campaigns, campaign_id, consented
    ):
        escrow_before = suite.balance(suite.escrow.address)
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK)])
        reward = REWARDS[Action.AD_CLICK]
        assert suite.accrued(campaign_id, consented.address) == reward
        state = suite.campaign_state(campaign_id)
        assert (state.budget, state.owed) == (1_000 * TOKEN - reward, reward)
        # settlement moves budget to owed; the tokens stay in escrow until claimed
        assert suite.balance(suite.escrow.address) == escrow_before

    def test_rewarded_log_carries_the_consumer_topic_the_packed_record_and_the_evidence(
        self, suite, campaigns, campaign_id, consented
    ):
        engagement = campaigns.engagement(campaign_id, consented.address, Action.INSTALL, event_id=77)
        receipt = campaigns.settle(campaign_id, [engagement])
        (event,) = events(suite.escrow, "Rewarded", receipt)
        assert event["consumer"] == consented.address
        assert bytes(event["evidenceHash"]) == evidence(77)
        assert RewardRecord.unpack(int(event["record"])) == RewardRecord(
            campaign_id=campaign_id,
            event_id=77,
            action=Action.INSTALL,
            time=engagement.time,
            amount=REWARDS[Action.INSTALL],
        )

    def test_rewarded_log_is_found_by_the_consumer_topic_alone(self, suite, campaigns, campaign_id, consented):
        receipt = campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        (log,) = [log for log in receipt["logs"] if bytes(log["topics"][0]) == REWARDED_TOPIC]
        assert bytes(log["topics"][1])[-20:] == bytes.fromhex(consented.address[2:])

    def test_batch_settled_reports_the_totals_and_the_budget_left(
        self, suite, campaigns, campaign_id, consented, attester, accounts
    ):
        stranger = accounts.consumers[1].address  # no consent
        batch = [
            campaigns.engagement(campaign_id, consented.address, Action.INSTALL),
            campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW),
            campaigns.engagement(campaign_id, stranger, Action.AD_VIEW),
        ]
        receipt = campaigns.settle(campaign_id, batch)
        amount = REWARDS[Action.INSTALL] + REWARDS[Action.AD_VIEW]
        assert batch_settled(suite, receipt) == {
            "campaignId": campaign_id,
            "attester": attester.address,
            "paid": 2,
            "rejected": 1,
            "amount": amount,
            "budget": 1_000 * TOKEN - amount,
        }

    def test_rejected_log_names_the_campaign_consumer_event_id_and_reason(
        self, suite, campaigns, campaign_id, accounts
    ):
        stranger = accounts.consumers[1].address
        engagement = campaigns.engagement(campaign_id, stranger, Action.AD_VIEW)
        receipt = campaigns.settle(campaign_id, [engagement])
        assert events(suite.escrow, "Rejected", receipt) == [
            {
                "campaignId": campaign_id,
                "consumer": stranger,
                "eventId": engagement.event_id,
                "reason": RejectReason.NO_CONSENT,
            }
        ]

    def test_every_engagement_gets_exactly_one_outcome_in_settling_order(
        self, campaigns, campaign_id, consented, accounts
    ):
        other = accounts.consumers[1]
        campaigns.consent(other)
        batch = [
            campaigns.engagement(campaign_id, consented.address, Action.INSTALL),
            campaigns.engagement(campaign_id, other.address, Action.INSTALL),
            campaigns.engagement(campaign_id, consented.address, Action.INSTALL),
        ]
        # encode_batch groups by consumer: the consumer's two engagements come first
        assert outcomes(campaigns.settle(campaign_id, batch)) == [
            (batch[0].event_id, PAID),
            (batch[2].event_id, RejectReason.LIFETIME_CAP_REACHED),
            (batch[1].event_id, PAID),
        ]

    def test_settle_marks_every_event_id_as_settled_whether_paid_or_rejected(
        self, suite, campaigns, campaign_id, consented, accounts
    ):
        paid = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)
        rejected = campaigns.engagement(campaign_id, accounts.consumers[1].address, Action.AD_VIEW)
        unsent = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)
        campaigns.settle(campaign_id, [paid, rejected])
        assert is_settled(suite, campaign_id, paid.event_id)
        assert is_settled(suite, campaign_id, rejected.event_id)
        assert not is_settled(suite, campaign_id, unsent.event_id)

    def test_event_ids_are_tracked_separately_across_bitmap_words_and_up_to_48_bits(
        self, suite, campaigns, campaign_id, consented
    ):
        edge_ids = [255, 256, 2**48 - 1]
        batch = [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=i) for i in edge_ids]
        receipt = campaigns.settle(campaign_id, batch)
        assert outcomes(receipt) == [(i, PAID) for i in edge_ids]
        assert [is_settled(suite, campaign_id, i) for i in (254, 255, 256, 257, 2**48 - 1)] == [
            False,
            True,
            True,
            False,
            True,
        ]

    def test_event_ids_are_per_campaign(self, campaigns, consented):
        first, second = campaigns.create(), campaigns.create()
        for campaign_id in (first, second):
            receipt = campaigns.settle(
                campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=5)]
            )
            assert outcomes(receipt) == [(5, PAID)]

    def test_zero_reward_email_open_is_recorded_as_paid_with_amount_zero(
        self, suite, campaigns, campaign_id, consented
    ):
        engagement = campaigns.engagement(campaign_id, consented.address, Action.EMAIL_OPEN)
        receipt = campaigns.settle(campaign_id, [engagement])
        assert outcomes(receipt) == [(engagement.event_id, PAID)]
        settled = batch_settled(suite, receipt)
        assert (settled["paid"], settled["amount"], settled["budget"]) == (1, 0, 1_000 * TOKEN)
        accrued, _, lifetime, _ = account(suite, campaign_id, consented.address)
        assert accrued == 0 and lifetime[Action.EMAIL_OPEN] == 1

    def test_a_consumer_split_across_two_groups_in_one_batch_is_accounted_correctly(
        self, suite, campaigns, campaign_id, consented, accounts
    ):
        other = accounts.consumers[1]
        campaigns.consent(other)
        install = campaigns.engagement(campaign_id, consented.address, Action.INSTALL)
        between = campaigns.engagement(campaign_id, other.address, Action.AD_VIEW)
        install_again = campaigns.engagement(campaign_id, consented.address, Action.INSTALL)
        click = campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK)
        # three groups: consumer, other, consumer again (what encode_batch would have merged)
        batch = encode_batch([install]) + encode_batch([between]) + encode_batch([install_again, click])
        receipt = settle_raw(suite, accounts.attester, campaign_id, batch)
        assert outcomes(receipt) == [
            (install.event_id, PAID),
            (between.event_id, PAID),
            (install_again.event_id, RejectReason.LIFETIME_CAP_REACHED),
            (click.event_id, PAID),
        ]
        accrued, _, lifetime, _ = account(suite, campaign_id, consented.address)
        assert accrued == REWARDS[Action.INSTALL] + REWARDS[Action.AD_CLICK]
        assert lifetime[Action.INSTALL] == 1 and lifetime[Action.AD_CLICK] == 1
        owed = REWARDS[Action.INSTALL] + REWARDS[Action.AD_CLICK] + REWARDS[Action.AD_VIEW]
        assert suite.campaign_state(campaign_id).owed == owed

    def test_any_attester_of_the_campaign_may_settle(self, suite, campaigns, consented, accounts):
        second = accounts.consumers[6]
        campaign_id = campaigns.create(attesters=[accounts.attester.address, second.address])
        receipt = campaigns.settle(
            campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)], attester=second
        )
        assert batch_settled(suite, receipt)["attester"] == second.address


# --------------------------------------------------------------------------------------------------------
# malformed batches
# --------------------------------------------------------------------------------------------------------


def group(consumer: str, count: int) -> bytes:
    return bytes.fromhex(consumer[2:]) + bytes([count])


def raw_engagement(action: int, event_id: int, time: int) -> bytes:
    return bytes([action]) + event_id.to_bytes(6, "big") + time.to_bytes(5, "big") + evidence(event_id)


class TestMalformedBatch:
    """Raw bytes crafted by hand: a group is consumer (20) | count (1), an engagement 44 bytes."""

    @pytest.fixture
    def one(self, suite, consented) -> bytes:
        """A valid one-engagement group (65 bytes)."""
        return group(consented.address, 1) + raw_engagement(Action.AD_VIEW, 0, suite.chain.latest_timestamp())

    def cases(self, consumer: str, one: bytes, now: int) -> dict[str, tuple[bytes, int]]:
        return {
            "empty": (b"", 0),
            "truncated-header": (group(consumer, 1)[:20], 0),
            "count-zero": (group(consumer, 0) + raw_engagement(Action.AD_VIEW, 1, now), 0),
            "zero-consumer": (group("0x" + "00" * 20, 1) + raw_engagement(Action.AD_VIEW, 1, now), 0),
            "truncated-engagement": (one[:-1], 21),
            "count-beyond-the-data": (group(consumer, 2) + one[21:], 21),
            "trailing-byte": (one + b"\x01", 65),
            "second-group-count-zero": (one + group(consumer, 0), 65),
            "second-group-truncated-engagement": (one + group(consumer, 1) + b"\x03" * 10, 86),
        }

    @pytest.mark.parametrize(
        "case",
        [
            "empty",
            "truncated-header",
            "count-zero",
            "zero-consumer",
            "truncated-engagement",
            "count-beyond-the-data",
            "trailing-byte",
            "second-group-count-zero",
            "second-group-truncated-engagement",
        ],
    )
    def test_settle_reverts_on_a_malformed_batch_at_the_offset_of_the_fault(
        self, suite, campaign_id, consented, attester, one, case
    ):
        batch, offset = self.cases(consented.address, one, suite.chain.latest_timestamp())[case]
        with reverts(EscrowMalformedBatch, offset=offset):
            settle_raw(suite, attester, campaign_id, batch)
        assert not is_settled(suite, campaign_id, 0)  # the valid part before the fault was not kept

    def test_settle_reverts_on_an_action_code_beyond_subscribe(self, suite, campaign_id, consented, attester):
        now = suite.chain.latest_timestamp()
        batch = group(consented.address, 1) + raw_engagement(8, 0, now)
        with reverts(EscrowInvalidAction, offset=21, action=8):
            settle_raw(suite, attester, campaign_id, batch)

    def test_an_invalid_action_in_a_later_engagement_reverts_the_whole_batch(
        self, suite, campaign_id, consented, attester
    ):
        now = suite.chain.latest_timestamp()
        batch = group(consented.address, 2) + raw_engagement(Action.AD_VIEW, 0, now) + raw_engagement(0xFF, 1, now)
        with reverts(EscrowInvalidAction, offset=65, action=0xFF):
            settle_raw(suite, attester, campaign_id, batch)
        assert not is_settled(suite, campaign_id, 0)

    def test_a_batch_crafted_by_hand_settles_like_an_encoded_one(self, suite, campaign_id, one, attester):
        assert outcomes(settle_raw(suite, attester, campaign_id, one)) == [(0, PAID)]


# --------------------------------------------------------------------------------------------------------
# a batch sized to the transaction gas cap
# --------------------------------------------------------------------------------------------------------


class TestGasCap:
    CONSUMERS = 10
    ENGAGEMENTS = 4_000

    def test_the_first_planned_batch_near_the_gas_cap_settles_below_the_cap_and_the_estimate(
        self, suite, campaigns, relayer
    ):
        chain = suite.chain
        brand = chain.accounts.marketer.address
        # new consumers, never seen by the escrow; they consent by signature, relayed, so they need no ETH
        consumers = [Account.from_key(keccak(text=f"gas-cap-consumer-{i}")) for i in range(self.CONSUMERS)]
        deadline, expires = chain.latest_timestamp() + 3600, chain.latest_timestamp() + 90 * DAY
        for consumer in consumers:
            signature = suite.sign_grant(consumer, brand, ADS, expires, deadline)
            call = suite.registry.functions.grantBySig(consumer.address, brand, ADS, expires, deadline, signature)
            transact(chain, relayer, call)
        campaign_id = campaigns.create(budget=10 * TOKEN)
        now = chain.latest_timestamp()
        engagements = [
            Engagement(consumers[i % self.CONSUMERS].address, Action.AD_VIEW, i, now, evidence(i))
            for i in range(self.ENGAGEMENTS)
        ]
        batch = next(plan_batches(engagements, gas_limit=TX_GAS_CAP))
        assert 2_000 < len(batch) < self.ENGAGEMENTS
        # sent with exactly the cap as its gas limit: it must fit (and eth-tester's estimate would run it ~13 times)
        call = suite.escrow.functions.settle(campaign_id, encode_batch(batch))
        receipt = transact(chain, chain.accounts.attester, call, gas=TX_GAS_CAP)
        assert receipt["gasUsed"] < TX_GAS_CAP
        assert receipt["gasUsed"] < estimate_gas(batch) <= TX_GAS_CAP
        settled = batch_settled(suite, receipt)
        assert (settled["paid"], settled["rejected"]) == (len(batch), 0)
        assert settled["amount"] == len(batch) * REWARDS[Action.AD_VIEW]
