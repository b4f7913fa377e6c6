"""ledger.settlement.batch: the packed settle() batch of ICampaignEscrow, and batches planned under a gas limit."""

from __future__ import annotations

import pytest
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.contracts import transact
from ledger.errors import EscrowMalformedBatch
from ledger.model import Action
from ledger.settlement.batch import (
    ENGAGEMENT_BYTES,
    GAS_PER_BATCH,
    GAS_PER_BITMAP_WORD,
    GAS_PER_ENGAGEMENT,
    GAS_PER_NEW_GROUP,
    GROUP_HEADER_BYTES,
    MAX_EVENT_ID,
    MAX_TIME,
    TX_GAS_CAP,
    Engagement,
    decode_batch,
    encode_batch,
    estimate_gas,
    group_by_consumer,
    plan_batches,
)
from ledger.suite import Suite
from tests.contracts import conftest as contract_fixtures
from tests.contracts.helpers import CampaignFactory, reverts

# The contract tests' fixtures (an eth-tester chain, the suite deployed once, each test in a snapshot), reused.
chain, deployed, suite = contract_fixtures.chain, contract_fixtures.deployed, contract_fixtures.suite

ALICE = to_checksum_address("0x" + "a1" * 20)
BOB = to_checksum_address("0x" + "b2" * 20)
CAROL = to_checksum_address("0x" + "c3" * 20)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
T0 = 1_750_000_000
ONE_ENGAGEMENT_GAS = GAS_PER_BATCH + GAS_PER_NEW_GROUP + GAS_PER_ENGAGEMENT + GAS_PER_BITMAP_WORD


def engagement(consumer: str = ALICE, event_id: int = 0, action: Action = Action.AD_VIEW, time: int = T0) -> Engagement:
    return Engagement(consumer, action, event_id, time, keccak(text=f"evidence-{event_id}"))


def headers(batch: bytes) -> list[tuple[str, int]]:
    """(consumer, count) of each group, read straight from the bytes."""
    found, offset = [], 0
    while offset < len(batch):
        count = batch[offset + 20]
        found.append((to_checksum_address(batch[offset : offset + 20]), count))
        offset += GROUP_HEADER_BYTES + count * ENGAGEMENT_BYTES
    assert offset == len(batch)
    return found


class TestEngagement:
    def test_pack_lays_out_action_event_id_time_and_evidence_big_endian(self):
        packed = Engagement(ALICE, Action.AD_CLICK, 0x010203040506, 0x0708090A0B, b"\xee" * 32).pack()
        assert packed == bytes.fromhex("04" + "010203040506" + "0708090a0b" + "ee" * 32)
        assert len(packed) == ENGAGEMENT_BYTES == 1 + 6 + 5 + 32

    def test_field_maxima_are_accepted(self):
        packed = Engagement(ALICE, Action.SUBSCRIBE, MAX_EVENT_ID, MAX_TIME, b"\x00" * 32).pack()
        assert packed[:12] == bytes.fromhex("07" + "ff" * 6 + "ff" * 5)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("event_id", 2**48, "48 bits"),
            ("event_id", -1, "48 bits"),
            ("time", 2**40, "40 bits"),
            ("time", -1, "40 bits"),
            ("evidence", b"\x00" * 31, "32 bytes"),
            ("evidence", b"\x00" * 33, "32 bytes"),
            ("action", 8, "8"),
        ],
        ids=[
            "event-id-49-bits",
            "event-id-negative",
            "time-41-bits",
            "time-negative",
            "evidence-31",
            "evidence-33",
            "action-8",
        ],
    )
    def test_engagement_refuses_a_field_that_does_not_fit(self, field, value, message):
        fields = {"consumer": ALICE, "action": Action.AD_VIEW, "event_id": 1, "time": T0, "evidence": b"\x00" * 32}
        with pytest.raises(ValueError, match=message):
            Engagement(**{**fields, field: value})

    def test_engagement_refuses_the_zero_address_as_consumer(self):
        # the escrow reverts a whole batch with a zero-address group, so it must never be built
        with pytest.raises(ValueError, match="zero address"):
            engagement(ZERO_ADDRESS)


class TestGroupByConsumer:
    def test_checksum_and_lowercase_addresses_of_one_consumer_share_a_group(self):
        a, b = engagement(ALICE, 1), engagement(ALICE.lower(), 2)
        assert group_by_consumer([a, b]) == {ALICE: [a, b]}

    def test_groups_keep_first_seen_order_and_each_consumers_input_order(self):
        a1, b1, a2, c1, b2 = (engagement(c, i) for i, c in enumerate([ALICE, BOB, ALICE, CAROL, BOB]))
        groups = group_by_consumer([a1, b1, a2, c1, b2])
        assert list(groups) == [ALICE, BOB, CAROL]
        assert groups == {ALICE: [a1, a2], BOB: [b1, b2], CAROL: [c1]}


