"""What the batcher reports: a node's answer to a broadcast, each engagement's outcome read from a receipt, and the
counters of a cycle (``SettleReport``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

from ledger.errors import LedgerError
from ledger.indexer.decode import decode_log, quantity
from ledger.model import RejectReason


class Broadcast(Enum):
    """What the node answered to eth_sendRawTransaction."""

    ACCEPTED = "accepted"
    KNOWN = "known"  # already in its pool: as good as accepted
    NONCE_USED = "nonce_used"  # a transaction with this nonce is already mined (ours or not: recover decides)
    UNDERPRICED = "underpriced"  # fees below the base fee, or too low to replace what holds the nonce
    REFUSED = "refused"  # anything else the node refused


@dataclass(frozen=True)
class RevertedBatch:
    """A batch whose transaction was mined with status 0; its engagements went back to the queue."""

    batch_id: int
    campaign_id: int
    tx_hash: str
    error: LedgerError  # decoded from a replay of the transaction (ledger.errors name, e.g. EscrowNotAttester)


@dataclass
class SettleReport:
    """What the batcher did (one cycle, or the sum over a Batcher's life in ``Batcher.stats``)."""

    batches: int = 0  # settle() transactions signed and broadcast for the first time
    engagements: int = 0  # engagements in them
    settled: int = 0  # marked settled (paid) from receipts
    rejected: int = 0  # marked rejected from receipts, with the chain's reason
    requeued: int = 0  # put back in the queue: their batch reverted or was dropped
    rebroadcast: int = 0  # lost transactions sent again as they were
    replaced: int = 0  # stuck or underpriced transactions replaced at a higher fee
    pending: int = 0  # batches still without a receipt when the cycle ended (recover follows them up)
    gas_used: int = 0  # over mined batches
    gas_engagements: int = 0  # engagements in those mined batches
    held: Counter[str] = field(default_factory=Counter)  # engagements left queued this cycle, by reason
    reasons: Counter[str] = field(default_factory=Counter)  # rejections by RejectReason name
    reverted: list[RevertedBatch] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)  # the batches those first broadcasts recorded

    @property
    def gas_per_engagement(self) -> int | None:
        return self.gas_used // self.gas_engagements if self.gas_engagements else None

    def add(self, other: SettleReport) -> None:
        for name in ("batches", "engagements", "settled", "rejected", "requeued", "rebroadcast", "replaced"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.pending = other.pending
        self.gas_used += other.gas_used
        self.gas_engagements += other.gas_engagements
        self.held.update(other.held)
        self.reasons.update(other.reasons)
        self.reverted.extend(other.reverted)
        self.batch_ids.extend(other.batch_ids)


@dataclass(frozen=True)
class Outcome:
    """One engagement's outcome in a receipt: paid ``amount``, or rejected with ``reason``."""

    amount: int | None
    reason: RejectReason | None


def outcomes(receipt: Mined, escrow: str) -> dict[tuple[int, int], Outcome]:
    """(campaign id, event id) -> outcome, from the receipt's Rewarded and Rejected logs of ``escrow``."""
    contracts = {escrow.lower(): "CampaignEscrow"}
    found: dict[tuple[int, int], Outcome] = {}
    for raw in receipt.logs:
        log = decode_log(cast(dict[str, Any], raw), contracts)
        if log is None:
            continue
        if log.name == "Rewarded":
            record = log.reward
            found[(record.campaign_id, record.event_id)] = Outcome(record.amount, None)
        elif log.name == "Rejected":
            key = (int(log.fields["campaignId"]), int(log.fields["eventId"]))
            found[key] = Outcome(None, RejectReason(int(log.fields["reason"])))
    return found


@dataclass(frozen=True)
class Mined:
    """What the batcher reads of a settle() transaction's receipt; its logs as the node sent them (JSON-RPC hex
    or web3's values: ``ledger.indexer.decode`` reads both)."""

    status: int
    block_number: int
    gas_used: int
    logs: Sequence[Mapping[str, Any]]

    @classmethod
    def of(cls, receipt: Mapping[str, Any]) -> Mined:
        """From a receipt as web3 returns it (ints) or as JSON-RPC sends it (0x-hex quantities)."""
        return cls(
            quantity(receipt["status"]),
            quantity(receipt["blockNumber"]),
            quantity(receipt["gasUsed"]),
            list(receipt["logs"]),
        )
