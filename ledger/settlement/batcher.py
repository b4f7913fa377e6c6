"""The settlement batcher: drains the engagement outbox into settle() transactions, per campaign and attester.

One cycle (``run_once``; ``follow`` repeats it):

1. ``recover``: follow up what earlier cycles, or a process that died, left in flight (``receipts``).
2. Per campaign with queued engagements of our attester, read them with ``until`` = the latest block's time (the
   escrow rejects a later one as TimeInFuture), by consumer then time (a daily-capped engagement from a day before
   the consumer's latest is StaleDay), and pre-check at that block what could still change. An event id is
   consumed by its first outcome, paid or rejected, so what may be temporary stays queued rather than burnt:

   - the campaign paused, closed or unknown, or our attester not (or no longer) on it: the campaign waits;
   - the budget, less what our sent and unmined batches may still pay, below a reward: held;
   - consent the consumer does not hold now (purposes missing, revoked or expired): held for
     ``consent_grace_seconds`` of chain time after the engagement, then sent. The escrow counts a purpose only if
     it was granted at or before the engagement, and a grant starts at its block's time, so once the chain's
     clock has passed the engagement only a grant in a block with the same timestamp (chains with several blocks
     a second; anvil) or a reorg can still help it: after the grace the refusal is final and the chain records it.

   A consumer's engagements go in time order and never around a held one: after one is held, that consumer's
   later ones wait too. What fails a permanent rule is sent (the action not offered, outside the dates, consent
   granted only after the engagement, caps): the chain records the rejection and its reason, and it ends there.
3. Batches under ``max_batch_gas`` (``plan_batches``), each signed (nonce from the node's pending count, counted
   locally after; fees from the latest base fee), recorded with its rows marked sent in ONE commit, then
   broadcast. ``follow`` sends a batch once it is full by gas or its oldest engagement has waited
   ``max_wait_seconds``; ``run_once`` sends whatever is ready.
4. Wait for the receipts and mark each engagement from its log; a reverted batch goes back to the queue with its
   decoded error (``receipts``).

One batcher per attester key: two processes signing for one key would race for its nonces.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import HTTPProvider
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint

from ledger.chain import Chain
from ledger.contracts import named_reverts
from ledger.errors import (
    ChainError,
    EscrowCampaignClosed,
    EscrowCampaignPaused,
    EscrowNotAttester,
    EscrowUnknownCampaign,
)
from ledger.model import ACTION_COUNT, CampaignStatus
from ledger.settlement.batch import (
    DEFAULT_BATCH_GAS,
    GAS_PER_ENGAGEMENT,
    encode_batch,
    estimate_gas,
    plan_batches,
)
from ledger.settlement.fees import Fees, GasPolicy
from ledger.settlement.outbox import QueuedEngagement, next_queued
from ledger.settlement.outbox_models import BatchStatus, EngagementStatus, OutboxEngagement, SettlementBatch
from ledger.settlement.precheck import CampaignRules, CampaignView, ConsentVerdict, Hold, consent_verdict, select_ready
from ledger.settlement.receipts import SettleTransactions
from ledger.settlement.report import Broadcast, RevertedBatch, SettleReport
from ledger.suite import Deployment, Suite
from ledger.types import checksummed

__all__ = [
    "Batcher",
    "BatcherOptions",
    "CampaignRules",
    "ConsentVerdict",
    "GasPolicy",
    "Hold",
    "RevertedBatch",
    "SettleReport",
    "consent_verdict",
    "select_ready",
]

_log = logging.getLogger(__name__)

#: The longest pause between cycles while following a node that does not answer.
FOLLOW_MAX_PAUSE = 60.0
#: Queued engagements read per campaign and query: a few full batches at the default gas cap (~2,500 each).
DRAIN_LIMIT = 10_000
#: Consent records read per JSON-RPC batch of eth_calls.
_CALL_CHUNK = 500


@dataclass(frozen=True)
class BatcherOptions:
    """The batcher's knobs (the CLI fills them from flags and Settings)."""

    max_batch_gas: int = DEFAULT_BATCH_GAS  # each batch's estimate_gas stays within it (and under EIP-7825's cap)
    max_wait_seconds: float = 30.0  # follow: a batch not full by gas goes once its oldest engagement waited this
    consent_grace_seconds: int = 60  # chain seconds an engagement without consent stays queued (module doc)
    gas: GasPolicy = field(default_factory=GasPolicy)
    confirmations: int = 0  # blocks a receipt must be buried under before its engagements are marked
    receipt_timeout: float = 60.0  # how long a cycle waits for its receipts before leaving them to recover()
    stuck_after_blocks: int = 10  # a pending transaction is replaced after this many blocks ...
    stuck_after_seconds: float = 180.0  # ... or this many seconds since it was sent
    revert_pause_seconds: float = 600.0  # a campaign waits this long after a revert its views cannot explain
    drain_limit: int = DRAIN_LIMIT

    def __post_init__(self) -> None:
        if self.max_wait_seconds < 0 or self.consent_grace_seconds < 0 or self.confirmations < 0:
            raise ValueError("max_wait_seconds, consent_grace_seconds and confirmations cannot be negative")
        if self.drain_limit < 1:
            raise ValueError("drain_limit must be at least 1")