class TestEncodeBatch:
    def test_one_engagement_matches_the_documented_layout_byte_for_byte(self):
        e = Engagement(ALICE, Action.EMAIL_CLICK, 5, T0, b"\x11" * 32)
        expected = bytes.fromhex(
            "a1" * 20  # consumer
            + "01"  # count
            + "06"  # action EMAIL_CLICK
            + "000000000005"  # eventId, uint48 big-endian
            + f"{T0:010x}"  # time, uint40 big-endian
            + "11" * 32  # evidenceHash
        )
        assert encode_batch([e]) == expected
        assert len(expected) == GROUP_HEADER_BYTES + ENGAGEMENT_BYTES

    def test_a_consumers_engagements_share_one_group_whatever_the_input_order(self):
        items = [engagement(c, i) for i, c in enumerate([ALICE, BOB, ALICE.lower(), BOB, ALICE])]
        batch = encode_batch(items)
        assert headers(batch) == [(ALICE, 3), (BOB, 2)]
        assert [e.event_id for e in decode_batch(batch)] == [0, 2, 4, 1, 3]

    def test_a_consumer_with_600_engagements_is_split_into_groups_of_255_255_and_90(self):
        items = [engagement(ALICE, i) for i in range(600)]
        batch = encode_batch(items)
        assert headers(batch) == [(ALICE, 255), (ALICE, 255), (ALICE, 90)]
        assert len(batch) == 3 * GROUP_HEADER_BYTES + 600 * ENGAGEMENT_BYTES
        assert decode_batch(batch) == items

    def test_an_empty_batch_is_refused(self):
        with pytest.raises(ValueError, match="at least one engagement"):
            encode_batch([])


class TestDecodeBatch:
    def test_decode_inverts_encode(self):
        items = [engagement(ALICE, 0, Action.INSTALL), engagement(ALICE, 1, Action.DAILY_OPEN, T0 + 5)]
        items += [engagement(BOB, 2, Action.SUBSCRIBE, MAX_TIME), engagement(CAROL, MAX_EVENT_ID)]
        assert decode_batch(encode_batch(items)) == items

    @given(
        st.lists(
            st.builds(
                Engagement,
                consumer=st.sampled_from([ALICE, BOB, CAROL, ALICE.lower()]),
                action=st.sampled_from(Action),
                event_id=st.integers(0, MAX_EVENT_ID),
                time=st.integers(0, MAX_TIME),
                evidence=st.binary(min_size=32, max_size=32),
            ),
            min_size=1,
            max_size=40,
        )
    )
    @settings(max_examples=50, deadline=None)
    def test_decode_of_encode_gives_the_engagements_grouped_by_consumer(self, items):
        grouped = [
            Engagement(consumer, e.action, e.event_id, e.time, e.evidence)
            for consumer, group in group_by_consumer(items).items()
            for e in group
        ]
        assert decode_batch(encode_batch(items)) == grouped

    @pytest.mark.parametrize(
        ("cut", "message"),
        [
            (10, "truncated group header at byte 0"),
            (20, "truncated group header at byte 0"),
            (-1, "bad group at byte 0"),
        ],
        ids=["inside-the-address", "before-the-count", "inside-the-evidence"],
    )
    def test_a_truncated_batch_is_refused(self, cut, message):
        batch = encode_batch([engagement(ALICE, 1)])
        with pytest.raises(ValueError, match=message):
            decode_batch(batch[:cut])

    def test_a_truncated_second_group_names_its_offset(self):
        batch = encode_batch([engagement(ALICE, 1), engagement(BOB, 2)])
        second = GROUP_HEADER_BYTES + ENGAGEMENT_BYTES
        with pytest.raises(ValueError, match=f"bad group at byte {second}"):
            decode_batch(batch[:-1])
        with pytest.raises(ValueError, match=f"truncated group header at byte {second}"):
            decode_batch(batch[: second + 5])

    def test_an_empty_group_is_refused(self):
        batch = bytearray(encode_batch([engagement(ALICE, 1)]))
        batch[20] = 0
        with pytest.raises(ValueError, match="bad group at byte 0"):
            decode_batch(bytes(batch))

    def test_an_unknown_action_byte_is_refused(self):
        batch = bytearray(encode_batch([engagement(ALICE, 1)]))
        batch[GROUP_HEADER_BYTES] = 8
        with pytest.raises(ValueError, match="8"):
            decode_batch(bytes(batch))


class TestEstimateGas:
    def test_one_engagement_costs_a_batch_a_group_an_engagement_and_a_bitmap_word(self):
        assert estimate_gas([engagement()]) == ONE_ENGAGEMENT_GAS

    def test_estimate_counts_groups_of_255_and_bitmap_words_of_256_ids(self):
        # event ids 0..599 touch bitmap words 0, 1 and 2; 600 engagements make groups of 255, 255 and 90
        items = [engagement(ALICE, i) for i in range(600)]
        assert estimate_gas(items) == GAS_PER_BATCH + 3 * GAS_PER_NEW_GROUP + 600 * GAS_PER_ENGAGEMENT + 3 * (
            GAS_PER_BITMAP_WORD
        )

    def test_lowercase_and_checksum_addresses_count_as_one_group(self):
        assert estimate_gas([engagement(ALICE, 1), engagement(ALICE.lower(), 2)]) == (
            ONE_ENGAGEMENT_GAS + GAS_PER_ENGAGEMENT
        )


