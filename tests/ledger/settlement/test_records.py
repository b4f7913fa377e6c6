"""ledger.settlement.records: the packed ``record`` word of CampaignEscrow's Rewarded log."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.contracts import events
from ledger.model import Action
from ledger.settlement.records import RewardRecord
from ledger.suite import Suite
from tests.contracts import conftest as contract_fixtures
from tests.contracts.helpers import REWARDS, CampaignFactory

# The contract tests' fixtures (an eth-tester chain, the suite deployed once, each test in a snapshot), reused.
chain, deployed, suite = contract_fixtures.chain, contract_fixtures.deployed, contract_fixtures.suite

MAX_CAMPAIGN_ID = 2**48 - 1  # ids fit the 48-bit campaign field (CampaignEscrow._create)
MAX_EVENT_ID = 2**48 - 1
MAX_TIME = 2**40 - 1
MAX_AMOUNT = 2**104 - 1

records = st.builds(
    RewardRecord,
    campaign_id=st.integers(0, MAX_CAMPAIGN_ID),
    event_id=st.integers(0, MAX_EVENT_ID),
    action=st.sampled_from(Action),
    time=st.integers(0, MAX_TIME),
    amount=st.integers(0, MAX_AMOUNT),
)


class TestRewardRecord:
    @given(
        st.one_of(
            records,
            st.just(RewardRecord(MAX_CAMPAIGN_ID, MAX_EVENT_ID, Action.SUBSCRIBE, MAX_TIME, MAX_AMOUNT)),
            st.just(RewardRecord(0, 0, Action.INSTALL, 0, 0)),
        )
    )
    def test_unpack_inverts_pack_up_to_every_fields_maximum(self, record):
        packed = record.pack()
        assert 0 <= packed < 2**248
        assert RewardRecord.unpack(packed) == record

    def test_pack_places_the_fields_as_icampaign_escrow_documents(self):
        record = RewardRecord(campaign_id=3, event_id=5, action=Action.AD_CLICK, time=7, amount=11)
        assert record.pack() == 11 | 7 << 104 | 5 << 144 | 4 << 192 | 3 << 200

    def test_fields_at_their_maxima_do_not_bleed_into_each_other(self):
        full = RewardRecord(MAX_CAMPAIGN_ID, MAX_EVENT_ID, Action.SUBSCRIBE, MAX_TIME, MAX_AMOUNT).pack()
        assert full == MAX_AMOUNT | MAX_TIME << 104 | MAX_EVENT_ID << 144 | 7 << 192 | MAX_CAMPAIGN_ID << 200
        only_amount = RewardRecord(0, 0, Action.INSTALL, 0, MAX_AMOUNT)
        assert RewardRecord.unpack(only_amount.pack()) == only_amount

    def test_a_rewarded_log_from_a_settled_batch_unpacks_to_the_settled_engagement(self, suite: Suite):
        campaigns = CampaignFactory(suite)
        consumer = suite.chain.accounts.consumers[0]
        campaigns.create()  # a second campaign, so the id in the record is not a default 1
        campaign_id = campaigns.create()
        assert campaign_id == 2
        campaigns.consent(consumer)
        now = suite.chain.increase_time(100)
        settled = [
            campaigns.engagement(campaign_id, consumer.address, Action.AD_CLICK, time=now, event_id=300),
            campaigns.engagement(campaign_id, consumer.address, Action.SUBSCRIBE, time=now - 50, event_id=2),
        ]
        receipt = campaigns.settle(campaign_id, settled)
        logs = events(suite.escrow, "Rewarded", receipt)
        assert [RewardRecord.unpack(int(log["record"])) for log in logs] == [
            RewardRecord(campaign_id, e.event_id, e.action, e.time, REWARDS[e.action]) for e in settled
        ]
        assert [(log["consumer"], bytes(log["evidenceHash"])) for log in logs] == [
            (consumer.address, e.evidence) for e in settled
        ]
