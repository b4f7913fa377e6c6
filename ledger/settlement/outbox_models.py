"""The engagement outbox's tables: accepted engagements, their dense event ids, and the batches that settle them.

An engagement is written here, with its on-chain event id, in the transaction that answers the attester's POST,
so an accepted engagement is never lost. It then moves ``queued -> sent -> settled | rejected``: the batcher
records a ``settlement_batches`` row (signed transaction, nonce, sender) and marks the rows ``sent`` with it
*before* broadcasting, so after a crash between send and receipt it re-reads the receipt by hash instead of
settling again; and a resend is harmless anyway, because the escrow settles each (campaign, event id) once
(``Rejected(..., DuplicateEvent)`` for a repeat). The chain's own ``Rewarded``/``Rejected`` rows, stored by the
indexer, stay the authority on the outcome (``ledger.settlement.outbox.engagement_state``).

Registered on ``ledger.crm.base.Base`` (one metadata, one migration history): ``ledger.crm`` imports this
module, so importing the CRM package sees every table. On SQLite these three tables live in a file of their own
(``ledger.db``: intake and the batcher then never wait for the indexer's write lock), on PostgreSQL beside the rest.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.crm.base import Base, BigId
from ledger.model import Action, RejectReason
from ledger.types import Address, Bytes32, IntEnumType, Uint256, UTCDateTime, utcnow

ATTESTER_REF_MAX = 128  # outbox_engagements.attester_ref is VARCHAR(128)
MAX_CAMPAIGN_ID = (1 << 48) - 1  # campaign ids are uint48 in Rewarded records


class EngagementStatus(StrEnum):
    """Where an accepted engagement is: waiting for a batch, in a sent batch, or final on chain."""

    QUEUED = "queued"
    SENT = "sent"
    SETTLED = "settled"  # paid: a Rewarded log
    REJECTED = "rejected"  # skipped by the escrow: a Rejected log and its reason


class BatchStatus(StrEnum):
    """A settle() transaction's life, as the batcher knows it."""

    SENT = "sent"  # signed and recorded before broadcast: it may or may not have reached the node
    MINED = "mined"  # receipt with status 1: every engagement in it is settled or rejected
    REVERTED = "reverted"  # receipt with status 0: nothing settled, its engagements go back to the queue
    DROPPED = "dropped"  # never mined and its nonce taken by another transaction: back to the queue


def _status_enum(enum: type[StrEnum], name: str) -> Enum:
    # VARCHAR + CHECK on both engines, as the CRM's enums: adding a status is a plain migration
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=10,
        values_callable=lambda members: [member.value for member in members],
    )


class SettlementBatch(Base):
    """One settle() (or settleBySig) transaction for one campaign, written by the batcher before it broadcasts.

    ``raw_tx`` keeps the signed transaction so a restarted batcher can rebroadcast the very same one (same hash,
    same nonce) rather than sign another; ``attester`` is whom the batch is reported as, ``sender`` who pays the
    gas (the attester itself, or a relayer for settleBySig)."""

    __tablename__ = "settlement_batches"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash"),
        Index("ix_settlement_batches_open", "status", "chain_id", "escrow", "campaign_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    attester: Mapped[str] = mapped_column(Address())
    sender: Mapped[str] = mapped_column(Address())
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Bytes32())
    raw_tx: Mapped[str | None] = mapped_column(Text)  # 0x-hex of the signed transaction
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    engagement_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[BatchStatus] = mapped_column(_status_enum(BatchStatus, "batch_status"), default=BatchStatus.SENT)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    block_number: Mapped[int | None] = mapped_column(BigInteger)  # from the receipt
    gas_used: Mapped[int | None] = mapped_column(BigInteger)  # from the receipt
    # the attempt this one replaced at a higher fee (same nonce); both stay findable by their hashes
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("settlement_batches.id", ondelete="SET NULL"))
    error_code: Mapped[str | None] = mapped_column(String(64))  # a reverted batch: the ledger.errors code ...
    error_detail: Mapped[str | None] = mapped_column(Text)  # ... and its message, decoded from a replay
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OutboxEngagement(Base):
    """One accepted engagement. (campaign, attester, attester_ref) is the attester's idempotency key; (campaign,
    event_id) the dense on-chain id the outbox gave it. The outcome columns (tx_hash, block_number, amount,
    reject_reason) are the batcher's copy of the receipt; the indexer's rows are the chain's word."""

    __tablename__ = "outbox_engagements"
    __table_args__ = (
        UniqueConstraint(
            "chain_id", "escrow", "campaign_id", "attester", "attester_ref", name="uq_outbox_engagements_attester_ref"
        ),
        UniqueConstraint("chain_id", "escrow", "campaign_id", "event_id", name="uq_outbox_engagements_event_id"),
        # the batcher's drain: a campaign's queued rows, oldest first
        Index("ix_outbox_engagements_drain", "status", "chain_id", "escrow", "campaign_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)  # uint48 in Rewarded records
    attester: Mapped[str] = mapped_column(Address())
    attester_ref: Mapped[str] = mapped_column(String(ATTESTER_REF_MAX))
    event_id: Mapped[int] = mapped_column(BigInteger)  # dense per campaign from 0, uint48
    consumer: Mapped[str] = mapped_column(Address())
    action: Mapped[Action] = mapped_column(IntEnumType(Action))
    occurred_at: Mapped[int] = mapped_column(BigInteger)  # unix seconds, uint40
    evidence_hash: Mapped[str] = mapped_column(Bytes32())
    status: Mapped[EngagementStatus] = mapped_column(
        _status_enum(EngagementStatus, "engagement_status"), default=EngagementStatus.QUEUED
    )
    batch_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("settlement_batches.id"), index=True)
    tx_hash: Mapped[str | None] = mapped_column(Bytes32())
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int | None] = mapped_column(Uint256())
    reject_reason: Mapped[RejectReason | None] = mapped_column(IntEnumType(RejectReason))
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class OutboxCounter(Base):
    """The next event id of a campaign. Intake locks this row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the database) and bumps it in the transaction that inserts the rows, so ids
    are dense and never handed out twice."""

    __tablename__ = "outbox_counters"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address(), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    next_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
