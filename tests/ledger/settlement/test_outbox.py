"""The engagement outbox on SQLite and PostgreSQL: validated intake with dense per-campaign event ids, idempotent on
the attester's own id, safe under concurrent callers; each engagement's state, from the chain's rows once indexed;
the batcher's drain."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ledger.crm.models import Campaign
from ledger.errors import CampaignNotIndexed, CampaignNotOpen, EngagementNotFound, TooManyEngagements
from ledger.model import Action, CampaignStatus, RejectReason
from ledger.settlement import outbox
from ledger.settlement.outbox import (
    CLOCK_SKEW_SECONDS,
    MAX_PER_CALL,
    EngagementIn,
    IntakeOutcome,
    IntakeProblem,
    IntakeResult,
    accept_engagements,
    engagement_state,
    next_queued,
)
from ledger.settlement.outbox_models import (
    EngagementStatus,
    OutboxCounter,
    OutboxEngagement,
    SettlementBatch,
)
from tests.ledger.crm.rows import CHAIN_ID, ESCROW, campaign, hash32, rejection, touchpoint
from tests.ledger.databases import Database

ATTESTER = "0x" + "a7" * 20
OTHER_ATTESTER = "0x" + "a8" * 20
STARTS_AT = 1_700_000_000
ENDS_AT = 1_800_000_000
NOW = 1_750_000_000


def consumer(n: int) -> str:
    return "0x" + f"{n + 1:040x}"


def engagement(n: int, **fields: Any) -> EngagementIn:
    values: dict[str, Any] = {
        "consumer": consumer(n % 7),
        "action": Action.AD_VIEW,
        "occurred_at": NOW - 10_000 + n,
        "evidence_hash": hash32(50_000 + n),
        "attester_ref": f"ref-{n}",
    }
    return EngagementIn(**(values | fields))


def accept(
    session: Session,
    engagements: list[EngagementIn],
    *,
    campaign_id: int = 1,
    attester: str = ATTESTER,
    now: int = NOW,
) -> list[IntakeResult]:
    """One intake call, committed as the API will commit it before answering 202."""
    results = accept_engagements(
        session,
        chain_id=CHAIN_ID,
        escrow=ESCROW,
        campaign_id=campaign_id,
        attester=attester,
        engagements=engagements,
        now=now,
    )
    session.commit()
    return results


def stored(session: Session) -> list[Any]:
    """Every outbox row, every column, by campaign and event id: equal lists mean nothing changed."""
    columns = OutboxEngagement.__table__.columns
    return list(session.execute(select(*columns).order_by(columns.campaign_id, columns.event_id)))


def state(session: Session, event_id: int, campaign_id: int = 1) -> outbox.EngagementState:
    return engagement_state(session, chain_id=CHAIN_ID, escrow=ESCROW, campaign_id=campaign_id, event_id=event_id)


@pytest.fixture
def campaigns(session: Session) -> None:
    """Campaigns 1 and 2 (active) and 3 (closed), dated STARTS_AT to ENDS_AT."""
    session.add_all(
        [
            campaign(0, starts_at=STARTS_AT, ends_at=ENDS_AT),
            campaign(1, starts_at=STARTS_AT, ends_at=ENDS_AT),
            campaign(2, starts_at=STARTS_AT, ends_at=ENDS_AT, status=CampaignStatus.CLOSED),
        ]
    )
    session.commit()


@pytest.mark.usefixtures("campaigns")
class TestAcceptEngagements:
    def test_a_call_of_100_gets_dense_event_ids_from_0_in_input_order(self, session: Session):
        results = accept(session, [engagement(n) for n in range(100)])
        assert [r.outcome for r in results] == [IntakeOutcome.ACCEPTED] * 100
        assert [r.event_id for r in results] == list(range(100))
        assert [r.attester_ref for r in results] == [f"ref-{n}" for n in range(100)]
        rows = session.scalars(select(OutboxEngagement).order_by(OutboxEngagement.event_id)).all()
        assert [(row.event_id, row.attester_ref) for row in rows] == [(n, f"ref-{n}") for n in range(100)]
        assert {row.status for row in rows} == {EngagementStatus.QUEUED}
        assert session.scalar(select(OutboxCounter.next_event_id)) == 100
        # the next call continues where this one stopped
        assert [r.event_id for r in accept(session, [engagement(n) for n in range(100, 103)])] == [100, 101, 102]

    def test_the_stored_row_is_the_engagement_in_canonical_form(self, session: Session):
        given = engagement(
            0,
            consumer="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            evidence_hash="0x" + "AB" * 32,
            action=int(Action.EMAIL_CLICK),
        )
        [result] = accept(session, [given])
        row = session.scalars(select(OutboxEngagement)).one()
        assert (row.chain_id, row.escrow, row.campaign_id, row.attester) == (CHAIN_ID, ESCROW, 1, ATTESTER)
        assert (row.consumer, row.action, row.evidence_hash) == (
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
            Action.EMAIL_CLICK,
            "0x" + "ab" * 32,
        )
        assert (row.occurred_at, row.batch_id, row.tx_hash, row.amount, row.reject_reason) == (
            NOW - 10_000,
            None,
            None,
            None,
            None,
        )
        assert row.accepted_at.timestamp() == NOW
        assert result.state == state(session, 0)
        assert result.state is not None and result.state.status == EngagementStatus.QUEUED

    def test_the_same_engagement_sent_three_times_is_stored_once_then_replayed(self, session: Session):
        first = accept(session, [engagement(0)])
        after_first = stored(session)
        again = [accept(session, [engagement(0)]) for _ in range(2)]
        assert first[0].outcome == IntakeOutcome.ACCEPTED
        assert [r[0].outcome for r in again] == [IntakeOutcome.REPLAY] * 2
        assert [r[0].event_id for r in (first, *again)] == [0, 0, 0]
        assert stored(session) == after_first
        assert session.scalar(select(OutboxCounter.next_event_id)) == 1

    def test_a_replay_with_the_address_in_other_case_is_still_a_replay(self, session: Session):
        accept(session, [engagement(0, consumer="0x" + "ab" * 20)])
        [result] = accept(session, [engagement(0, consumer="0x" + "AB" * 20)])
        assert (result.outcome, result.event_id) == (IntakeOutcome.REPLAY, 0)

    def test_a_repeat_within_one_call_is_a_replay_of_the_first(self, session: Session):
        results = accept(session, [engagement(0), engagement(1), engagement(0), engagement(2)])
        assert [(r.outcome, r.event_id) for r in results] == [
            (IntakeOutcome.ACCEPTED, 0),
            (IntakeOutcome.ACCEPTED, 1),
            (IntakeOutcome.REPLAY, 0),
            (IntakeOutcome.ACCEPTED, 2),
        ]
        assert len(stored(session)) == 3

    def test_stored_refs_among_new_ones_take_no_id_and_leave_no_row_behind(self, session: Session):
        """The first plan takes every engagement for new; the stored ones make the insert skip rows, which sends
        it back to its savepoint and plans again with them looked up: the new ones get the next dense ids."""
        accept(session, [engagement(0), engagement(1)])
        results = accept(session, [engagement(5), engagement(1), engagement(6, occurred_at=NOW - 5), engagement(0)])
        assert [(r.outcome, r.event_id) for r in results] == [
            (IntakeOutcome.ACCEPTED, 2),
            (IntakeOutcome.REPLAY, 1),
            (IntakeOutcome.ACCEPTED, 3),
            (IntakeOutcome.REPLAY, 0),
        ]
        assert [row.event_id for row in stored(session)] == [0, 1, 2, 3]
        assert session.scalar(select(OutboxCounter.next_event_id)) == 4

    def test_a_known_ref_with_other_content_is_a_conflict_naming_the_stored_event_id(self, session: Session):
        accept(session, [engagement(0), engagement(1)])
        before = stored(session)
        [result] = accept(session, [engagement(1, occurred_at=NOW - 5, action=Action.AD_CLICK)])
        assert (result.outcome, result.event_id, result.code) == (IntakeOutcome.CONFLICT, 1, IntakeProblem.CONFLICT)
        assert result.message is not None and "action, occurred_at" in result.message
        assert result.state is not None and result.state.action == Action.AD_VIEW  # the stored one
        assert stored(session) == before
        assert session.scalar(select(OutboxCounter.next_event_id)) == 2

    def test_a_repeat_with_other_content_within_one_call_is_a_conflict(self, session: Session):
        results = accept(session, [engagement(0), engagement(0, evidence_hash=hash32(1))])
        assert [(r.outcome, r.event_id) for r in results] == [(IntakeOutcome.ACCEPTED, 0), (IntakeOutcome.CONFLICT, 0)]
        assert len(stored(session)) == 1

    def test_the_same_ref_from_another_attester_is_another_engagement(self, session: Session):
        [mine] = accept(session, [engagement(0)])
        [theirs] = accept(session, [engagement(0)], attester=OTHER_ATTESTER)
        assert (mine.outcome, mine.event_id, theirs.outcome, theirs.event_id) == (
            IntakeOutcome.ACCEPTED,
            0,
            IntakeOutcome.ACCEPTED,
            1,
        )

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"occurred_at": NOW + CLOCK_SKEW_SECONDS + 1}, IntakeProblem.TIME_IN_FUTURE),
            ({"occurred_at": STARTS_AT - 1}, IntakeProblem.BEFORE_CAMPAIGN_START),
            ({"occurred_at": -1}, IntakeProblem.INVALID_TIME),
            ({"occurred_at": 2**40}, IntakeProblem.INVALID_TIME),
            ({"occurred_at": True}, IntakeProblem.INVALID_TIME),
            ({"occurred_at": "1750000000"}, IntakeProblem.INVALID_TIME),
            ({"consumer": "0x1234"}, IntakeProblem.INVALID_ADDRESS),
            ({"consumer": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, IntakeProblem.INVALID_ADDRESS),  # checksum
            ({"consumer": 42}, IntakeProblem.INVALID_ADDRESS),
            ({"consumer": "0x" + "00" * 20}, IntakeProblem.ZERO_ADDRESS),
            ({"action": 8}, IntakeProblem.INVALID_ACTION),
            ({"action": -1}, IntakeProblem.INVALID_ACTION),
            ({"action": "AD_VIEW"}, IntakeProblem.INVALID_ACTION),
            ({"action": True}, IntakeProblem.INVALID_ACTION),
            ({"evidence_hash": "0x" + "ab" * 31}, IntakeProblem.INVALID_EVIDENCE_HASH),
            ({"evidence_hash": "ab" * 32}, IntakeProblem.INVALID_EVIDENCE_HASH),
            ({"evidence_hash": "0x" + "zz" * 32}, IntakeProblem.INVALID_EVIDENCE_HASH),
            ({"attester_ref": ""}, IntakeProblem.INVALID_ATTESTER_REF),
            ({"attester_ref": "x" * 129}, IntakeProblem.INVALID_ATTESTER_REF),
            ({"attester_ref": "line\nbreak"}, IntakeProblem.INVALID_ATTESTER_REF),
            ({"attester_ref": "nul\x00"}, IntakeProblem.INVALID_ATTESTER_REF),
            ({"attester_ref": 7}, IntakeProblem.INVALID_ATTESTER_REF),
        ],
        ids=lambda value: str(value)[:40],
    )
    def test_an_invalid_engagement_is_reported_with_its_code_and_the_valid_ones_are_stored(
        self, session: Session, fields: dict[str, Any], code: IntakeProblem
    ):
        results = accept(session, [engagement(0), engagement(1, **fields), engagement(2)])
        assert [r.outcome for r in results] == [IntakeOutcome.ACCEPTED, IntakeOutcome.INVALID, IntakeOutcome.ACCEPTED]
        assert (results[1].code, results[1].event_id, results[1].state) == (code, None, None)
        assert results[1].message
        assert [results[0].event_id, results[2].event_id] == [0, 1]  # the invalid one used no id
        assert [row.attester_ref for row in stored(session)] == ["ref-0", "ref-2"]

    def test_after_the_campaign_end_is_invalid(self, session: Session):
        [result] = accept(session, [engagement(0, occurred_at=ENDS_AT + 1)], now=ENDS_AT + 100)
        assert (result.outcome, result.code) == (IntakeOutcome.INVALID, IntakeProblem.AFTER_CAMPAIGN_END)

    def test_times_at_the_edges_are_accepted(self, session: Session):
        results = accept(
            session,
            [
                engagement(0, occurred_at=NOW + CLOCK_SKEW_SECONDS),
                engagement(1, occurred_at=STARTS_AT),
                engagement(2, occurred_at=ENDS_AT),
            ],
            now=ENDS_AT,
        )
        assert [r.outcome for r in results] == [IntakeOutcome.ACCEPTED] * 3
        [skewed] = accept(session, [engagement(3, occurred_at=NOW + CLOCK_SKEW_SECONDS)])
        assert skewed.outcome == IntakeOutcome.ACCEPTED

    def test_a_call_with_only_invalid_engagements_stores_nothing(self, session: Session):
        results = accept(session, [engagement(0, action=99), engagement(1, attester_ref="")])
        assert [r.outcome for r in results] == [IntakeOutcome.INVALID] * 2
        assert stored(session) == []
        assert accept(session, []) == []

    @pytest.mark.parametrize(
        ("campaign_id", "escrow"),
        [(99, ESCROW), (1, "0x" + "e6" * 20), (-1, ESCROW), (2**48, ESCROW), (2**70, ESCROW)],
    )
    def test_an_unknown_campaign_is_refused_for_the_whole_call(self, session: Session, campaign_id: int, escrow: str):
        with pytest.raises(CampaignNotIndexed) as raised:
            accept_engagements(
                session,
                chain_id=CHAIN_ID,
                escrow=escrow,
                campaign_id=campaign_id,
                attester=ATTESTER,
                engagements=[engagement(0)],
                now=NOW,
            )
        assert raised.value.code == "campaign_not_indexed"
        session.rollback()
        assert stored(session) == []

    def test_a_closed_campaign_is_refused_for_the_whole_call(self, session: Session):
        with pytest.raises(CampaignNotOpen, match="campaign 3 is closed") as raised:
            accept(session, [engagement(0)], campaign_id=3)
        assert raised.value.code == "campaign_not_open"
        session.rollback()
        assert stored(session) == []

    def test_a_paused_campaign_still_takes_engagements(self, session: Session):
        session.execute(update(Campaign).where(Campaign.campaign_id == 1).values(status=CampaignStatus.PAUSED))
        session.commit()
        [result] = accept(session, [engagement(0)])
        assert result.outcome == IntakeOutcome.ACCEPTED

    def test_more_than_max_per_call_is_refused(self, session: Session):
        with pytest.raises(TooManyEngagements):
            accept(session, [engagement(n) for n in range(MAX_PER_CALL + 1)])

    def test_the_largest_call_is_stored_at_once(self, session: Session):
        results = accept(session, [engagement(n) for n in range(MAX_PER_CALL)])
        assert [r.event_id for r in results] == list(range(MAX_PER_CALL))
        assert len(stored(session)) == MAX_PER_CALL

    def test_two_campaigns_count_their_event_ids_apart(self, session: Session):
        one = accept(session, [engagement(n) for n in range(3)], campaign_id=1)
        two = accept(session, [engagement(n) for n in range(2)], campaign_id=2)  # the same refs, another campaign
        one_more = accept(session, [engagement(3)], campaign_id=1)
        assert [r.event_id for r in one + one_more] == [0, 1, 2, 3]
        assert [r.event_id for r in two] == [0, 1]
        counters = session.execute(select(OutboxCounter.campaign_id, OutboxCounter.next_event_id)).all()
        assert sorted(counters) == [(1, 4), (2, 2)]

    def test_a_ref_a_concurrent_writer_stored_first_becomes_a_replay_and_ids_stay_dense(
        self, session: Session, monkeypatch: pytest.MonkeyPatch
    ):
        """As if another writer inserted ref-1 between the plan and the insert (only possible outside the counter
        lock, so simulated): the insert skips it, is rolled back and planned again."""
        plan = outbox._plan
        raced: list[bool] = []

        def racing_plan(*args: Any, **kwargs: Any) -> Any:
            planned, rows = plan(*args, **kwargs)
            if not raced:
                raced.append(True)
                args[0].execute(insert(OutboxEngagement), [rows[1] | {"event_id": 500}])
            return planned, rows

        monkeypatch.setattr(outbox, "_plan", racing_plan)
        results = accept(session, [engagement(0), engagement(1), engagement(2)])
        assert [(r.outcome, r.event_id) for r in results] == [
            (IntakeOutcome.ACCEPTED, 0),
            (IntakeOutcome.REPLAY, 500),
            (IntakeOutcome.ACCEPTED, 1),
        ]
        assert [row.event_id for row in stored(session)] == [0, 1, 500]
        assert session.scalar(select(OutboxCounter.next_event_id)) == 2

    def test_concurrent_callers_with_overlapping_refs_store_each_once_with_dense_ids(self, database: Database):
        rounds, threads = 8, 3
        barrier = threading.Barrier(threads)
        outcomes: list[list[IntakeResult]] = []
        failures: list[BaseException] = []

        def caller(offset: int) -> None:
            try:
                for r in range(rounds):
                    # each thread's refs overlap its neighbours': 0-9, 5-14, 10-19 in round 0
                    batch = [engagement(r * 100 + offset * 5 + n) for n in range(10)]
                    barrier.wait(timeout=30)
                    with database.sessions() as own:
                        outcomes.append(accept(own, batch))
            except BaseException as exc:  # reported below, with the thread's traceback
                failures.append(exc)
                barrier.abort()

        workers = [threading.Thread(target=caller, args=(offset,)) for offset in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not failures, failures
        with database.sessions() as session:
            rows = session.execute(select(OutboxEngagement.attester_ref, OutboxEngagement.event_id)).all()
        refs = {ref for ref, _ in rows}
        assert len(refs) == len(rows) == rounds * 20  # each ref once
        assert sorted(event_id for _, event_id in rows) == list(range(len(rows)))  # dense, unique
        by_ref = dict(rows)
        accepted = [r.attester_ref for results in outcomes for r in results if r.outcome == IntakeOutcome.ACCEPTED]
        assert sorted(accepted) == sorted(refs)  # accepted exactly once, whichever caller won
        for results in outcomes:
            assert {r.outcome for r in results} <= {IntakeOutcome.ACCEPTED, IntakeOutcome.REPLAY}
            assert all(r.event_id == by_ref[r.attester_ref] for r in results)

    def test_a_replay_reports_the_current_state(self, session: Session):
        accept(session, [engagement(0)])
        session.execute(update(OutboxEngagement).values(status=EngagementStatus.SENT))
        session.add(touchpoint(0, campaign_id=1, event_id=0, amount=7))
        session.commit()
        [result] = accept(session, [engagement(0)])
        assert result.outcome == IntakeOutcome.REPLAY
        assert result.state is not None
        assert (result.state.status, result.state.amount) == (EngagementStatus.SETTLED, 7)


@pytest.mark.usefixtures("campaigns")
class TestEngagementState:
    @pytest.fixture(autouse=True)
    def accepted(self, session: Session, campaigns: None) -> None:
        accept(session, [engagement(n) for n in range(3)])

    def _send(self, session: Session, *event_ids: int) -> SettlementBatch:
        batch = SettlementBatch(
            chain_id=CHAIN_ID,
            escrow=ESCROW,
            campaign_id=1,
            attester=ATTESTER,
            sender=ATTESTER,
            nonce=0,
            tx_hash=hash32(1),
            gas_limit=1_000_000,
            engagement_count=len(event_ids),
        )
        session.add(batch)
        session.flush()
        session.execute(
            update(OutboxEngagement)
            .where(OutboxEngagement.event_id.in_(event_ids))
            .values(status=EngagementStatus.SENT, batch_id=batch.id)
        )
        session.commit()
        return batch

    def test_a_new_engagement_is_queued(self, session: Session):
        found = state(session, 1)
        assert (found.status, found.attester_ref, found.consumer, found.event_id) == (
            EngagementStatus.QUEUED,
            "ref-1",
            consumer(1),
            1,
        )
        assert (found.tx_hash, found.block_number, found.amount, found.reject_reason) == (None, None, None, None)

    def test_a_sent_engagement_names_its_batch_transaction(self, session: Session):
        self._send(session, 0, 1)
        found = state(session, 1)
        assert (found.status, found.tx_hash, found.block_number) == (EngagementStatus.SENT, hash32(1), None)

    def test_settled_once_the_rewarded_log_is_indexed_with_an_exact_uint256_amount(self, session: Session):
        self._send(session, 0, 1)
        session.add(touchpoint(4, campaign_id=1, event_id=1, amount=2**256 - 1, block_number=321))
        session.commit()
        found = state(session, 1)
        assert (found.status, found.tx_hash, found.block_number, found.amount, found.reject_reason) == (
            EngagementStatus.SETTLED,
            hash32(1),
            321,
            2**256 - 1,
            None,
        )
        assert state(session, 0).status == EngagementStatus.SENT

    def test_rejected_once_the_rejected_log_is_indexed_with_the_chains_reason(self, session: Session):
        self._send(session, 0, 1)
        session.add(rejection(5, campaign_id=1, event_id=0, reason=RejectReason.DAILY_CAP_REACHED, block_number=322))
        session.commit()
        found = state(session, 0)
        assert (found.status, found.reject_reason, found.block_number, found.amount) == (
            EngagementStatus.REJECTED,
            RejectReason.DAILY_CAP_REACHED,
            322,
            None,
        )

    def test_a_resends_duplicate_event_rejection_does_not_hide_the_first_outcome(self, session: Session):
        self._send(session, 0, 1)
        session.add_all(
            [
                touchpoint(0, campaign_id=1, event_id=0, amount=5, block_number=100),
                rejection(
                    0,
                    campaign_id=1,
                    event_id=0,
                    reason=RejectReason.DUPLICATE_EVENT,
                    tx_hash=hash32(2),
                    block_number=101,
                ),
                rejection(
                    1, campaign_id=1, event_id=1, reason=RejectReason.NO_CONSENT, tx_hash=hash32(1), block_number=100
                ),
                rejection(
                    2,
                    campaign_id=1,
                    event_id=1,
                    reason=RejectReason.DUPLICATE_EVENT,
                    tx_hash=hash32(2),
                    block_number=101,
                ),
            ]
        )
        session.commit()
        assert (state(session, 0).status, state(session, 0).amount) == (EngagementStatus.SETTLED, 5)
        assert state(session, 1).reject_reason == RejectReason.NO_CONSENT

    def test_a_duplicate_event_rejection_alone_is_the_chains_answer(self, session: Session):
        self._send(session, 2)
        session.add(rejection(0, campaign_id=1, event_id=2, reason=RejectReason.DUPLICATE_EVENT))
        session.commit()
        found = state(session, 2)
        assert (found.status, found.reject_reason) == (EngagementStatus.REJECTED, RejectReason.DUPLICATE_EVENT)

    def test_rows_of_another_campaign_or_escrow_do_not_count(self, session: Session):
        self._send(session, 0)
        session.add_all(
            [
                touchpoint(0, campaign_id=2, event_id=0),
                touchpoint(1, campaign_id=1, event_id=0, escrow="0x" + "e6" * 20),
            ]
        )
        session.commit()
        assert state(session, 0).status == EngagementStatus.SENT

    @pytest.mark.parametrize(("campaign_id", "event_id"), [(1, 3), (2, 0), (1, -1), (1, 2**48), (2**64, 0)])
    def test_an_unknown_engagement_raises(self, session: Session, campaign_id: int, event_id: int):
        with pytest.raises(EngagementNotFound) as raised:
            state(session, event_id, campaign_id=campaign_id)
        assert raised.value.code == "engagement_not_found"


@pytest.mark.usefixtures("campaigns")
class TestNextQueued:
    def _drain(self, session: Session, limit: int = 100, **filters: Any) -> list[tuple[str, int, int]]:
        rows = next_queued(session, chain_id=CHAIN_ID, escrow=ESCROW, campaign_id=1, limit=limit, **filters)
        return [(row.consumer, row.occurred_at, row.event_id) for row in rows]

    def test_queued_engagements_come_grouped_by_consumer_in_time_order(self, session: Session):
        alice, bob = consumer(1), consumer(0)  # bob's address sorts first
        accept(
            session,
            [
                engagement(0, consumer=alice, occurred_at=NOW - 50),
                engagement(1, consumer=bob, occurred_at=NOW - 40),
                engagement(2, consumer=alice, occurred_at=NOW - 60),  # earlier, accepted later
                engagement(3, consumer=bob, occurred_at=NOW - 40),
            ],
        )
        assert self._drain(session) == [
            (bob, NOW - 40, 1),
            (bob, NOW - 40, 3),
            (alice, NOW - 60, 2),
            (alice, NOW - 50, 0),
        ]

    def test_the_oldest_accepted_go_first_and_sent_ones_are_not_drained(self, session: Session):
        accept(session, [engagement(n) for n in range(6)])
        session.execute(
            update(OutboxEngagement).where(OutboxEngagement.event_id == 0).values(status=EngagementStatus.SENT)
        )
        session.commit()
        assert sorted(event_id for *_, event_id in self._drain(session, limit=3)) == [1, 2, 3]

    def test_engagements_stamped_after_until_and_other_attesters_wait(self, session: Session):
        accept(session, [engagement(0, occurred_at=NOW + 30), engagement(1)])
        accept(session, [engagement(2)], attester=OTHER_ATTESTER)
        assert [event_id for *_, event_id in self._drain(session, until=NOW, attester=ATTESTER)] == [1]
        assert sorted(event_id for *_, event_id in self._drain(session, until=NOW + 30)) == [0, 1, 2]

    def test_a_row_packs_into_the_settlement_batch(self, session: Session):
        accept(session, [engagement(0)])
        [row] = next_queued(session, chain_id=CHAIN_ID, escrow=ESCROW, campaign_id=1, limit=1)
        packed = row.engagement()
        assert (packed.consumer, packed.action, packed.event_id, packed.time) == (
            consumer(0),
            Action.AD_VIEW,
            0,
            NOW - 10_000,
        )
        assert packed.evidence == bytes.fromhex(hash32(50_000)[2:])

    def test_limit_must_be_positive(self, session: Session):
        with pytest.raises(ValueError, match="limit"):
            self._drain(session, limit=0)
