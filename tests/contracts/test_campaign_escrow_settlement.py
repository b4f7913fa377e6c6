"""CampaignEscrow.settle and settleBySig: every rule and RejectReason, the packed encoding, the logs, the gas cap."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import TxReceipt

from ledger import typed_data
from ledger.contracts import events, read, transact
from ledger.errors import (
    EscrowCampaignPaused,
    EscrowExpiredSignature,
    EscrowInvalidAction,
    EscrowInvalidSigner,
    EscrowMalformedBatch,
    EscrowNotAttester,
    EscrowUnknownCampaign,
)
from ledger.model import Action, Purpose, RejectReason
from ledger.settlement.batch import TX_GAS_CAP, Engagement, encode_batch, estimate_gas, plan_batches
from ledger.settlement.records import RewardRecord
from ledger.suite import Suite
from tests.contracts.helpers import DAY, REWARDS, TOKEN, CampaignFactory, evidence, next_timestamp, reverts
from tests.contracts.signed_behavior import SignedAction, SignedActionBehavior

PAID = RejectReason.NONE
REWARDED_TOPIC = keccak(text="Rewarded(address,uint256,bytes32)")
REJECTED_TOPIC = keccak(text="Rejected(uint256,address,uint256,uint8)")
ADS, EMAIL, PROFILE = int(Purpose.ADS), int(Purpose.EMAIL), int(Purpose.PROFILE)


# The tests' engagements carry evidence(event id) (helpers.evidence), so a Rewarded log names its engagement by
# its evidence hash too: the rule tests then do not depend on the record packing, which has tests of its own.
EVIDENCE_IDS = {evidence(i): i for i in [*range(1024), 2**48 - 1]}


def outcomes(receipt: TxReceipt) -> list[tuple[int, RejectReason]]:
    """(event id, PAID or the reject reason) for every engagement, in the order the contract settled them."""
    found = []
    for log in receipt["logs"]:
        topic, data = bytes(log["topics"][0]), bytes(log["data"])
        if topic == REWARDED_TOPIC:
            found.append((EVIDENCE_IDS[data[32:64]], PAID))
        elif topic == REJECTED_TOPIC:
            found.append((int.from_bytes(data[:32], "big"), RejectReason(int.from_bytes(data[32:], "big"))))
    return found


def batch_settled(suite: Suite, receipt: TxReceipt) -> dict:
    (event,) = events(suite.escrow, "BatchSettled", receipt)
    return event


def account(suite: Suite, campaign_id: int, consumer: str) -> tuple[int, int, list[int], list[int]]:
    accrued, day, lifetime, daily = read(suite.escrow.functions.accountOf(campaign_id, consumer))
    return int(accrued), int(day), list(lifetime), list(daily)


def is_settled(suite: Suite, campaign_id: int, event_id: int) -> bool:
    return bool(read(suite.escrow.functions.isSettled(campaign_id, event_id)))


def settle_raw(suite: Suite, attester: LocalAccount, campaign_id: int, batch: bytes) -> TxReceipt:
    return transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, batch))


@pytest.fixture
def campaign_id(campaigns: CampaignFactory) -> int:
    return campaigns.create()


@pytest.fixture
def consented(campaigns: CampaignFactory, consumer: LocalAccount) -> LocalAccount:
    """The consumer, with every purpose granted to the default brand for 90 days."""
    campaigns.consent(consumer)
    return consumer


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
# each RejectReason
# --------------------------------------------------------------------------------------------------------


class TestDuplicateEvent:
    def test_the_same_event_id_twice_in_one_batch_is_paid_once(self, suite, campaigns, campaign_id, consented):
        first = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=3)
        again = campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK, event_id=3)
        assert outcomes(campaigns.settle(campaign_id, [first, again])) == [(3, PAID), (3, RejectReason.DUPLICATE_EVENT)]
        assert suite.accrued(campaign_id, consented.address) == REWARDS[Action.AD_VIEW]

    def test_an_event_id_settled_in_an_earlier_batch_is_a_duplicate(self, suite, campaigns, campaign_id, consented):
        first = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=3)
        campaigns.settle(campaign_id, [first])
        receipt = campaigns.settle(campaign_id, [first])
        assert outcomes(receipt) == [(3, RejectReason.DUPLICATE_EVENT)]
        assert batch_settled(suite, receipt)["amount"] == 0
        assert suite.accrued(campaign_id, consented.address) == REWARDS[Action.AD_VIEW]

    def test_duplicates_are_found_when_ids_alternate_between_bitmap_words(
        self, suite, campaigns, campaign_id, consented
    ):
        """The settled-ids word is cached while consecutive ids share it; switching words must not lose a bit."""
        order = [0, 256, 1, 0, 257, 256, 512, 1]
        batch = [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=i) for i in order]
        dup = RejectReason.DUPLICATE_EVENT
        assert outcomes(campaigns.settle(campaign_id, batch)) == [
            (0, PAID),
            (256, PAID),
            (1, PAID),
            (0, dup),
            (257, PAID),
            (256, dup),
            (512, PAID),
            (1, dup),
        ]
        assert all(is_settled(suite, campaign_id, i) for i in order)

    def test_duplicates_are_found_across_consumer_groups_and_across_batches(
        self, suite, campaigns, campaign_id, consented, accounts
    ):
        other = accounts.consumers[1]
        campaigns.consent(other)
        first = [
            campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, event_id=300),
            campaigns.engagement(campaign_id, other.address, Action.AD_VIEW, event_id=300),  # same word, next group
            campaigns.engagement(campaign_id, other.address, Action.AD_VIEW, event_id=5),
        ]
        dup = RejectReason.DUPLICATE_EVENT
        assert outcomes(campaigns.settle(campaign_id, first)) == [(300, PAID), (300, dup), (5, PAID)]
        again = [campaigns.engagement(campaign_id, other.address, Action.AD_VIEW, event_id=i) for i in (5, 301, 300)]
        assert outcomes(campaigns.settle(campaign_id, again)) == [(5, dup), (301, PAID), (300, dup)]

    def test_a_rejected_event_id_is_consumed_and_cannot_be_paid_later(self, suite, campaigns, campaign_id, consumer):
        engagement = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        assert outcomes(campaigns.settle(campaign_id, [engagement])) == [(engagement.event_id, RejectReason.NO_CONSENT)]
        campaigns.consent(consumer)
        later = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW, event_id=engagement.event_id)
        assert outcomes(campaigns.settle(campaign_id, [later])) == [(engagement.event_id, RejectReason.DUPLICATE_EVENT)]
        assert suite.accrued(campaign_id, consumer.address) == 0


class TestActionNotOffered:
    def test_an_action_without_required_purposes_is_not_offered(self, suite, campaigns, consented):
        purposes = {Action.AD_VIEW: ADS}
        campaign_id = campaigns.create(purposes=purposes)
        view = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)
        click = campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK)
        assert outcomes(campaigns.settle(campaign_id, [view, click])) == [
            (view.event_id, PAID),
            (click.event_id, RejectReason.ACTION_NOT_OFFERED),
        ]


class TestTimeInFuture:
    def test_an_engagement_after_the_settling_block_is_rejected(self, suite, campaigns, campaign_id, consented):
        block_time = next_timestamp(suite.chain)
        now = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=block_time)
        future = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=block_time + 1)
        assert outcomes(campaigns.settle(campaign_id, [now, future])) == [
            (now.event_id, PAID),
            (future.event_id, RejectReason.TIME_IN_FUTURE),
        ]


class TestOutsideCampaignDates:
    def test_an_engagement_before_starts_at_is_rejected_and_one_at_starts_at_is_paid(self, suite, campaigns, consumer):
        campaigns.consent(consumer)
        starts_at = suite.chain.latest_timestamp() + 60
        suite.chain.increase_time(DAY)
        campaign_id = campaigns.create(starts_at=starts_at)
        before = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW, time=starts_at - 1)
        at = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW, time=starts_at)
        assert outcomes(campaigns.settle(campaign_id, [before, at])) == [
            (before.event_id, RejectReason.OUTSIDE_CAMPAIGN_DATES),
            (at.event_id, PAID),
        ]

    def test_an_engagement_after_ends_at_is_rejected_and_one_at_ends_at_is_paid_after_the_end(
        self, suite, campaigns, consented
    ):
        ends_at = suite.chain.latest_timestamp() + DAY
        campaign_id = campaigns.create(ends_at=ends_at)
        suite.chain.increase_time(2 * DAY)
        at = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=ends_at)
        after = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=ends_at + 1)
        assert outcomes(campaigns.settle(campaign_id, [at, after])) == [
            (at.event_id, PAID),
            (after.event_id, RejectReason.OUTSIDE_CAMPAIGN_DATES),
        ]


class TestNoConsent:
    def test_settle_rejects_a_consumer_who_never_granted_consent(self, campaigns, campaign_id, consumer):
        engagement = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        assert outcomes(campaigns.settle(campaign_id, [engagement])) == [(engagement.event_id, RejectReason.NO_CONSENT)]

    def test_settle_rejects_an_engagement_whose_purpose_was_revoked_before_settlement(
        self, suite, campaigns, campaign_id, consented
    ):
        view = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)
        click = campaigns.engagement(campaign_id, consented.address, Action.EMAIL_CLICK)
        brand = suite.chain.accounts.marketer.address
        transact(suite.chain, consented, suite.registry.functions.revoke(brand, ADS))  # EMAIL stays
        assert outcomes(campaigns.settle(campaign_id, [view, click])) == [
            (view.event_id, RejectReason.NO_CONSENT),
            (click.event_id, PAID),
        ]

    def test_settle_rejects_an_engagement_when_consent_expired_before_settlement(
        self, suite, campaigns, campaign_id, consumer
    ):
        campaigns.consent(consumer, days=1)
        engagement = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)  # while consent was active
        suite.chain.increase_time(DAY + 1)
        assert outcomes(campaigns.settle(campaign_id, [engagement])) == [(engagement.event_id, RejectReason.NO_CONSENT)]

    def test_settle_rejects_an_engagement_before_consent_was_granted(self, campaigns, campaign_id, consumer):
        early = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        campaigns.consent(consumer)
        late = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        assert outcomes(campaigns.settle(campaign_id, [early, late])) == [
            (early.event_id, RejectReason.NO_CONSENT),
            (late.event_id, PAID),
        ]

    def test_settle_rejects_consent_to_the_wrong_purpose(self, campaigns, campaign_id, consumer):
        campaigns.consent(consumer, purposes=EMAIL)
        view = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)  # needs ADS
        click = campaigns.engagement(campaign_id, consumer.address, Action.EMAIL_CLICK)
        assert outcomes(campaigns.settle(campaign_id, [view, click])) == [
            (view.event_id, RejectReason.NO_CONSENT),
            (click.event_id, PAID),
        ]

    def test_settle_rejects_consent_given_to_another_brand(self, campaigns, campaign_id, consumer, accounts):
        campaigns.consent(consumer, brand=accounts.deployer.address)
        engagement = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        assert outcomes(campaigns.settle(campaign_id, [engagement])) == [(engagement.event_id, RejectReason.NO_CONSENT)]

    def test_an_action_requiring_two_purposes_needs_both(self, campaigns, accounts):
        campaign_id = campaigns.create(purposes={Action.AD_VIEW: ADS | PROFILE})
        partial, full = accounts.consumers[0], accounts.consumers[1]
        campaigns.consent(partial, purposes=ADS)
        campaigns.consent(full, purposes=ADS | PROFILE)
        batch = [campaigns.engagement(campaign_id, c.address, Action.AD_VIEW) for c in (partial, full)]
        assert outcomes(campaigns.settle(campaign_id, batch)) == [
            (batch[0].event_id, RejectReason.NO_CONSENT),
            (batch[1].event_id, PAID),
        ]

    def test_an_action_requiring_two_purposes_needs_both_granted_by_the_engagement_time(self, campaigns, consumer):
        campaign_id = campaigns.create(purposes={Action.AD_VIEW: ADS | PROFILE})
        campaigns.consent(consumer, purposes=ADS)
        early = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)  # PROFILE not yet granted
        campaigns.consent(consumer, purposes=PROFILE)
        late = campaigns.engagement(campaign_id, consumer.address, Action.AD_VIEW)
        assert outcomes(campaigns.settle(campaign_id, [early, late])) == [
            (early.event_id, RejectReason.NO_CONSENT),
            (late.event_id, PAID),
        ]


class TestLifetimeCap:
    @pytest.mark.parametrize("action", [Action.INSTALL, Action.LOCATION_OPT_IN])
    def test_a_once_per_consumer_action_is_paid_once_within_a_batch(
        self, suite, campaigns, campaign_id, consented, action
    ):
        first, second = (campaigns.engagement(campaign_id, consented.address, action) for _ in range(2))
        assert outcomes(campaigns.settle(campaign_id, [first, second])) == [
            (first.event_id, PAID),
            (second.event_id, RejectReason.LIFETIME_CAP_REACHED),
        ]
        assert account(suite, campaign_id, consented.address)[2][action] == 1

    @pytest.mark.parametrize("action", [Action.INSTALL, Action.LOCATION_OPT_IN])
    def test_a_once_per_consumer_action_is_refused_in_a_later_batch(self, campaigns, campaign_id, consented, action):
        campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, action)])
        later = campaigns.engagement(campaign_id, consented.address, action)
        assert outcomes(campaigns.settle(campaign_id, [later])) == [(later.event_id, RejectReason.LIFETIME_CAP_REACHED)]

    def test_the_lifetime_cap_is_per_consumer(self, campaigns, campaign_id, consented, accounts):
        other = accounts.consumers[1]
        campaigns.consent(other)
        batch = [campaigns.engagement(campaign_id, c.address, Action.INSTALL) for c in (consented, other)]
        assert [reason for _, reason in outcomes(campaigns.settle(campaign_id, batch))] == [PAID, PAID]

    def test_an_uncapped_count_saturates_at_255_without_touching_the_next_action(
        self, suite, campaigns, campaign_id, consented, attester
    ):
        views = [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW) for _ in range(257)]
        batch = encode_batch(views)  # two groups: 255 + 2
        receipt = transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, batch), gas=TX_GAS_CAP)
        assert batch_settled(suite, receipt)["paid"] == 257
        accrued, _, lifetime, _ = account(suite, campaign_id, consented.address)
        assert accrued == 257 * REWARDS[Action.AD_VIEW]
        assert lifetime[Action.AD_VIEW] == 255 and lifetime[Action.AD_CLICK] == 0

    def test_a_cap_of_three_pays_three(self, campaigns, consented):
        campaign_id = campaigns.create(lifetime_caps={Action.AD_CLICK: 3})
        batch = [campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK) for _ in range(4)]
        assert [reason for _, reason in outcomes(campaigns.settle(campaign_id, batch))] == [
            PAID,
            PAID,
            PAID,
            RejectReason.LIFETIME_CAP_REACHED,
        ]


class TestDailyCap:
    @pytest.fixture
    def day(self, suite, consented) -> int:
        """The first whole UTC day after the consent was granted, now three days in the past."""
        granted = suite.chain.latest_timestamp()
        suite.chain.increase_time(3 * DAY)
        return granted // DAY + 1

    def test_daily_open_twice_on_one_utc_day_is_paid_once_and_again_the_next_day(
        self, suite, campaigns, campaign_id, consented, day
    ):
        first = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY + 60)
        second = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY + 120)
        next_day = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=(day + 1) * DAY)
        assert outcomes(campaigns.settle(campaign_id, [first, second, next_day])) == [
            (first.event_id, PAID),
            (second.event_id, RejectReason.DAILY_CAP_REACHED),
            (next_day.event_id, PAID),
        ]
        accrued, last_day, lifetime, daily = account(suite, campaign_id, consented.address)
        assert (accrued, last_day) == (2 * REWARDS[Action.DAILY_OPEN], day + 1)
        assert (lifetime[Action.DAILY_OPEN], daily[Action.DAILY_OPEN]) == (2, 1)

    def test_the_last_second_of_a_day_and_the_first_of_the_next_are_different_days(
        self, campaigns, campaign_id, consented, day
    ):
        batch = [
            campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=t)
            for t in ((day + 1) * DAY - 1, (day + 1) * DAY)
        ]
        assert [reason for _, reason in outcomes(campaigns.settle(campaign_id, batch))] == [PAID, PAID]

    def test_the_daily_cap_holds_across_batches(self, campaigns, campaign_id, consented, day):
        campaigns.settle(
            campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY)]
        )
        again = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY + 1)
        assert outcomes(campaigns.settle(campaign_id, [again])) == [(again.event_id, RejectReason.DAILY_CAP_REACHED)]

    def test_an_earlier_day_after_a_later_one_is_stale(self, campaigns, campaign_id, consented, day):
        later = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=(day + 1) * DAY)
        earlier = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY)
        assert outcomes(campaigns.settle(campaign_id, [later, earlier])) == [
            (later.event_id, PAID),
            (earlier.event_id, RejectReason.STALE_DAY),
        ]

    def test_an_earlier_day_is_stale_in_a_later_batch_too(self, campaigns, campaign_id, consented, day):
        campaigns.settle(
            campaign_id,
            [campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=(day + 1) * DAY)],
        )
        earlier = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY)
        assert outcomes(campaigns.settle(campaign_id, [earlier])) == [(earlier.event_id, RejectReason.STALE_DAY)]

    def test_the_latest_day_is_shared_by_every_daily_capped_action(self, campaigns, consented, day):
        campaign_id = campaigns.create(starts_at=day * DAY, daily_caps={Action.DAILY_OPEN: 1, Action.AD_VIEW: 2})
        view_later = campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=(day + 1) * DAY)
        open_earlier = campaigns.engagement(campaign_id, consented.address, Action.DAILY_OPEN, time=day * DAY)
        uncapped = campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK, time=day * DAY)
        assert outcomes(campaigns.settle(campaign_id, [view_later, open_earlier, uncapped])) == [
            (view_later.event_id, PAID),
            (open_earlier.event_id, RejectReason.STALE_DAY),
            (uncapped.event_id, PAID),
        ]

    def test_a_daily_cap_of_two_pays_two_a_day(self, campaigns, consented, day):
        campaign_id = campaigns.create(starts_at=day * DAY, daily_caps={Action.AD_VIEW: 2})
        batch = [
            campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW, time=day * DAY + k) for k in range(3)
        ]
        assert [reason for _, reason in outcomes(campaigns.settle(campaign_id, batch))] == [
            PAID,
            PAID,
            RejectReason.DAILY_CAP_REACHED,
        ]


class TestBudgetExhausted:
    CLICK, VIEW = REWARDS[Action.AD_CLICK], REWARDS[Action.AD_VIEW]

    def test_a_batch_over_budget_pays_the_first_engagements_and_rejects_the_rest(self, suite, campaigns, consented):
        campaign_id = campaigns.create(budget=3 * self.CLICK)
        batch = [campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK) for _ in range(5)]
        receipt = campaigns.settle(campaign_id, batch)
        assert [reason for _, reason in outcomes(receipt)] == [PAID] * 3 + [RejectReason.BUDGET_EXHAUSTED] * 2
        settled = batch_settled(suite, receipt)
        assert (settled["paid"], settled["rejected"], settled["amount"], settled["budget"]) == (3, 2, 3 * self.CLICK, 0)
        state = suite.campaign_state(campaign_id)
        assert (state.budget, state.owed) == (0, 3 * self.CLICK)

    def test_a_reward_above_the_budget_left_is_rejected_while_smaller_ones_are_still_paid(
        self, suite, campaigns, consented
    ):
        campaign_id = campaigns.create(budget=2 * self.CLICK + self.VIEW)
        clicks = [campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK) for _ in range(3)]
        view, view_again = (campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW) for _ in range(2))
        email_open = campaigns.engagement(campaign_id, consented.address, Action.EMAIL_OPEN)
        receipt = campaigns.settle(campaign_id, [*clicks, view, view_again, email_open])
        assert [reason for _, reason in outcomes(receipt)] == [
            PAID,
            PAID,
            RejectReason.BUDGET_EXHAUSTED,  # VIEW left, below a click
            PAID,  # exactly the budget left
            RejectReason.BUDGET_EXHAUSTED,  # budget now 0
            PAID,  # a zero reward is still recorded at a zero budget
        ]
        assert suite.campaign_state(campaign_id).budget == 0

    def test_a_refusal_for_budget_does_not_use_up_a_lifetime_cap(self, suite, campaigns, consented, marketer):
        campaign_id = campaigns.create(budget=REWARDS[Action.INSTALL] - 1)
        refused = campaigns.engagement(campaign_id, consented.address, Action.INSTALL)
        assert outcomes(campaigns.settle(campaign_id, [refused])) == [(refused.event_id, RejectReason.BUDGET_EXHAUSTED)]
        assert account(suite, campaign_id, consented.address)[2][Action.INSTALL] == 0
        transact(suite.chain, marketer, suite.token.functions.approve(suite.escrow.address, 1))
        transact(suite.chain, marketer, suite.escrow.functions.topUp(campaign_id, 1))
        retry = campaigns.engagement(campaign_id, consented.address, Action.INSTALL)
        assert outcomes(campaigns.settle(campaign_id, [retry])) == [(retry.event_id, PAID)]


# --------------------------------------------------------------------------------------------------------
# who may settle, and malformed batches
# --------------------------------------------------------------------------------------------------------


class TestSettleRefusals:
    def test_settle_reverts_on_a_paused_campaign(self, suite, campaigns, campaign_id, consented, marketer):
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

    def test_settle_reverts_for_an_account_that_is_not_an_attester(self, campaigns, campaign_id, consented, accounts):
        outsider = accounts.consumers[5]
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=outsider.address):
            campaigns.settle(
                campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)], attester=outsider
            )

    def test_settle_reverts_for_an_attester_of_another_campaign(self, campaigns, consented, accounts):
        other_attester = accounts.consumers[5]
        campaigns.create(attesters=[other_attester.address])
        campaign_id = campaigns.create()
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=other_attester.address):
            campaigns.settle(
                campaign_id,
                [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)],
                attester=other_attester,
            )

    def test_settle_reverts_for_a_removed_attester(self, suite, campaigns, campaign_id, consented, marketer, attester):
        transact(suite.chain, marketer, suite.escrow.functions.removeAttester(campaign_id, attester.address))
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=attester.address):
            campaigns.settle(campaign_id, [campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

    def test_a_settle_sent_with_its_own_gas_limit_still_reverts_with_the_named_error(
        self, suite, campaigns, campaign_id, consented, marketer, attester
    ):
        """No estimate stops it first: the transaction is mined and fails, and the replayed revert is named."""
        transact(suite.chain, marketer, suite.escrow.functions.pause(campaign_id))
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        with reverts(EscrowCampaignPaused, campaign_id=campaign_id):
            transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, batch), gas=1_000_000)

    def test_settle_reverts_on_an_unknown_campaign(self, suite, campaigns, consented, attester):
        batch = encode_batch([campaigns.engagement(99, consented.address, Action.AD_VIEW)])
        with reverts(EscrowUnknownCampaign, campaign_id=99):
            settle_raw(suite, attester, 99, batch)


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
# settleBySig
# --------------------------------------------------------------------------------------------------------


def escrow_nonce(suite: Suite, account: str) -> int:
    return int(suite.escrow.functions.nonces(account).call())


def relay_settlement(
    suite: Suite, relayer: LocalAccount, campaign_id: int, batch: bytes, attester: str, deadline: int, signature: bytes
) -> TxReceipt:
    call = suite.escrow.functions.settleBySig(campaign_id, batch, attester, deadline, signature)
    return transact(suite.chain, relayer, call)


class TestSettleBySig:
    def test_settle_by_sig_relayed_by_another_account_settles_for_the_attester(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_CLICK)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, batch, deadline)
        attester_eth = suite.chain.balance(attester.address)
        receipt = relay_settlement(suite, relayer, campaign_id, batch, attester.address, deadline, signature)
        assert batch_settled(suite, receipt)["attester"] == attester.address
        assert suite.accrued(campaign_id, consented.address) == REWARDS[Action.AD_CLICK]
        assert suite.chain.balance(attester.address) == attester_eth
        assert escrow_nonce(suite, attester.address) == 1

    def test_settle_by_sig_reverts_when_the_relayer_changes_the_batch(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        signed = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        changed = encode_batch([campaigns.engagement(campaign_id, relayer.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, signed, deadline)
        with reverts(EscrowInvalidSigner, expected=attester.address):
            relay_settlement(suite, relayer, campaign_id, changed, attester.address, deadline, signature)

    def test_settle_by_sig_reverts_when_the_relayer_changes_the_campaign(
        self, suite, campaigns, campaign_id, consented, attester, relayer
    ):
        other = campaigns.create()
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(attester, campaign_id, batch, deadline)
        with reverts(EscrowInvalidSigner, expected=attester.address):
            relay_settlement(suite, relayer, other, batch, attester.address, deadline, signature)

    def test_settle_by_sig_signed_by_a_non_attester_reverts_not_attester(
        self, suite, campaigns, campaign_id, consented, relayer, accounts
    ):
        outsider = accounts.consumers[5]
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])
        deadline = suite.chain.latest_timestamp() + 3600
        signature = suite.sign_settlement(outsider, campaign_id, batch, deadline)
        with reverts(EscrowNotAttester, campaign_id=campaign_id, caller=outsider.address):
            relay_settlement(suite, relayer, campaign_id, batch, outsider.address, deadline, signature)


class TestSettleBySigSignature(SignedActionBehavior):
    @pytest.fixture
    def signed_action(self, suite, campaigns, campaign_id, consented, attester, relayer) -> SignedAction:
        batch = encode_batch([campaigns.engagement(campaign_id, consented.address, Action.AD_VIEW)])

        def sign(signer: LocalAccount, domain: typed_data.Domain, deadline: int) -> bytes:
            nonce = escrow_nonce(suite, attester.address)
            message = typed_data.settlement_message(attester.address, campaign_id, batch, nonce, deadline)
            return typed_data.sign(signer, domain, "Settlement", message)

        def relay(signature: bytes, deadline: int) -> TxReceipt:
            return relay_settlement(suite, relayer, campaign_id, batch, attester.address, deadline, signature)

        return SignedAction(
            owner=attester,
            domain=suite.escrow_domain,
            sign=sign,
            relay=relay,
            nonce=lambda: escrow_nonce(suite, attester.address),
            expired_error=EscrowExpiredSignature,
            invalid_signer_error=EscrowInvalidSigner,
            invalid_signer_field="expected",
        )


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
