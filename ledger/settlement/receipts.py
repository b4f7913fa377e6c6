"""What became of each settle() transaction the batcher signed: fees, signing, the one commit before broadcast, and
the follow-up (receipts read into the outbox, lost transactions rebroadcast, stuck ones replaced at a higher fee,
dropped or reverted ones put back in the queue).

Every signed transaction is one ``settlement_batches`` row, written with its raw bytes *before* it is broadcast,
so a process killed at any point leaves a row that says what may be on the wire. ``recover`` walks the open
(``sent``) rows of our sender, grouped by nonce (a replacement is a second row with the same nonce, pointing at the
attempt it replaced by ``replaces_id``; each attempt keeps its own row and hash), and settles each group by what the
node knows: a receipt decides it; a nonce already used by a transaction that is none of ours means dropped (rows
back to the queue); a nonce still free with no attempt known to the node means lost (rebroadcast the newest raw
transaction, or replace it when the node now refuses its fee); an attempt pending too long is replaced with the
same nonce at fees at least 12.5% higher on both fields, as nodes require of a replacement.

A batch is only ever resent under its own nonce (rebroadcast, replacement), so it is mined at most once; should a
bug ever settle an engagement twice anyway, the escrow pays each (campaign, event id) once and records the repeat
as a DuplicateEvent rejection, never a second payment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import HTTPProvider
from web3.exceptions import TransactionNotFound, Web3RPCError
from web3.types import TxParams

from ledger.chain import DEVNET_TIP, Chain, revert_data
from ledger.contracts import decode_revert
from ledger.db import OUTBOX, SQLITE_IMMEDIATE
from ledger.errors import LedgerError, UnknownRevert
from ledger.indexer.rpc import RpcClient
from ledger.model import RejectReason
from ledger.settlement.fees import Fees, GasPolicy, replacement_fees
from ledger.settlement.outbox_models import BatchStatus, EngagementStatus, OutboxEngagement, SettlementBatch
from ledger.settlement.report import Broadcast, Mined, Outcome, RevertedBatch, SettleReport, outcomes

_log = logging.getLogger(__name__)

# Receipt polling while waiting: start quick (automining devnets answer at once), back off to a second.
_FIRST_POLL, _MAX_POLL = 0.05, 1.0
_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown")
_NONCE_USED = ("nonce too low", "nonce has already been used", "oldnonce")
_UNDERPRICED = ("underpriced", "less than block base fee", "fee cap less than", "fee too low", "feecap")


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def _now(clock: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


class SettleTransactions:
    """The settle() transactions of one sender (the attester) on one escrow: sign, record, broadcast, follow up."""

    def __init__(
        self,
        chain: Chain,
        escrow: str,
        sessions: sessionmaker[Session],
        account: LocalAccount,
        policy: GasPolicy,
        *,
        confirmations: int = 0,
        stuck_after_blocks: int = 10,
        stuck_after_seconds: float = 180.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain, self.sessions, self.account, self.policy = chain, sessions, account, policy
        self.escrow = escrow.lower()
        self.sender = account.address.lower()
        self.confirmations = confirmations
        self.stuck_after_blocks, self.stuck_after_seconds = stuck_after_blocks, stuck_after_seconds
        self.clock = clock
        self._rpc = RpcClient(chain)
        self._first_seen: dict[str, int] = {}  # tx hash -> head when this process first sent or saw it pending

    # -- fees and signing -----------------------------------------------------------------------------------

    def market_fees(self, base_fee: int) -> Fees:
        """EIP-1559 fees for a new transaction after a block with ``base_fee``."""
        tip = self.policy.priority_fee
        if tip is None:
            tip = DEVNET_TIP if self.chain.backend != "rpc" else int(self.chain.w3.eth.max_priority_fee)
        return Fees(self.policy.base_fee_multiplier * base_fee + tip, tip)

    def within_cap(self, fees: Fees) -> bool:
        return self.policy.max_fee_cap is None or fees.max_fee_per_gas <= self.policy.max_fee_cap

    def sign(self, data: str, gas: int, nonce: int, fees: Fees) -> tuple[str, str]:
        """(raw transaction, transaction hash), both 0x-hex, of a settle() call to the escrow."""
        signed = self.account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain.chain_id,
                "nonce": nonce,
                "to": to_checksum_address(self.escrow),
                "value": 0,
                "data": HexBytes(data),
                "gas": gas,
                "maxFeePerGas": fees.max_fee_per_gas,
                "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
            }
        )
        return _hex(signed.raw_transaction), _hex(signed.hash)

    # -- the one commit before broadcast --------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction, committed when the block ends normally (SQLite: the outbox file's write lock
        taken up front, so it cannot fail halfway on it; the indexer's writes to the main file go on)."""
        with self.sessions() as session:
            session.connection(execution_options={SQLITE_IMMEDIATE: OUTBOX})
            yield session
            session.commit()

    def _attempt(self, session: Session, batch: dict[str, Any], raw_tx: str, tx_hash: str) -> SettlementBatch:
        """A new open batch row for a signed transaction; ``batch`` has its campaign_id, attester, nonce, gas_limit
        and engagement_count."""
        now = _now(self.clock)
        row = SettlementBatch(
            **batch,
            chain_id=self.chain.chain_id,
            escrow=self.escrow,
            sender=self.sender,
            tx_hash=tx_hash,
            raw_tx=raw_tx,
            status=BatchStatus.SENT,
            sent_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row

    def record(
        self,
        *,
        campaign_id: int,
        attester: str,
        nonce: int,
        raw_tx: str,
        tx_hash: str,
        gas_limit: int,
        row_ids: Sequence[int],
    ) -> int | None:
        """Inserts the batch row and marks its queued rows sent with it, in one commit; the batch id, or None (and
        nothing stored) when any row is no longer queued (another batcher took it)."""
        fields = {
            "campaign_id": campaign_id,
            "attester": attester.lower(),
            "nonce": nonce,
            "gas_limit": gas_limit,
            "engagement_count": len(row_ids),
        }
        with self._write() as session:
            batch = self._attempt(session, fields, raw_tx, tx_hash)
            taken = session.execute(
                update(OutboxEngagement)
                .where(OutboxEngagement.id.in_(row_ids), OutboxEngagement.status == EngagementStatus.QUEUED)
                .values(status=EngagementStatus.SENT, batch_id=batch.id, updated_at=batch.sent_at)
                .execution_options(synchronize_session=False)
            )
            if cast(Any, taken).rowcount != len(row_ids):
                session.rollback()  # the batch row goes too; the block's commit then has nothing to do
                return None
            return batch.id

    def broadcast(self, raw_tx: str) -> tuple[Broadcast, str]:
        """Sends the raw transaction; the node's verdict and its message. Transport errors propagate."""
        try:
            self.chain.w3.eth.send_raw_transaction(HexBytes(raw_tx))
        except Web3RPCError as exc:
            message = str(exc)
            lowered = message.lower()
            for verdict, needles in (
                (Broadcast.KNOWN, _KNOWN),
                (Broadcast.NONCE_USED, _NONCE_USED),
                (Broadcast.UNDERPRICED, _UNDERPRICED),
            ):
                if any(needle in lowered for needle in needles):
                    return verdict, message
            return Broadcast.REFUSED, message
        return Broadcast.ACCEPTED, ""

    def sent(self, tx_hash: str, head: int) -> None:
        """Notes that ``tx_hash`` went out at ``head`` (for the stuck-after-N-blocks rule)."""
        self._first_seen[tx_hash] = head

    # -- follow-up ------------------------------------------------------------------------------------------

    def open_batches(self) -> list[SettlementBatch]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(SettlementBatch)
                    .where(
                        SettlementBatch.status == BatchStatus.SENT,
                        SettlementBatch.chain_id == self.chain.chain_id,
                        SettlementBatch.escrow == self.escrow,
                        SettlementBatch.sender == self.sender,
                    )
                    .order_by(SettlementBatch.nonce, SettlementBatch.id)
                )
            )

    def recover(self, report: SettleReport) -> list[int]:
        """Follows up every open batch of our sender (see the module doc); safe to call at any time. Returns the
        batches it broadcast again (rebroadcast or replacement), whose receipts a caller may wait for."""
        batches = self.open_batches()
        if not batches:
            return []
        # the used-nonce count is read before any receipt, so "used and none of ours has a receipt" cannot be a
        # receipt that arrived between the two reads
        used = self.chain.w3.eth.get_transaction_count(cast(Any, to_checksum_address(self.sender)), "latest")
        head = self.chain.w3.eth.block_number
        groups: dict[int, list[SettlementBatch]] = {}
        for batch in batches:
            groups.setdefault(batch.nonce, []).append(batch)
        resent = [self._follow_up(nonce, attempts, used, head, report) for nonce, attempts in groups.items()]
        return [batch_id for batch_id in resent if batch_id is not None]

    def _follow_up(
        self, nonce: int, attempts: list[SettlementBatch], used: int, head: int, report: SettleReport
    ) -> int | None:
        for attempt in reversed(attempts):
            receipt = self.receipt(attempt.tx_hash)
            if receipt is not None:
                if self.confirmed(receipt, head):
                    self.settle_from(receipt, attempt, attempts, report)
                return None
        if used > nonce:
            self.requeue([attempt.id for attempt in attempts], BatchStatus.DROPPED, report)
            _log.warning("settle: nonce %d was used by another transaction; batch %d requeued", nonce, attempts[-1].id)
            return None
        newest = attempts[-1]
        if not any(self._known(attempt.tx_hash) for attempt in attempts):
            verdict, message = self.broadcast(newest.raw_tx or "")
            if verdict in (Broadcast.ACCEPTED, Broadcast.KNOWN):
                report.rebroadcast += 1
                self.sent(newest.tx_hash, head)
                _log.warning("settle: rebroadcast batch %d (%s), which the node had lost", newest.id, newest.tx_hash)
                return newest.id
            if verdict is Broadcast.UNDERPRICED:
                return self.replace(newest, report)
            if verdict is not Broadcast.NONCE_USED:  # NONCE_USED: mined meanwhile, the next recover reads it
                _log.warning("settle: the node refused batch %d again (%s); will retry", newest.id, message)
            return None
        if self._stuck(newest, head):
            return self.replace(newest, report)
        return None

    def _stuck(self, batch: SettlementBatch, head: int) -> bool:
        first = self._first_seen.setdefault(batch.tx_hash, head)
        waited = self.clock() - batch.sent_at.timestamp()
        return head - first >= self.stuck_after_blocks or waited >= self.stuck_after_seconds

    def replace(self, batch: SettlementBatch, report: SettleReport) -> int | None:
        """Signs the batch's call again with the same nonce at higher fees, records the new attempt (its own row,
        the engagements moved to it) in one commit, then broadcasts it; the new batch id, or None when the fee
        cap forbids the raise."""
        old = TypedTransaction.from_bytes(HexBytes(batch.raw_tx or "")).as_dict()
        base_fee = int(self.chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        fees = replacement_fees(
            Fees(int(old["maxFeePerGas"]), int(old["maxPriorityFeePerGas"])),
            self.market_fees(base_fee),
            self.policy.replacement_bump_bps,
        )
        if not self.within_cap(fees):
            _log.warning("settle: batch %d is stuck; replacing it would pass the fee cap", batch.id)
            return None
        raw_tx, tx_hash = self.sign(_hex(old["data"]), int(old["gas"]), batch.nonce, fees)
        with self._write() as session:
            same = ("campaign_id", "attester", "nonce", "gas_limit", "engagement_count")
            fields = {name: getattr(batch, name) for name in same} | {"replaces_id": batch.id}
            replacement = self._attempt(session, fields, raw_tx, tx_hash)
            session.execute(
                update(OutboxEngagement)
                .where(OutboxEngagement.batch_id == batch.id, OutboxEngagement.status == EngagementStatus.SENT)
                .values(batch_id=replacement.id, updated_at=replacement.sent_at)
                .execution_options(synchronize_session=False)
            )
        verdict, message = self.broadcast(raw_tx)
        self.sent(tx_hash, self.chain.w3.eth.block_number)
        report.replaced += 1
        _log.warning(
            "settle: batch %d replaced by %d at higher fees (%s %s)", batch.id, replacement.id, verdict, message
        )
        return replacement.id

    def receipt(self, tx_hash: str) -> Mined | None:
        """The transaction's receipt, or None while it is not mined. Over HTTP it is read raw (``RpcClient``): web3's
        formatters cost more than the node's answer on a receipt of hundreds of logs, and nothing here needs them."""
        if isinstance(self.chain.w3.provider, HTTPProvider):
            found = self._rpc.result("eth_getTransactionReceipt", [tx_hash])
            return None if found is None else Mined.of(found)
        try:
            return Mined.of(self.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        except TransactionNotFound:
            return None

    def _known(self, tx_hash: str) -> bool:
        try:
            self.chain.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def confirmed(self, receipt: Mined, head: int) -> bool:
        return receipt.block_number <= head - self.confirmations

    def wait(self, batch_ids: Sequence[int], timeout: float, report: SettleReport) -> None:
        """Polls the receipts of the batches just sent until each is marked or ``timeout`` seconds pass; what is
        still open then is counted in ``report.pending`` and left to ``recover``."""
        with self.sessions() as session:
            waiting = {
                batch.id: batch.tx_hash
                for batch in session.scalars(select(SettlementBatch).where(SettlementBatch.id.in_(batch_ids)))
            }
        deadline = time.monotonic() + timeout
        pause = _FIRST_POLL
        while waiting:
            head = self.chain.w3.eth.block_number
            for batch_id, tx_hash in list(waiting.items()):
                receipt = self.receipt(tx_hash)
                if receipt is not None and self.confirmed(receipt, head):
                    attempts = self._attempts(batch_id)
                    mined = next((a for a in attempts if a.id == batch_id), None)
                    if mined is not None:
                        self.settle_from(receipt, mined, attempts, report)
                    del waiting[batch_id]
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(pause)
            pause = min(_MAX_POLL, pause * 2)
        report.pending += len(waiting)

    def _attempts(self, batch_id: int) -> list[SettlementBatch]:
        """The open attempts sharing the nonce of ``batch_id`` (the batch itself if still open)."""
        with self.sessions() as session:
            batch = session.get(SettlementBatch, batch_id)
            if batch is None or batch.status != BatchStatus.SENT:
                return []
            return list(
                session.scalars(
                    select(SettlementBatch)
                    .where(
                        SettlementBatch.status == BatchStatus.SENT,
                        SettlementBatch.chain_id == batch.chain_id,
                        SettlementBatch.sender == batch.sender,
                        SettlementBatch.nonce == batch.nonce,
                    )
                    .order_by(SettlementBatch.id)
                )
            )

    # -- marking --------------------------------------------------------------------------------------------

    def settle_from(
        self, receipt: Mined, mined: SettlementBatch, attempts: Sequence[SettlementBatch], report: SettleReport
    ) -> None:
        """Marks the rows of every attempt of this nonce from the mined one's receipt: settled or rejected one by
        one (status 1), or all back in the queue (status 0, the decoded revert logged and reported); the mined
        attempt becomes mined or reverted, the others dropped. One commit."""
        now = _now(self.clock)
        ids = [attempt.id for attempt in attempts]
        block, gas_used = receipt.block_number, receipt.gas_used
        error: LedgerError | None = None if receipt.status == 1 else self.revert_reason(receipt, mined)
        found = outcomes(receipt, self.escrow) if error is None else {}  # decoded before the write lock is taken
        with self._write() as session:
            rows = session.execute(
                select(OutboxEngagement.id, OutboxEngagement.campaign_id, OutboxEngagement.event_id).where(
                    OutboxEngagement.batch_id.in_(ids), OutboxEngagement.status == EngagementStatus.SENT
                )
            ).all()
            if error is None:
                self._mark_outcomes(session, rows, found, mined, block, now, report)
                report.gas_used += gas_used
                report.gas_engagements += len(rows)
            else:
                self._requeue_rows(session, ids, mined.id, now)
                report.requeued += len(rows)
            self._close(session, mined.id, BatchStatus.MINED if error is None else BatchStatus.REVERTED, now)
            why = {} if error is None else {"error_code": error.code, "error_detail": str(error)}
            session.execute(
                update(SettlementBatch)
                .where(SettlementBatch.id == mined.id)
                .values(block_number=block, gas_used=gas_used, **why)
                .execution_options(synchronize_session=False)
            )
            for attempt in attempts:
                if attempt.id != mined.id:
                    self._close(session, attempt.id, BatchStatus.DROPPED, now)
        if error is not None:
            report.reverted.append(RevertedBatch(mined.id, mined.campaign_id, mined.tx_hash, error))
            _log.warning(
                "settle: batch %d reverted (%s: %s); its engagements are queued again", mined.id, error.code, error
            )

    def _mark_outcomes(
        self,
        session: Session,
        rows: Sequence[Any],
        found: dict[tuple[int, int], Outcome],
        mined: SettlementBatch,
        block: int,
        now: datetime,
        report: SettleReport,
    ) -> None:
        # rows sharing an outcome (the same action's reward, the same reason) are marked by one UPDATE ... IN:
        # a batch holds a handful of distinct outcomes, and a statement per row cost more than the rest of a cycle
        same_outcome: dict[Outcome, list[int]] = {}
        missing: list[int] = []
        for row_id, campaign_id, event_id in rows:
            outcome = found.get((campaign_id, event_id))
            if outcome is None:
                missing.append(event_id)
                continue
            same_outcome.setdefault(outcome, []).append(row_id)
            if outcome.reason is None:
                report.settled += 1
                continue
            report.rejected += 1
            report.reasons[outcome.reason.name.lower()] += 1
            if outcome.reason is RejectReason.DUPLICATE_EVENT:
                _log.warning(
                    "settle: event %d of campaign %d was settled before (DuplicateEvent)", event_id, campaign_id
                )
        for outcome, row_ids in same_outcome.items():
            status = EngagementStatus.SETTLED if outcome.reason is None else EngagementStatus.REJECTED
            session.execute(
                update(OutboxEngagement)
                .where(OutboxEngagement.id.in_(row_ids))
                .values(
                    status=status,
                    amount=outcome.amount,
                    reject_reason=outcome.reason,
                    batch_id=mined.id,
                    tx_hash=mined.tx_hash,
                    block_number=block,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
        if missing:  # every engagement of a mined batch has a log: this is a decoding bug, not a chain state
            _log.error("settle: no Rewarded/Rejected log for events %s of batch %d; left sent", missing, mined.id)

    def requeue(self, ids: Sequence[int], status: BatchStatus, report: SettleReport) -> None:
        """The batches ``ids`` (the attempts of one nonce, oldest first) closed with ``status`` and their rows back in
        the queue."""
        now = _now(self.clock)
        with self._write() as session:
            report.requeued += self._requeue_rows(session, ids, ids[-1], now)
            for batch_id in ids:
                self._close(session, batch_id, status, now)

    @staticmethod
    def _requeue_rows(session: Session, batch_ids: Sequence[int], last_batch: int, now: datetime) -> int:
        """Rows of these batches back to queued; ``batch_id`` keeps the batch that failed, so the row's history
        (and, through the batch's status, why it is queued again) stays findable until it is sent anew."""
        result = session.execute(
            update(OutboxEngagement)
            .where(OutboxEngagement.batch_id.in_(batch_ids), OutboxEngagement.status == EngagementStatus.SENT)
            .values(status=EngagementStatus.QUEUED, batch_id=last_batch, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(cast(Any, result).rowcount)

    @staticmethod
    def _close(session: Session, batch_id: int, status: BatchStatus, now: datetime) -> None:
        session.execute(
            update(SettlementBatch)
            .where(SettlementBatch.id == batch_id)
            .values(status=status, updated_at=now)
            .execution_options(synchronize_session=False)
        )

    def revert_reason(self, receipt: Mined, batch: SettlementBatch) -> LedgerError:
        """Why a mined transaction reverted: its call replayed on the state after its block (where a transaction
        ahead of it in the block, such as the attester's removal, has taken effect), then before it."""
        tx = TypedTransaction.from_bytes(HexBytes(batch.raw_tx or "")).as_dict()
        call = cast(
            TxParams,
            {"from": self.account.address, "to": to_checksum_address(self.escrow), "data": _hex(tx["data"])},
        )
        call["gas"] = int(tx["gas"])
        block = receipt.block_number
        for at in (block, max(block - 1, 0)):
            try:
                self.chain.w3.eth.call(call, at)
            except Exception as exc:  # noqa: BLE001 - any failure of the replay is evidence, not an error
                data = revert_data(exc)
                if data is not None:
                    return decode_revert(data)
        return UnknownRevert(b"", reason=f"reverted using {receipt.gas_used} gas; the replay did not reproduce it")
