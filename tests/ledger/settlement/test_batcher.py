"""The settlement batcher on a real anvil, on SQLite and PostgreSQL: every accepted engagement ends exactly once
(settled or rejected) with the outbox matching the chain's indexed logs; what may still change (time, consent,
budget, a paused campaign) stays queued; a crash between broadcast and receipt, a dropped, stuck, underpriced,
nonce-stolen or reverted transaction each end with nothing lost and nothing settled twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from sqlalchemy import select
from typer.testing import CliRunner
from web3.contract.contract import ContractFunction

from ledger.chain import Chain
from ledger.contracts import transact
from ledger.crm.onchain import Rejection, Touchpoint
from ledger.errors import EscrowNotAttester, UnknownRevert
from ledger.indexer.runner import Indexer
from ledger.model import Action, Purpose, RejectReason
from ledger.settlement import batcher as batcher_module
from ledger.settlement import receipts
from ledger.settlement.batcher import (
    Batcher,
    BatcherOptions,
    CampaignRules,
    ConsentVerdict,
    GasPolicy,
    Hold,
    consent_verdict,
    select_ready,
)
from ledger.settlement.fees import Fees, bump, replacement_fees
from ledger.settlement.outbox import (
    EngagementIn,
    IntakeOutcome,
    IntakeResult,
    QueuedEngagement,
    accept_engagements,
    engagement_state,
)
from ledger.settlement.outbox_models import BatchStatus, EngagementStatus, OutboxEngagement, SettlementBatch
from ledger.suite import Suite
from tests.contracts.helpers import DAY, MARKETER_FUNDS, REWARDS, TOKEN, CampaignFactory
from tests.ledger.databases import Database

ROOT = Path(__file__).resolve().parents[3]
GRACE = 60
SETTLED, REJECTED, QUEUED, SENT = (
    EngagementStatus.SETTLED,
    EngagementStatus.REJECTED,
    EngagementStatus.QUEUED,
    EngagementStatus.SENT,
)


# -- the scene: a funded campaign on anvil, indexed, and the outbox in the test's database ------------------------


@pytest.fixture(scope="module")
def funded(deployed: tuple[Chain, Suite]) -> Suite:
    chain, suite = deployed
    suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, MARKETER_FUNDS)
    return suite


@pytest.fixture
def suite(funded: Suite) -> Iterator[Suite]:
    """The funded suite; whatever a test does to the chain (automine and base fee included) is undone after it."""
    chain = funded.chain
    snapshot = chain.snapshot()
    yield funded
    chain.rpc("evm_setAutomine", [True])
    chain.revert(snapshot)
    # evm_revert leaves anvil's fee state where a test pushed it (anvil_setNextBlockBaseFeePerGas): start from the head
    chain.rpc("anvil_setNextBlockBaseFeePerGas", [hex(int(chain.w3.eth.get_block("latest")["baseFeePerGas"]))])


class Clock:
    """A wall clock the test moves by hand (max wait, stuck-after-seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Scene:
    chain: Chain
    suite: Suite
    database: Database
    factory: CampaignFactory
    campaign_id: int

    @property
    def attester(self) -> LocalAccount:
        return self.chain.accounts.attester

    @property
    def consumers(self) -> tuple[LocalAccount, ...]:
        return self.chain.accounts.consumers

    def engagement(self, ref: str, consumer: LocalAccount, action: Action, at: int | None = None) -> EngagementIn:
        at = self.chain.latest_timestamp() if at is None else at
        return EngagementIn(consumer.address, action, at, "0x" + keccak(text=ref).hex(), ref)

    def accept(self, items: list[EngagementIn], now: int | None = None) -> list[IntakeResult]:
        with self.database.sessions() as session:
            results = accept_engagements(
                session,
                chain_id=self.chain.chain_id,
                escrow=self.suite.deployment.escrow,
                campaign_id=self.campaign_id,
                attester=self.attester.address,
                engagements=items,
                now=self.chain.latest_timestamp() if now is None else now,
            )
            session.commit()
        return results

    def batcher(self, clock: Clock | None = None, **options: Any) -> Batcher:
        options.setdefault("consent_grace_seconds", GRACE)
        return Batcher(
            self.chain,
            self.suite,
            self.database.sessions,
            self.attester,
            BatcherOptions(**options),
            clock=clock or time.time,
        )

    def rows(self) -> dict[int, OutboxEngagement]:
        with self.database.sessions() as session:
            return {row.event_id: row for row in session.scalars(select(OutboxEngagement))}

    def statuses(self) -> Counter[EngagementStatus]:
        return Counter(row.status for row in self.rows().values())

    def batches(self) -> list[SettlementBatch]:
        with self.database.sessions() as session:
            return list(session.scalars(select(SettlementBatch).order_by(SettlementBatch.id)))

    def index(self) -> None:
        Indexer(self.chain, self.suite, self.database.sessions).run_once()

    def settle_transactions(self) -> list[str]:
        """The hash of every settle() transaction the chain has for the campaign (one BatchSettled log each)."""
        logs = self.suite.escrow.events.BatchSettled().get_logs(
            from_block=self.suite.deployment.deploy_block, argument_filters={"campaignId": self.campaign_id}
        )
        return ["0x" + bytes(log["transactionHash"]).hex() for log in logs]

    def assert_outbox_matches_chain(self) -> None:
        """Every accepted engagement is final, once, exactly as the indexed chain logs say; no DuplicateEvent."""
        self.index()
        rows = self.rows()
        with self.database.sessions() as session:
            paid = session.execute(
                select(Touchpoint.event_id, Touchpoint.tx_hash, Touchpoint.block_number, Touchpoint.amount).where(
                    Touchpoint.campaign_id == self.campaign_id
                )
            ).all()
            refused = session.execute(
                select(Rejection.event_id, Rejection.tx_hash, Rejection.block_number, Rejection.reason).where(
                    Rejection.campaign_id == self.campaign_id
                )
            ).all()
            states = {
                event_id: engagement_state(
                    session,
                    chain_id=self.chain.chain_id,
                    escrow=self.suite.deployment.escrow,
                    campaign_id=self.campaign_id,
                    event_id=event_id,
                )
                for event_id in rows
            }
        outcomes = Counter(event_id for event_id, *_ in [*paid, *refused])
        assert set(outcomes.values()) <= {1}, f"event ids with more than one outcome: {outcomes}"
        assert set(outcomes) == set(rows)
        assert all(reason != RejectReason.DUPLICATE_EVENT for *_, reason in refused)
        chain_says = {event_id: (SETTLED, tx, block, amount, None) for event_id, tx, block, amount in paid}
        chain_says |= {event_id: (REJECTED, tx, block, None, reason) for event_id, tx, block, reason in refused}
        outbox_says = {
            row.event_id: (row.status, row.tx_hash, row.block_number, row.amount, row.reject_reason)
            for row in rows.values()
        }
        assert outbox_says == chain_says
        for event_id, state in states.items():
            assert (state.status, state.tx_hash, state.amount, state.reject_reason) == (
                outbox_says[event_id][0],
                outbox_says[event_id][1],
                outbox_says[event_id][3],
                outbox_says[event_id][4],
            )
        mined = [batch for batch in self.batches() if batch.status == BatchStatus.MINED]
        assert sorted(batch.tx_hash for batch in mined) == sorted(self.settle_transactions())
        assert {row.batch_id for row in rows.values()} <= {batch.id for batch in mined}
        assert all(batch.gas_used is not None and batch.gas_used < batch.gas_limit for batch in mined)


def _scene(suite: Suite, database: Database, **campaign: Any) -> Scene:
    factory = CampaignFactory(suite)
    scene = Scene(suite.chain, suite, database, factory, factory.create(**campaign))
    scene.index()  # intake needs the campaign's row
    return scene


@pytest.fixture
def scene(suite: Suite, database: Database) -> Scene:
    """A funded campaign (1,000 tokens, tests.contracts.helpers.REWARDS) attested by the dev attester, indexed."""
    return _scene(suite, database)


def send_raw(chain: Chain, account: LocalAccount, call: ContractFunction | None = None, **tx: Any) -> HexBytes:
    """Signs and sends a transaction without waiting for it (the pool under manual mining)."""
    params = {"to": call.address, "data": call._encode_transaction_data()} if call is not None else {}
    filled = chain.prepare(account, {**params, **tx})
    filled.setdefault("nonce", chain.w3.eth.get_transaction_count(account.address, "pending"))
    return chain.w3.eth.send_raw_transaction(account.sign_transaction(filled).raw_transaction)


def fees_of(batch: SettlementBatch) -> Fees:
    tx = TypedTransaction.from_bytes(HexBytes(batch.raw_tx or "")).as_dict()
    return Fees(int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"]))


# -- the rules without a chain ------------------------------------------------------------------------------------


def _record(purposes: int, expires_at: int, granted: dict[int, int]) -> int:
    record = purposes | expires_at << 8
    for index, at in granted.items():
        record |= at << (64 + 32 * index)
    return record


class TestConsentVerdict:
    ADS, EMAIL = int(Purpose.ADS), int(Purpose.EMAIL)
    NOW = 1_800_000_000

    def test_a_purpose_held_and_granted_before_the_engagement_is_granted(self):
        record = _record(self.ADS, self.NOW + DAY, {0: self.NOW - 100})
        assert consent_verdict(record, self.ADS, self.NOW - 50, self.NOW, GRACE) is ConsentVerdict.GRANTED

    def test_a_purpose_granted_after_the_engagement_is_refused_for_good(self):
        record = _record(self.ADS, self.NOW + DAY, {0: self.NOW - 10})
        assert consent_verdict(record, self.ADS, self.NOW - 50, self.NOW, GRACE) is ConsentVerdict.REFUSED

    def test_every_required_purpose_must_be_held(self):
        record = _record(self.ADS, self.NOW + DAY, {0: self.NOW - 100})
        required = self.ADS | self.EMAIL
        assert consent_verdict(record, required, self.NOW - 1, self.NOW, GRACE) is ConsentVerdict.NOT_YET

    @pytest.mark.parametrize(
        "record",
        [0, _record(int(Purpose.ADS), 1_800_000_000, {0: 1_700_000_000})],
        ids=["never granted", "expired now"],
    )
    def test_no_consent_now_waits_for_the_grace_then_is_refused(self, record):
        assert consent_verdict(record, self.ADS, self.NOW - GRACE + 1, self.NOW, GRACE) is ConsentVerdict.NOT_YET
        assert consent_verdict(record, self.ADS, self.NOW - GRACE, self.NOW, GRACE) is ConsentVerdict.REFUSED


class TestSelectReady:
    NOW = 1_800_000_000
    RULES = CampaignRules(
        brand="0x" + "b0" * 20,
        starts_at=NOW - DAY,
        ends_at=NOW + DAY,
        rewards=tuple(REWARDS[Action(a)] for a in range(8)),
        purposes=(32, 4, 32, 1, 0, 2, 2, 2),  # AD_CLICK not offered
    )
    GRANTED = _record(0x3F, NOW + DAY, dict.fromkeys(range(6), NOW - DAY))

    def row(self, event_id: int, consumer: int, action: Action, at: int = NOW - 10) -> QueuedEngagement:
        return QueuedEngagement(
            id=event_id,
            consumer=f"0x{consumer:040x}",
            action=action,
            event_id=event_id,
            occurred_at=at,
            evidence_hash="0x" + "00" * 32,
            accepted_at=datetime.fromtimestamp(at, UTC),
        )

    def test_a_budget_too_small_holds_that_consumers_later_engagements_too(self):
        rows = [
            self.row(0, 1, Action.INSTALL),
            self.row(1, 1, Action.AD_VIEW),
            self.row(2, 2, Action.INSTALL),  # does not fit: 1.5 - 1 = 0.5 left
            self.row(3, 2, Action.EMAIL_OPEN),  # free, but after a held one of the same consumer
            self.row(4, 3, Action.AD_VIEW),  # fits what is left
        ]
        consents = {row.consumer: self.GRANTED for row in rows}
        ready, held = select_ready(rows, self.RULES, 3 * TOKEN // 2, consents, self.NOW, GRACE)
        assert [row.event_id for row in ready] == [0, 1, 4]
        assert held == {Hold.BUDGET: 2}

    def test_permanent_refusals_are_sent_without_reserving_budget(self):
        rows = [
            self.row(0, 1, Action.AD_CLICK),  # not offered
            self.row(1, 2, Action.INSTALL),  # consent granted after it: NoConsent for good
            self.row(2, 3, Action.INSTALL),
        ]
        late = _record(0x3F, self.NOW + DAY, dict.fromkeys(range(6), self.NOW - 5))
        consents = {rows[0].consumer: self.GRANTED, rows[1].consumer: late, rows[2].consumer: self.GRANTED}
        ready, held = select_ready(rows, self.RULES, TOKEN, consents, self.NOW, GRACE)
        assert [row.event_id for row in ready] == [0, 1, 2] and not held

    def test_missing_consent_holds_within_the_grace(self):
        rows = [self.row(0, 1, Action.AD_VIEW), self.row(1, 1, Action.INSTALL), self.row(2, 2, Action.AD_VIEW)]
        ready, held = select_ready(rows, self.RULES, TOKEN, {rows[2].consumer: self.GRANTED}, self.NOW, GRACE)
        assert [row.event_id for row in ready] == [2]
        assert held == {Hold.NO_CONSENT_YET: 2}


class TestFees:
    def test_a_replacement_raises_both_fields_by_at_least_an_eighth(self):
        old = Fees(max_fee_per_gas=3_000_000_001, max_priority_fee_per_gas=1_000_000_000)
        new = replacement_fees(old, Fees(1, 1), 1_250)
        assert new.max_fee_per_gas * 8 >= old.max_fee_per_gas * 9
        assert new.max_priority_fee_per_gas * 8 >= old.max_priority_fee_per_gas * 9

    def test_a_replacement_follows_the_market_when_it_moved_more(self):
        new = replacement_fees(Fees(3, 1), Fees(500, 7), 2_500)
        assert new == Fees(500, 7)

    def test_bump_rounds_up_and_always_moves(self):
        assert bump(0, 2_500) == 1 and bump(7, 1_250) == 8 and bump(8, 1_250) == 9

    def test_a_bump_below_an_eighth_is_refused(self):
        with pytest.raises(ValueError):
            GasPolicy(replacement_bump_bps=1_000)


# -- on anvil ------------------------------------------------------------------------------------------------------


@pytest.mark.anvil
class TestRunOnce:
    def test_every_accepted_engagement_ends_once_and_the_outbox_matches_the_chain(self, scene: Scene):
        alice, bob, carol = scene.consumers[:3]
        for consumer in (alice, bob):
            scene.factory.consent(consumer)
        items = [
            scene.engagement(f"{name}-{action.name}-{n}", who, action)
            for name, who in (("alice", alice), ("bob", bob))
            for n, action in enumerate((Action.INSTALL, Action.AD_VIEW, Action.EMAIL_OPEN, Action.INSTALL))
        ]
        items.append(scene.engagement("carol-ad", carol, Action.AD_VIEW))  # no consent: held within the grace
        assert {r.outcome for r in scene.accept(items)} == {IntakeOutcome.ACCEPTED}

        report = scene.batcher().run_once()

        assert (report.batches, report.engagements, report.settled, report.rejected) == (1, 8, 6, 2)
        assert report.reasons == {"lifetime_cap_reached": 2} and report.held == {Hold.NO_CONSENT_YET: 1}
        rows = scene.rows()
        assert rows[8].status == QUEUED
        del rows[8]
        assert {row.event_id: row.reject_reason for row in rows.values() if row.status == REJECTED} == {
            3: RejectReason.LIFETIME_CAP_REACHED,
            7: RejectReason.LIFETIME_CAP_REACHED,
        }
        assert rows[0].amount == REWARDS[Action.INSTALL] and rows[2].amount == 0  # email opens are free
        # past the grace the refusal is final: sent, and the chain records why
        scene.chain.increase_time(GRACE)
        assert scene.batcher().run_once().reasons == {"no_consent": 1}
        assert scene.rows()[8].reject_reason == RejectReason.NO_CONSENT
        scene.assert_outbox_matches_chain()
        assert len(scene.settle_transactions()) == 2

    def test_batches_are_split_under_the_gas_cap_and_sent_with_consecutive_nonces(self, scene: Scene):
        consumers = scene.consumers[:4]
        for consumer in consumers:
            scene.factory.consent(consumer)
        items = [
            scene.engagement(f"{i}-{n}", who, Action.AD_VIEW) for i, who in enumerate(consumers) for n in range(10)
        ]
        scene.accept(items)

        report = scene.batcher(max_batch_gas=200_000).run_once()  # one consumer's 10 per batch

        batches = scene.batches()
        assert report.batches == len(batches) == 4 and report.settled == 40
        assert [batch.nonce for batch in batches] == list(range(batches[0].nonce, batches[0].nonce + len(batches)))
        assert all(batch.gas_limit <= 200_000 for batch in batches)
        assert report.gas_per_engagement is not None and report.gas_per_engagement < 15_000
        scene.assert_outbox_matches_chain()

    def test_an_engagement_stamped_ahead_of_the_chain_waits_for_the_chain_clock(self, scene: Scene):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        now = scene.chain.latest_timestamp()
        scene.accept([scene.engagement("ahead", alice, Action.AD_VIEW, at=now + 30)], now=now)

        report = scene.batcher().run_once()

        assert report.batches == 0 and scene.statuses() == {QUEUED: 1}  # never TimeInFuture
        scene.chain.increase_time(30)
        assert scene.batcher().run_once().settled == 1
        assert scene.rows()[0].status == SETTLED
        scene.assert_outbox_matches_chain()

    def test_no_consent_yet_stays_queued_and_settles_once_a_grant_lands_at_its_time(self, scene: Scene):
        alice = scene.consumers[0]
        at = scene.chain.latest_timestamp()
        scene.accept([scene.engagement("early", alice, Action.AD_VIEW, at=at)])

        assert scene.batcher().run_once().held == {Hold.NO_CONSENT_YET: 1}
        assert scene.statuses() == {QUEUED: 1} and scene.batches() == []

        # the grant is mined in a block with the engagement's timestamp (several blocks a second, as on L2s)
        scene.chain.rpc("evm_setNextBlockTimestamp", [at])
        scene.factory.consent(alice)
        report = scene.batcher().run_once()

        assert report.settled == 1 and scene.rows()[0].amount == REWARDS[Action.AD_VIEW]
        scene.assert_outbox_matches_chain()

    def test_permanent_refusals_are_sent_and_recorded_with_the_chains_reason(self, suite: Suite, database: Database):
        purposes = {a: p for a, p in CampaignFactory(suite).terms().purposes.items() if a != Action.AD_CLICK}
        scene = _scene(suite, database, purposes=purposes)
        alice, bob = scene.consumers[:2]
        scene.factory.consent(alice)
        before = scene.chain.latest_timestamp() - 100
        scene.factory.consent(bob)  # granted after bob's engagement: it can never count
        items = [
            scene.engagement("click", alice, Action.AD_CLICK),
            scene.engagement("open-1", alice, Action.DAILY_OPEN),
            scene.engagement("open-2", alice, Action.DAILY_OPEN),
            scene.engagement("bob", bob, Action.AD_VIEW, at=before),
        ]
        scene.accept(items)

        report = scene.batcher().run_once()

        assert report.held == {} and report.engagements == 4
        reasons = {row.event_id: row.reject_reason for row in scene.rows().values()}
        assert reasons == {
            0: RejectReason.ACTION_NOT_OFFERED,
            1: None,
            2: RejectReason.DAILY_CAP_REACHED,
            3: RejectReason.NO_CONSENT,
        }
        scene.assert_outbox_matches_chain()

    def test_what_the_budget_cannot_pay_stays_queued_until_a_top_up(self, suite: Suite, database: Database):
        scene = _scene(suite, database, budget=5 * TOKEN // 2)
        consumers = scene.consumers[:4]
        for consumer in consumers:
            scene.factory.consent(consumer)
        scene.accept([scene.engagement(f"install-{i}", c, Action.INSTALL) for i, c in enumerate(consumers)])

        report = scene.batcher().run_once()

        assert (report.settled, report.held) == (2, {Hold.BUDGET: 2})
        assert scene.statuses() == {SETTLED: 2, QUEUED: 2}
        marketer, escrow = scene.chain.accounts.marketer, scene.suite.escrow
        transact(scene.chain, marketer, scene.suite.token.functions.approve(escrow.address, 2 * TOKEN))
        transact(scene.chain, marketer, escrow.functions.topUp(scene.campaign_id, 2 * TOKEN))
        assert scene.batcher().run_once().settled == 2
        assert all(row.reject_reason is None for row in scene.rows().values())  # no BudgetExhausted burnt
        scene.assert_outbox_matches_chain()

    def test_a_paused_campaign_keeps_its_engagements_queued(self, scene: Scene):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        scene.accept([scene.engagement("view", alice, Action.AD_VIEW)])
        marketer, escrow = scene.chain.accounts.marketer, scene.suite.escrow
        transact(scene.chain, marketer, escrow.functions.pause(scene.campaign_id))

        assert scene.batcher().run_once().held == {Hold.CAMPAIGN_PAUSED: 1}
        assert scene.batches() == []

        transact(scene.chain, marketer, escrow.functions.unpause(scene.campaign_id))
        assert scene.batcher().run_once().settled == 1
        scene.assert_outbox_matches_chain()

    def test_the_same_engagement_accepted_three_times_is_settled_once(self, scene: Scene):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        item = scene.engagement("only-once", alice, Action.INSTALL)
        outcomes = [scene.accept([item])[0] for _ in range(3)]
        assert [(r.outcome, r.event_id) for r in outcomes] == [
            (IntakeOutcome.ACCEPTED, 0),
            (IntakeOutcome.REPLAY, 0),
            (IntakeOutcome.REPLAY, 0),
        ]
        batcher = scene.batcher()
        reports = [batcher.run_once() for _ in range(3)]

        assert [r.settled for r in reports] == [1, 0, 0]
        replay = scene.accept([item])[0]
        assert replay.outcome == IntakeOutcome.REPLAY and replay.state is not None
        assert replay.state.status == SETTLED
        assert len(scene.settle_transactions()) == 1
        scene.assert_outbox_matches_chain()


@pytest.mark.anvil
class TestCrashes:
    @staticmethod
    def _scene_with_two_consumers(scene: Scene) -> None:
        alice, bob = scene.consumers[:2]
        for consumer in (alice, bob):
            scene.factory.consent(consumer)
        scene.accept([scene.engagement(f"{n}", who, Action.AD_VIEW) for n, who in enumerate((alice, bob, alice))])

    def test_a_crash_after_the_broadcast_is_recovered_from_the_receipt(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ):
        self._scene_with_two_consumers(scene)
        original = receipts.SettleTransactions.broadcast

        def broadcast_then_die(self: receipts.SettleTransactions, raw_tx: str) -> Any:
            original(self, raw_tx)
            raise KeyboardInterrupt("killed between broadcast and receipt")

        with monkeypatch.context() as patch:
            patch.setattr(receipts.SettleTransactions, "broadcast", broadcast_then_die)
            with pytest.raises(KeyboardInterrupt):
                scene.batcher().run_once()
        assert scene.statuses() == {SENT: 3}
        (batch,) = scene.batches()
        assert batch.status == BatchStatus.SENT and batch.raw_tx

        report = scene.batcher().run_once()  # a new process: recover() reads the receipt

        assert (report.batches, report.settled, report.rebroadcast) == (0, 3, 0)
        assert scene.settle_transactions() == [batch.tx_hash]
        scene.assert_outbox_matches_chain()

    def test_a_crash_before_the_broadcast_rebroadcasts_the_recorded_transaction(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ):
        self._scene_with_two_consumers(scene)

        def die(self: receipts.SettleTransactions, raw_tx: str) -> Any:
            raise KeyboardInterrupt("killed after the commit, before the broadcast")

        with monkeypatch.context() as patch:
            patch.setattr(receipts.SettleTransactions, "broadcast", die)
            with pytest.raises(KeyboardInterrupt):
                scene.batcher().run_once()
        assert scene.settle_transactions() == []

        report = scene.batcher().run_once()

        (batch,) = scene.batches()
        assert (report.rebroadcast, report.settled, batch.status) == (1, 3, BatchStatus.MINED)
        assert scene.settle_transactions() == [batch.tx_hash]  # the very transaction recorded before the crash
        scene.assert_outbox_matches_chain()

    def test_sigkill_between_broadcast_and_receipt_loses_and_doubles_nothing(self, scene: Scene):
        self._scene_with_two_consumers(scene)
        url = scene.database.engine.url.render_as_string(hide_password=False)
        chain_url = scene.chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, chain_url, url, repr(asdict(scene.suite.deployment))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            line = _read_line(child, timeout=60)
            assert line.startswith("broadcast 0x"), line
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        tx_hash = line.split()[1]
        assert scene.statuses() == {SENT: 3}

        report = scene.batcher().run_once()

        assert (report.batches, report.settled) == (0, 3)
        assert scene.settle_transactions() == [tx_hash]
        scene.assert_outbox_matches_chain()


# The batcher in a process of its own, killed with SIGKILL once its batch is on the wire (argv: chain URL, database
# URL, the deployment as a Python literal). It prints the hash it broadcast, then hangs until killed.
_CHILD = """
import ast, sys, time
from web3 import HTTPProvider, Web3
from ledger.chain import Chain, DevAccounts
from ledger.db import engine_from_url, session_factory
from ledger.settings import DEV_MNEMONIC
from ledger.settlement import batcher as batcher_module
from ledger.settlement import receipts
from ledger.settlement.batcher import Batcher
from ledger.suite import Deployment

original = receipts.SettleTransactions.broadcast

def broadcast(self, raw_tx):
    verdict = original(self, raw_tx)
    print("broadcast 0x" + Web3.keccak(hexstr=raw_tx).hex().removeprefix("0x"), flush=True)
    time.sleep(3600)
    return verdict

receipts.SettleTransactions.broadcast = broadcast
chain_url, database_url, deployment = sys.argv[1], sys.argv[2], ast.literal_eval(sys.argv[3])
accounts = DevAccounts.from_mnemonic(DEV_MNEMONIC)
chain = Chain(Web3(HTTPProvider(chain_url)), "anvil", accounts)
Batcher(chain, Deployment(**deployment), session_factory(engine_from_url(database_url)), accounts.attester).run_once()
"""


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(child.stdout.readline() if child.stdout else ""))
    reader.start()
    reader.join(timeout)
    assert found, f"the child printed nothing within {timeout} s"
    return found[0].strip()


@pytest.mark.anvil
class TestRecover:
    @staticmethod
    @contextlib.contextmanager
    def _sent(scene: Scene, clock: Clock | None = None) -> Iterator[tuple[Batcher, SettlementBatch]]:
        """One batch of two engagements broadcast and left in the pool: anvil mines only on evm_mine inside."""
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        scene.accept([scene.engagement(f"v{n}", alice, Action.AD_VIEW) for n in range(2)])
        batcher = scene.batcher(clock)
        scene.chain.rpc("evm_setAutomine", [False])
        try:
            report = batcher.send_ready()
            assert report.batches == 1 and scene.statuses() == {SENT: 2}
            (batch,) = scene.batches()
            yield batcher, batch
        finally:
            scene.chain.rpc("evm_setAutomine", [True])

    def test_a_dropped_transaction_is_rebroadcast_as_it_was(self, scene: Scene):
        with self._sent(scene) as (batcher, batch):
            scene.chain.rpc("anvil_dropTransaction", [batch.tx_hash])
            assert batcher.recover().rebroadcast == 1
            scene.chain.rpc("evm_mine")
            assert batcher.recover().settled == 2
        (after,) = scene.batches()
        assert (after.tx_hash, after.status) == (batch.tx_hash, BatchStatus.MINED)
        scene.assert_outbox_matches_chain()

    def test_a_stuck_transaction_is_replaced_with_the_same_nonce_at_a_higher_fee(self, scene: Scene):
        clock = Clock(time.time())
        with self._sent(scene, clock) as (batcher, batch):
            assert batcher.recover().replaced == 0  # pending, not stuck yet
            clock.now += batcher.options.stuck_after_seconds + 1
            assert batcher.recover().replaced == 1
            scene.chain.rpc("evm_mine")
            assert batcher.recover().settled == 2
        old, new = scene.batches()
        assert (old.status, new.status, old.nonce) == (BatchStatus.DROPPED, BatchStatus.MINED, new.nonce)
        assert (old.replaces_id, new.replaces_id) == (None, old.id)  # the history of the nonce, from the table
        before, after = fees_of(old), fees_of(new)
        assert after.max_fee_per_gas * 8 >= before.max_fee_per_gas * 9
        assert after.max_priority_fee_per_gas * 8 >= before.max_priority_fee_per_gas * 9
        assert scene.settle_transactions() == [new.tx_hash]  # both hashes stay findable in settlement_batches
        scene.assert_outbox_matches_chain()

    def test_a_transaction_evicted_for_its_fee_is_replaced_at_the_new_base_fee(self, scene: Scene):
        with self._sent(scene) as (batcher, batch):
            scene.chain.rpc("anvil_setNextBlockBaseFeePerGas", [hex(200 * 10**9)])
            scene.chain.rpc("evm_mine")  # the pool drops ours: its max fee is below this block's base fee
            assert scene.rows()[0].status == SENT
            assert batcher.recover().replaced == 1
            scene.chain.rpc("evm_mine")
            assert batcher.recover().settled == 2
        old, new = scene.batches()
        assert (old.status, new.status) == (BatchStatus.DROPPED, BatchStatus.MINED)
        base_fee = int(scene.chain.w3.eth.get_block(new.block_number)["baseFeePerGas"])
        assert fees_of(new).max_fee_per_gas >= base_fee > fees_of(old).max_fee_per_gas
        scene.assert_outbox_matches_chain()

    def test_a_nonce_taken_by_another_transaction_puts_the_batch_back_in_the_queue(self, scene: Scene):
        with self._sent(scene) as (batcher, batch):
            scene.chain.rpc("anvil_dropTransaction", [batch.tx_hash])
            attester = scene.attester
            send_raw(scene.chain, attester, to=attester.address, value=1, nonce=batch.nonce)
            scene.chain.rpc("evm_mine")
            report = batcher.recover()
        assert report.requeued == 2 and scene.statuses() == {QUEUED: 2}
        assert scene.batches()[0].status == BatchStatus.DROPPED

        report = batcher.run_once()

        assert report.settled == 2
        dropped, mined = scene.batches()
        assert (dropped.status, mined.status, mined.nonce) == (BatchStatus.DROPPED, BatchStatus.MINED, batch.nonce + 1)
        scene.assert_outbox_matches_chain()

    def test_a_reverted_batch_goes_back_to_the_queue_with_the_decoded_reason(self, scene: Scene):
        marketer, escrow = scene.chain.accounts.marketer, scene.suite.escrow
        with self._sent(scene) as (batcher, batch):
            # the marketer removes the attester with a higher tip: mined ahead of the batch, in the same block
            removal = escrow.functions.removeAttester(scene.campaign_id, scene.attester.address)
            send_raw(scene.chain, marketer, removal, maxPriorityFeePerGas=10 * 10**9, gas=200_000)
            scene.chain.rpc("evm_mine")
            report = batcher.recover()
        (reverted,) = report.reverted
        assert isinstance(reverted.error, EscrowNotAttester) and not isinstance(reverted.error, UnknownRevert)
        assert (reverted.error.campaign_id, reverted.error.caller) == (scene.campaign_id, scene.attester.address)
        assert (reverted.batch_id, reverted.tx_hash, report.requeued) == (batch.id, batch.tx_hash, 2)
        (after,) = scene.batches()
        assert after.status == BatchStatus.REVERTED and after.gas_used is not None
        assert after.error_code == "not_attester" and "EscrowNotAttester" in (after.error_detail or "")
        rows = scene.rows()
        assert {row.status for row in rows.values()} == {QUEUED}
        assert {row.batch_id for row in rows.values()} == {batch.id}  # the failed batch stays findable

        assert batcher.run_once().held == {Hold.NOT_ATTESTER: 2}  # no second revert: the pre-check sees it
        transact(scene.chain, marketer, escrow.functions.addAttester(scene.campaign_id, scene.attester.address))
        assert batcher.run_once().settled == 2
        scene.assert_outbox_matches_chain()

    def test_a_revert_no_pre_check_foresees_pauses_the_campaign_instead_of_repeating(
        self, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        scene.accept([scene.engagement(f"v{n}", alice, Action.AD_VIEW) for n in range(2)])
        clock = Clock(time.time())
        batcher = scene.batcher(clock)
        with monkeypatch.context() as patch:
            patch.setattr(batcher_module, "estimate_gas", lambda engagements: 40_000)  # out of gas
            report = batcher.run_once()
        (reverted,) = report.reverted
        assert isinstance(reverted.error, UnknownRevert) and report.requeued == 2
        assert scene.statuses() == {QUEUED: 2}

        assert batcher.run_once().held == {Hold.AFTER_REVERT: 2}  # not resent into the same revert
        clock.now += batcher.options.revert_pause_seconds
        assert batcher.run_once().settled == 2
        assert [batch.status for batch in scene.batches()] == [BatchStatus.REVERTED, BatchStatus.MINED]
        scene.assert_outbox_matches_chain()


@pytest.mark.anvil
class TestFollow:
    def test_a_partial_batch_waits_for_max_wait_while_full_ones_go_at_once(self, scene: Scene):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        now = scene.chain.latest_timestamp()
        scene.accept([scene.engagement(f"v{n}", alice, Action.AD_VIEW) for n in range(6)], now=now)
        clock = Clock(now)
        # room for 4 engagements of one consumer: batch cost + a new group + one bitmap word + 4 x 5,000
        batcher = scene.batcher(clock, max_batch_gas=60_000 + 35_000 + 25_000 + 4 * 5_000, max_wait_seconds=30)

        first = batcher.send_ready(flush=False)

        assert (first.engagements, first.held) == (4, {Hold.WAITING: 2})
        clock.now += 30
        assert batcher.send_ready(flush=False).engagements == 2
        assert batcher.recover().settled == 6
        scene.assert_outbox_matches_chain()

    def test_follow_settles_what_arrives_until_stopped(self, scene: Scene):
        alice = scene.consumers[0]
        scene.factory.consent(alice)
        batcher = scene.batcher(max_wait_seconds=0)
        stop = threading.Event()
        follower = threading.Thread(target=batcher.follow, args=(0.05, stop), daemon=True)
        follower.start()
        try:
            scene.accept([scene.engagement("late", alice, Action.AD_VIEW)])
            deadline = time.monotonic() + 20
            while scene.statuses() != {SETTLED: 1} and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            follower.join(timeout=10)
        assert not follower.is_alive() and scene.statuses() == {SETTLED: 1}
        scene.assert_outbox_matches_chain()


@pytest.mark.anvil
class TestSettleCommand:
    def test_adledger_settle_settles_the_outbox(self, scene: Scene, tmp_path: Path):
        from scripts.cli import app

        alice = scene.consumers[0]
        scene.factory.consent(alice)
        scene.accept([scene.engagement("cli", alice, Action.AD_VIEW)])
        scene.suite.deployment.save(tmp_path / "deployment.json")
        env = {
            "ADLEDGER_DATA_DIR": str(tmp_path),
            "ADLEDGER_DATABASE_URL": scene.database.engine.url.render_as_string(hide_password=False),
        }
        chain_url = scene.chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]

        result = CliRunner().invoke(app, ["settle", "--chain", chain_url], env=env)

        assert result.exit_code == 0, result.output
        assert "1 settled, 0 rejected" in result.output
        assert scene.statuses() == {SETTLED: 1}