plannable = st.lists(
    st.builds(
        engagement,
        consumer=st.sampled_from([ALICE, BOB, CAROL, ALICE.lower()]),
        event_id=st.one_of(st.integers(0, 2_000), st.integers(0, MAX_EVENT_ID)),
    ),
    max_size=300,
)


class TestPlanBatches:
    @given(items=plannable, gas_limit=st.integers(ONE_ENGAGEMENT_GAS, 3_000_000))
    @settings(max_examples=60, deadline=None)
    def test_batches_keep_order_cover_everything_and_stay_under_the_limit(self, items, gas_limit):
        batches = list(plan_batches(items, gas_limit))
        assert [e for batch in batches for e in batch] == items
        assert all(batch and estimate_gas(batch) <= gas_limit for batch in batches)

    @given(items=plannable, gas_limit=st.integers(ONE_ENGAGEMENT_GAS, 3_000_000))
    @settings(max_examples=60, deadline=None)
    def test_the_incremental_estimate_equals_estimate_gas_of_each_batch(self, items, gas_limit):
        # Each batch is cut exactly where estimate_gas would pass the limit: had the running estimate been lower
        # than estimate_gas a batch would exceed the limit; had it been higher, the batch would end early.
        batches = list(plan_batches(items, gas_limit))
        for batch, following in zip(batches, batches[1:], strict=False):
            assert estimate_gas(batch) <= gas_limit < estimate_gas([*batch, following[0]])

    def test_600_engagements_of_one_consumer_fit_one_default_batch_as_three_groups(self):
        items = [engagement(ALICE, i) for i in range(600)]
        (batch,) = plan_batches(items)
        assert batch == items and headers(encode_batch(batch)) == [(ALICE, 255), (ALICE, 255), (ALICE, 90)]

    def test_a_limit_of_one_engagement_plans_one_engagement_per_batch(self):
        items = [engagement(c, i) for i, c in enumerate([ALICE, BOB, ALICE])]
        assert list(plan_batches(items, ONE_ENGAGEMENT_GAS)) == [[e] for e in items]

    def test_a_second_engagement_of_a_consumer_in_a_known_word_costs_only_the_engagement(self):
        items = [engagement(ALICE, 1), engagement(ALICE, 2)]
        assert list(plan_batches(items, ONE_ENGAGEMENT_GAS + GAS_PER_ENGAGEMENT)) == [items]
        assert list(plan_batches(items, ONE_ENGAGEMENT_GAS + GAS_PER_ENGAGEMENT - 1)) == [[e] for e in items]

    def test_the_transaction_gas_cap_is_allowed(self):
        assert list(plan_batches([engagement()], TX_GAS_CAP)) == [[engagement()]]

    def test_a_limit_above_the_transaction_gas_cap_is_refused(self):
        with pytest.raises(ValueError, match="exceeds the transaction cap 16777216"):
            list(plan_batches([engagement()], TX_GAS_CAP + 1))

    def test_a_limit_below_one_engagement_is_refused(self):
        with pytest.raises(ValueError, match="below one engagement's cost"):
            list(plan_batches([engagement()], ONE_ENGAGEMENT_GAS - 1))

    def test_no_engagements_plan_no_batches(self):
        assert list(plan_batches([])) == []


class TestAgainstTheEscrow:
    def test_estimate_is_an_upper_bound_of_the_gas_a_batch_uses(self, suite: Suite):
        # the costly case: every consumer's account word is new, every engagement is paid and opens a bitmap word
        campaigns = CampaignFactory(suite)
        campaign_id = campaigns.create()
        consumers = suite.chain.accounts.consumers
        for consumer in consumers:
            campaigns.consent(consumer)
        now = suite.chain.latest_timestamp()
        items = [
            engagement(consumer.address, 256 * (3 * c + i), Action.AD_VIEW, now)
            for c, consumer in enumerate(consumers)
            for i in range(3)
        ]
        receipt = campaigns.settle(campaign_id, items)
        assert len(campaigns.rewarded(receipt)) == len(items)
        assert receipt["gasUsed"] <= estimate_gas(items)

    def test_the_escrow_refuses_a_batch_with_a_zero_address_group(self, suite: Suite):
        campaigns = CampaignFactory(suite)
        campaign_id = campaigns.create()
        # built by hand: Engagement refuses the zero address, which is the point
        zero_group = bytes(20) + bytes([1]) + engagement(ALICE, 2).pack()
        batch = encode_batch([engagement(ALICE, 1)]) + zero_group
        call = suite.escrow.functions.settle(campaign_id, batch)
        with reverts(EscrowMalformedBatch, offset=GROUP_HEADER_BYTES + ENGAGEMENT_BYTES):
            transact(suite.chain, suite.chain.accounts.attester, call)
