"""The packed settlement batch of CampaignEscrow.settle, and batches sized to stay under a gas cap.

Encoding (ICampaignEscrow): consumer groups of ``consumer (20) | count (1)`` followed by ``count`` engagements of
``action (1) | eventId (6) | time (5) | evidenceHash (32)``. A consumer's engagements go in one group, so the
contract reads and writes that consumer's account word and consent once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from eth_utils.address import to_checksum_address

from ledger.model import Action
from ledger.types import checksummed

GROUP_HEADER_BYTES = 21
ENGAGEMENT_BYTES = 44
MAX_GROUP = 255  # the count is one byte
MAX_EVENT_ID = (1 << 48) - 1
MAX_TIME = (1 << 40) - 1

# EIP-7825 caps a transaction at 2^24 gas; batches are planned below it with room for estimation error.
TX_GAS_CAP = 16_777_216
DEFAULT_BATCH_GAS = 15_000_000

# Upper bounds per item, from scripts/bench.py's measurements (snapshots/gas.json) plus margin: a batch's
# fixed cost (transaction, campaign slots), a consumer group whose account word is new (20,000 to write it,
# plus the cold consent read), an engagement (calldata, log, checks), and a fresh word of the event-id bitmap.
GAS_PER_BATCH = 60_000
GAS_PER_NEW_GROUP = 35_000
GAS_PER_ENGAGEMENT = 5_000
GAS_PER_BITMAP_WORD = 25_000


@dataclass(frozen=True)
class Engagement:
    """One attested engagement, as settlement sees it (the attester's own id stays in the database)."""

    consumer: str
    action: Action
    event_id: int
    time: int
    evidence: bytes

    def __post_init__(self) -> None:
        if int(self.consumer, 16) == 0:
            raise ValueError("the consumer cannot be the zero address")
        if not 0 <= self.event_id <= MAX_EVENT_ID:
            raise ValueError(f"event id {self.event_id} does not fit 48 bits")
        if not 0 <= self.time <= MAX_TIME:
            raise ValueError(f"time {self.time} does not fit 40 bits")
        if len(self.evidence) != 32:
            raise ValueError(f"evidence hash must be 32 bytes, got {len(self.evidence)}")
        Action(self.action)

    def pack(self) -> bytes:
        return bytes([self.action]) + self.event_id.to_bytes(6, "big") + self.time.to_bytes(5, "big") + self.evidence


def group_by_consumer(engagements: Iterable[Engagement]) -> dict[str, list[Engagement]]:
    """Engagements per consumer (checksummed), consumers in first-seen order, each one's in input order.

    The order is the caller's, and it matters: the escrow remembers a consumer's latest daily-capped day and
    refuses a capped engagement from an earlier day (StaleDay), so a batcher gives each consumer's engagements
    in time order.
    """
    groups: dict[str, list[Engagement]] = {}
    for engagement in engagements:
        groups.setdefault(checksummed(engagement.consumer), []).append(engagement)
    return groups


def encode_batch(engagements: Iterable[Engagement]) -> bytes:
    """The packed batch for ``settle``: one group per consumer (split every 255 engagements)."""
    parts: list[bytes] = []
    for consumer, items in group_by_consumer(engagements).items():
        address = bytes.fromhex(consumer[2:])
        for start in range(0, len(items), MAX_GROUP):
            chunk = items[start : start + MAX_GROUP]
            parts.append(address + bytes([len(chunk)]))
            parts.extend(e.pack() for e in chunk)
    if not parts:
        raise ValueError("a batch needs at least one engagement")
    return b"".join(parts)


def decode_batch(data: bytes) -> list[Engagement]:
    """The inverse of ``encode_batch``: what an auditor reads back from a settle() transaction's input."""
    engagements: list[Engagement] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < GROUP_HEADER_BYTES:
            raise ValueError(f"truncated group header at byte {offset}")
        consumer = to_checksum_address(data[offset : offset + 20])
        count = data[offset + 20]
        offset += GROUP_HEADER_BYTES
        if count == 0 or len(data) - offset < count * ENGAGEMENT_BYTES:
            raise ValueError(f"bad group at byte {offset - GROUP_HEADER_BYTES}")
        for _ in range(count):
            raw = data[offset : offset + ENGAGEMENT_BYTES]
            engagements.append(
                Engagement(
                    consumer=consumer,
                    action=Action(raw[0]),
                    event_id=int.from_bytes(raw[1:7], "big"),
                    time=int.from_bytes(raw[7:12], "big"),
                    evidence=raw[12:44],
                )
            )
            offset += ENGAGEMENT_BYTES
    return engagements


def estimate_gas(engagements: Sequence[Engagement]) -> int:
    """A safe upper bound of a batch's gas, assuming every consumer and every bitmap word is new."""
    groups = group_by_consumer(engagements)
    group_count = sum((len(items) + MAX_GROUP - 1) // MAX_GROUP for items in groups.values())
    bitmap_words = len({e.event_id >> 8 for e in engagements})
    return (
        GAS_PER_BATCH
        + group_count * GAS_PER_NEW_GROUP
        + len(engagements) * GAS_PER_ENGAGEMENT
        + bitmap_words * GAS_PER_BITMAP_WORD
    )


def plan_batches(engagements: Sequence[Engagement], gas_limit: int = DEFAULT_BATCH_GAS) -> Iterator[list[Engagement]]:
    """Splits engagements, in order, into batches whose ``estimate_gas`` stays within ``gas_limit``.

    The limit is checked at the call, not at the first batch; the split is one pass, the running estimate
    growing by what each engagement adds to its batch.
    """
    if gas_limit > TX_GAS_CAP:
        raise ValueError(f"gas limit {gas_limit} exceeds the transaction cap {TX_GAS_CAP}")
    if gas_limit < GAS_PER_BATCH + GAS_PER_NEW_GROUP + GAS_PER_ENGAGEMENT + GAS_PER_BITMAP_WORD:
        raise ValueError(f"gas limit {gas_limit} is below one engagement's cost")
    return _split(engagements, gas_limit)


def _split(engagements: Sequence[Engagement], gas_limit: int) -> Iterator[list[Engagement]]:
    batch: list[Engagement] = []
    per_consumer: dict[str, int] = {}
    words: set[int] = set()
    gas = GAS_PER_BATCH
    for engagement in engagements:
        consumer = checksummed(engagement.consumer)
        added = GAS_PER_ENGAGEMENT
        if per_consumer.get(consumer, 0) % MAX_GROUP == 0:
            added += GAS_PER_NEW_GROUP
        if engagement.event_id >> 8 not in words:
            added += GAS_PER_BITMAP_WORD
        if batch and gas + added > gas_limit:
            yield batch
            batch, per_consumer, words, gas = [], {}, set(), GAS_PER_BATCH
            added = GAS_PER_ENGAGEMENT + GAS_PER_NEW_GROUP + GAS_PER_BITMAP_WORD
        batch.append(engagement)
        per_consumer[consumer] = per_consumer.get(consumer, 0) + 1
        words.add(engagement.event_id >> 8)
        gas += added
    if batch:
        yield batch