#: Reverts the next cycle's pre-checks see coming by themselves (the campaign then waits in its hold). Any other
#: (out of gas, a malformed batch: a bug) would repeat with every resend, so the campaign pauses instead.
_FORESEEN_REVERTS = (EscrowNotAttester, EscrowCampaignPaused, EscrowCampaignClosed, EscrowUnknownCampaign)


class _StopSending(Exception):
    """The node refused a new batch: no more sends this cycle (the nonce sequence or the fees need a fresh look)."""


class Batcher:
    """Settles the outbox's queued engagements reported by ``attester`` on one deployment (see the module doc)."""

    def __init__(
        self,
        chain: Chain,
        suite_or_deployment: Suite | Deployment,
        sessions: sessionmaker[Session],
        attester: LocalAccount,
        options: BatcherOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain, self.sessions, self.attester = chain, sessions, attester
        self.options = options or BatcherOptions()
        self.suite = (
            suite_or_deployment if isinstance(suite_or_deployment, Suite) else Suite(chain, suite_or_deployment)
        )
        self.escrow = self.suite.deployment.escrow.lower()
        self.me = attester.address.lower()
        self.clock = clock
        self.transactions = SettleTransactions(
            chain,
            self.escrow,
            sessions,
            attester,
            self.options.gas,
            confirmations=self.options.confirmations,
            stuck_after_blocks=self.options.stuck_after_blocks,
            stuck_after_seconds=self.options.stuck_after_seconds,
            clock=clock,
        )
        self.stats = SettleReport()
        self._rules: dict[int, CampaignRules] = {}
        self._paused_until: dict[int, float] = {}  # campaign -> clock() when it may send again after a revert

    # -- public ---------------------------------------------------------------------------------------------

    def run_once(self) -> SettleReport:
        """One cycle: recover, send everything ready, wait for the receipts (up to ``receipt_timeout``)."""
        return self._cycle(flush=True)

    def follow(self, poll_seconds: float, stop_event: threading.Event) -> SettleReport:
        """Cycles until ``stop_event`` is set, sending a batch once it is full by gas or its oldest engagement has
        waited ``max_wait_seconds``. A node that does not answer is retried with a doubling pause (up to
        ``FOLLOW_MAX_PAUSE``) and logged; the outbox and the batch rows say where to resume. Anything else (a
        database error) stops the follower."""
        pause = poll_seconds
        while not stop_event.is_set():
            try:
                self._cycle(flush=False)
            except (ChainError, Web3Exception, OSError) as exc:
                pause = min(FOLLOW_MAX_PAUSE, pause * 2)
                _log.warning("settle: %s; retrying in %.0f s", exc, pause)
                stop_event.wait(pause)
                continue
            pause = poll_seconds
            stop_event.wait(poll_seconds)
        return self.stats

    def recover(self) -> SettleReport:
        """Follows up every open batch of our attester (receipts, rebroadcast, replacement, requeue)."""
        report = SettleReport()
        self.transactions.recover(report)
        self._after(report)
        return report

    def send_ready(self, flush: bool = True) -> SettleReport:
        """Pre-checks, records and broadcasts what is ready, without waiting for receipts (``batch_ids``)."""
        report = SettleReport()
        self._dispatch(report, flush)
        self._after(report)
        return report

    # -- one cycle ------------------------------------------------------------------------------------------

    def _cycle(self, flush: bool) -> SettleReport:
        report = SettleReport()
        resent = self.transactions.recover(report)
        self._dispatch(report, flush)
        if resent or report.batch_ids:
            self.transactions.wait([*resent, *report.batch_ids], self.options.receipt_timeout, report)
        self._after(report)
        return report

    def _after(self, report: SettleReport) -> None:
        for reverted in report.reverted:
            if not isinstance(reverted.error, _FORESEEN_REVERTS):
                self._paused_until[reverted.campaign_id] = self.clock() + self.options.revert_pause_seconds
                _log.error(
                    "settle: campaign %d paused for %.0f s: its batch %d reverted (%s), which a resend would repeat",
                    reverted.campaign_id,
                    self.options.revert_pause_seconds,
                    reverted.batch_id,
                    reverted.error,
                )
        self.stats.add(report)

    def _dispatch(self, report: SettleReport, flush: bool) -> None:
        campaigns = self._campaigns_with_queued()
        if not campaigns:
            return
        head = self.chain.w3.eth.get_block("latest")
        number, now = int(head["number"]), int(head["timestamp"])
        fees = self.transactions.market_fees(int(head.get("baseFeePerGas", 0)))
        if not self.transactions.within_cap(fees):
            cap = self.options.gas.max_fee_cap
            _log.warning("settle: the market asks %d wei/gas, above the cap %s: waiting", fees.max_fee_per_gas, cap)
            report.held[Hold.FEE_CAP] += self._count_queued()
            return
        nonce = self._next_nonce()
        try:
            for campaign_id in campaigns:
                nonce = self._dispatch_campaign(campaign_id, number, now, fees, nonce, flush, report)
        except _StopSending:
            pass
        finally:
            self.chain.forget_nonces()  # Chain.send re-reads the attester's nonce if anything else sends for it

    def _dispatch_campaign(
        self, campaign_id: int, number: int, now: int, fees: Fees, nonce: int, flush: bool, report: SettleReport
    ) -> int:
        """Sends the campaign's ready batches from ``nonce``; the next free nonce."""
        view = self._view(campaign_id, number)
        held: Counter[str] = Counter()
        while True:
            rows = self._queued(campaign_id, now)
            if not rows:
                break
            if view.hold is not None or view.rules is None:
                held = Counter({view.hold or Hold.UNKNOWN_CAMPAIGN: len(rows)})
                break
            if self.clock() < self._paused_until.get(campaign_id, 0.0):
                held = Counter({Hold.AFTER_REVERT: len(rows)})
                break
            budget = view.budget - self._reserved(campaign_id, view.rules)
            consents = self._consent_records(sorted({row.consumer for row in rows}), view.rules.brand, number)
            ready, held = select_ready(rows, view.rules, budget, consents, now, self.options.consent_grace_seconds)
            batches = self._plan(ready)
            if batches and not flush and not self._due(batches[-1]):
                held[Hold.WAITING] += len(batches.pop())
            for batch in batches:
                if self._send(campaign_id, batch, nonce, fees, number, report):
                    nonce += 1
            if len(rows) < self.options.drain_limit or not batches:
                break
        report.held.update(held)  # the last read's: earlier reads of a long queue saw the same held rows
        return nonce

    def _plan(self, ready: list[QueuedEngagement]) -> list[list[QueuedEngagement]]:
        if not ready:
            return []
        by_event = {row.event_id: row for row in ready}
        planned = plan_batches([row.engagement() for row in ready], self.options.max_batch_gas)
        return [[by_event[engagement.event_id] for engagement in batch] for batch in planned]

    def _due(self, batch: list[QueuedEngagement]) -> bool:
        """Full by gas (no room for even the cheapest engagement: one more of a consumer already in it), or its oldest
        engagement has waited ``max_wait_seconds`` since intake."""
        if estimate_gas([row.engagement() for row in batch]) + GAS_PER_ENGAGEMENT > self.options.max_batch_gas:
            return True
        oldest = min(row.accepted_at for row in batch).timestamp()
        return self.clock() - oldest >= self.options.max_wait_seconds

    def _send(
        self, campaign_id: int, rows: list[QueuedEngagement], nonce: int, fees: Fees, head: int, report: SettleReport
    ) -> bool:
        """Signs, records (one commit) and broadcasts one batch; False when its rows were taken meanwhile."""
        engagements = [row.engagement() for row in rows]
        data = self.suite.escrow.encode_abi("settle", [campaign_id, encode_batch(engagements)])
        gas = estimate_gas(engagements)  # an upper bound that needs no node: it holds for pipelined batches too
        raw_tx, tx_hash = self.transactions.sign(data, gas, nonce, fees)
        batch_id = self.transactions.record(
            campaign_id=campaign_id,
            attester=self.me,
            nonce=nonce,
            raw_tx=raw_tx,
            tx_hash=tx_hash,
            gas_limit=gas,
            row_ids=[row.id for row in rows],
        )
        if batch_id is None:
            _log.warning("settle: campaign %d's engagements were taken by another batcher; skipped", campaign_id)
            return False
        verdict, message = self.transactions.broadcast(raw_tx)
        if verdict not in (Broadcast.ACCEPTED, Broadcast.KNOWN):
            # refused outright: this signed transaction exists nowhere but in our row, so it can be dropped
            self.transactions.requeue([batch_id], BatchStatus.DROPPED, report)
            _log.error("settle: the node refused batch %d of campaign %d: %s", batch_id, campaign_id, message)
            raise _StopSending
        self.transactions.sent(tx_hash, head)
        report.batches += 1
        report.engagements += len(rows)
        report.batch_ids.append(batch_id)
        return True

    # -- reads ----------------------------------------------------------------------------------------------

    def _campaigns_with_queued(self) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(OutboxEngagement.campaign_id)
                    .where(*self._ours(), OutboxEngagement.status == EngagementStatus.QUEUED)
                    .distinct()
                    .order_by(OutboxEngagement.campaign_id)
                )
            )

    def _count_queued(self) -> int:
        with self.sessions() as session:
            query = select(func.count()).where(*self._ours(), OutboxEngagement.status == EngagementStatus.QUEUED)
            return int(session.scalar(query) or 0)

    def _ours(self) -> tuple[Any, ...]:
        return (
            OutboxEngagement.chain_id == self.chain.chain_id,
            OutboxEngagement.escrow == self.escrow,
            OutboxEngagement.attester == self.me,
        )

    def _queued(self, campaign_id: int, until: int) -> list[QueuedEngagement]:
        with self.sessions() as session:
            return next_queued(
                session,
                chain_id=self.chain.chain_id,
                escrow=self.escrow,
                campaign_id=campaign_id,
                limit=self.options.drain_limit,
                attester=self.me,
                until=until,
            )

    def _reserved(self, campaign_id: int, rules: CampaignRules) -> int:
        """What the campaign's sent, unmined engagements (any attester's) may still pay: the chain's budget at
        the head does not know about them yet."""
        with self.sessions() as session:
            counts = session.execute(
                select(OutboxEngagement.action, func.count())
                .where(
                    OutboxEngagement.chain_id == self.chain.chain_id,
                    OutboxEngagement.escrow == self.escrow,
                    OutboxEngagement.campaign_id == campaign_id,
                    OutboxEngagement.status == EngagementStatus.SENT,
                )
                .group_by(OutboxEngagement.action)
            ).all()
        return sum(rules.rewards[int(action)] * count for action, count in counts)

    def _next_nonce(self) -> int:
        """The node's pending count, or past our own open batches if the node has lost some (recover resends)."""
        pending = self.chain.w3.eth.get_transaction_count(cast(Any, self.attester.address), "pending")
        with self.sessions() as session:
            highest = session.scalar(
                select(func.max(SettlementBatch.nonce)).where(
                    SettlementBatch.status == BatchStatus.SENT,
                    SettlementBatch.chain_id == self.chain.chain_id,
                    SettlementBatch.sender == self.me,
                )
            )
        return max(int(pending), -1 if highest is None else int(highest) + 1)

    def _view(self, campaign_id: int, block: int) -> CampaignView:
        """The campaign's rules and live state at ``block``, and whether it must wait as a whole."""
        escrow = self.suite.escrow
        try:
            with named_reverts():
                _, status, budget, _ = escrow.functions.campaignState(campaign_id).call(block_identifier=block)
        except EscrowUnknownCampaign:
            return CampaignView(None, 0, Hold.UNKNOWN_CAMPAIGN)
        rules = self._rules.get(campaign_id)
        if rules is None:
            with named_reverts():
                terms = escrow.functions.terms(campaign_id).call(block_identifier=block)
            rules = CampaignRules(
                brand=str(terms[1]).lower(),
                starts_at=int(terms[2]),
                ends_at=int(terms[3]),
                rewards=tuple(int(r) for r in terms[4][:ACTION_COUNT]),
                purposes=tuple(int(p) for p in terms[5][:ACTION_COUNT]),
            )
            self._rules[campaign_id] = rules
        hold = {CampaignStatus.PAUSED: Hold.CAMPAIGN_PAUSED, CampaignStatus.CLOSED: Hold.CAMPAIGN_CLOSED}.get(
            CampaignStatus(status)
        )
        if hold is None:
            with named_reverts():
                is_attester = escrow.functions.isAttester(campaign_id, self.attester.address).call(
                    block_identifier=block
                )
            hold = None if is_attester else Hold.NOT_ATTESTER
        if hold is not None:
            _log.info("settle: campaign %d waits (%s)", campaign_id, hold.value)
        return CampaignView(rules, int(budget), hold)

    def _consent_records(self, consumers: Sequence[str], brand: str, block: int) -> dict[str, int]:
        """Each consumer's packed consent record for ``brand`` at ``block``: one storage read each, read in
        JSON-RPC batches where the node speaks HTTP."""
        registry = self.suite.registry
        brand = checksummed(brand)
        provider = self.chain.w3.provider
        if not isinstance(provider, HTTPProvider):
            return {
                consumer: int(registry.functions.consentRecord(checksummed(consumer), brand).call(None, block))
                for consumer in consumers
            }
        records: dict[str, int] = {}
        for start in range(0, len(consumers), _CALL_CHUNK):
            chunk = consumers[start : start + _CALL_CHUNK]
            requests = [
                (
                    RPCEndpoint("eth_call"),
                    [
                        {
                            "to": registry.address,
                            "data": registry.encode_abi("consentRecord", [checksummed(c), brand]),
                        },
                        hex(block),
                    ],
                )
                for c in chunk
            ]
            responses = provider.make_batch_request(requests)
            if not isinstance(responses, list):
                raise ChainError(f"the node refused a batch of consent reads: {responses.get('error')}")
            for consumer, response in zip(chunk, responses, strict=True):
                if "error" in response or not response.get("result"):
                    raise ChainError(f"reading the consent of {consumer} failed: {response.get('error')}")
                records[consumer] = int(str(response["result"]), 16)
        return records
