"""CampaignEscrow.settle: each RejectReason (duplicates, dates and time, consent, caps, budget) and the rule
behind it."""

from __future__ import annotations

import pytest

from ledger.contracts import transact
from ledger.model import Action, Purpose, RejectReason
from ledger.settlement.batch import TX_GAS_CAP, encode_batch
from tests.contracts.helpers import (
    DAY,
    PAID,
    REWARDS,
    account,
    batch_settled,
    is_settled,
    outcomes,
    pinned_next_timestamp,
)

ADS, EMAIL, PROFILE = int(Purpose.ADS), int(Purpose.EMAIL), int(Purpose.PROFILE)


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
        block_time = pinned_next_timestamp(suite.chain)
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
