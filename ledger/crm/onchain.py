"""Rows derived from the suite's logs, and the indexer's cursor and reorg window.

Every row here is rebuilt from the chain alone: a log gives one row keyed by (chain_id, tx_hash, log_index)
(see ``ChainLog``), and current-state tables (campaigns, consents) are folded from their event tables, so a
reorg deletes the rows above the common ancestor and re-folds. Addresses and hashes only: no PII here. A row
points at its customer through a nullable ``customer_id`` that erasure sets to NULL.

Chain times (starts_at, ends_at, expires_at, occurred_at) are unix seconds as the chain holds them (BIGINT):
exact for reconciliation, and a uint40 campaign end may lie past datetime's year 9999.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ledger.crm.base import Base, BigId, ChainLog, chain_log_args
from ledger.model import Action, CampaignStatus, RejectReason
from ledger.types import Address, Bytes32, IntEnumType, Uint256, UTCDateTime, utcnow


def _customer_fk() -> Mapped[int | None]:
    return mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)


class Campaign(ChainLog, Base):
    """A campaign's current state, folded from its ``campaign_events``; the chain columns are its creation log."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("chain_id", "escrow", "campaign_id"), *chain_log_args("campaigns"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)  # the escrow's id (uint48 in Rewarded records)
    marketer: Mapped[str] = mapped_column(Address())
    token: Mapped[str] = mapped_column(Address())
    brand: Mapped[str] = mapped_column(Address(), index=True)
    starts_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[CampaignStatus] = mapped_column(IntEnumType(CampaignStatus))
    budget: Mapped[int] = mapped_column(Uint256())  # unspent, in escrow: what a close would refund
    owed: Mapped[int] = mapped_column(Uint256())  # accrued to consumers and not yet claimed
    refunded: Mapped[int] = mapped_column(Uint256(), default=0)
    updated_block: Mapped[int] = mapped_column(BigInteger)  # the last log folded in; a reorg below it re-folds


class CampaignAction(Base):
    """A campaign's terms for one action (the Solidity arrays indexed by Action, one row each)."""

    __tablename__ = "campaign_actions"

    campaign_pk: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    action: Mapped[Action] = mapped_column(IntEnumType(Action), primary_key=True)
    reward: Mapped[int] = mapped_column(Uint256())  # base units per paid engagement (uint96)
    purposes: Mapped[int] = mapped_column(Integer)  # Purpose bitmask required; 0 = the action is not offered
    lifetime_cap: Mapped[int] = mapped_column(Integer)  # 0 = no cap
    daily_cap: Mapped[int] = mapped_column(Integer)  # 0 = no cap


class CampaignEventKind(StrEnum):
    CREATED = "created"
    FUNDED = "funded"
    PAUSED = "paused"
    UNPAUSED = "unpaused"
    CLOSED = "closed"
    ATTESTER_ADDED = "attester_added"
    ATTESTER_REMOVED = "attester_removed"
    BATCH_SETTLED = "batch_settled"


class CampaignEvent(ChainLog, Base):
    """Every escrow log about a campaign other than Rewarded, Rejected and Claimed (which have their own tables).
    Columns an event does not carry are NULL: ``account`` is the funder or attester, ``amount`` the funding,
    refund or batch total, ``budget`` the budget after the event, ``owed`` the owed amount at close."""

    __tablename__ = "campaign_events"
    __table_args__ = (
        Index("ix_campaign_events_campaign", "chain_id", "escrow", "campaign_id"),
        *chain_log_args("campaign_events"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[CampaignEventKind] = mapped_column(
        Enum(
            CampaignEventKind,
            name="campaign_event_kind",
            native_enum=False,
            create_constraint=True,
            length=20,
            values_callable=lambda kinds: [kind.value for kind in kinds],
        )
    )
    account: Mapped[str | None] = mapped_column(Address())
    amount: Mapped[int | None] = mapped_column(Uint256())
    budget: Mapped[int | None] = mapped_column(Uint256())
    owed: Mapped[int | None] = mapped_column(Uint256())
    paid_count: Mapped[int | None] = mapped_column(BigInteger)
    rejected_count: Mapped[int | None] = mapped_column(BigInteger)


class ConsentChange(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"


class Consent(Base):
    """A consumer's current consent to a brand, folded from ``consent_events``; (block, tx, log) is the event
    that produced it, so the figure points at its log."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("chain_id", "registry_address", "consumer", "brand"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    registry_address: Mapped[str] = mapped_column(Address())  # "registry" is taken by DeclarativeBase
    consumer: Mapped[str] = mapped_column(Address(), index=True)
    brand: Mapped[str] = mapped_column(Address(), index=True)
    purposes: Mapped[int] = mapped_column(Integer)  # Purpose bitmask now held (allPurposes)
    expires_at: Mapped[int] = mapped_column(BigInteger)  # active while block time < expires_at
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(Bytes32())
    log_index: Mapped[int] = mapped_column(Integer)


class ConsentEvent(ChainLog, Base):
    """One ConsentGranted or ConsentRevoked log: ``purposes`` changed, ``all_purposes`` held afterwards."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_pair", "chain_id", "registry_address", "consumer", "brand"),
        *chain_log_args("consent_events"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    registry_address: Mapped[str] = mapped_column(Address())  # "registry" is taken by DeclarativeBase
    consumer: Mapped[str] = mapped_column(Address())
    brand: Mapped[str] = mapped_column(Address())
    change: Mapped[ConsentChange] = mapped_column(
        Enum(
            ConsentChange,
            name="consent_change",
            native_enum=False,
            create_constraint=True,
            length=10,
            values_callable=lambda changes: [change.value for change in changes],
        )
    )
    purposes: Mapped[int] = mapped_column(Integer)
    all_purposes: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)  # grants only


class Touchpoint(ChainLog, Base):
    """One paid engagement: one ``Rewarded`` log. ``customer_id`` is set when the consumer's wallet is linked
    to a customer for the campaign's brand."""

    __tablename__ = "touchpoints"
    __table_args__ = (
        # a campaign's touchpoints (the prefix), or one engagement's outcome (the outbox's state lookup)
        Index("ix_touchpoints_campaign", "chain_id", "escrow", "campaign_id", "event_id"),
        *chain_log_args("touchpoints"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)  # dense per campaign, assigned at intake (uint48)
    action: Mapped[Action] = mapped_column(IntEnumType(Action))
    consumer: Mapped[str] = mapped_column(Address(), index=True)
    customer_id: Mapped[int | None] = _customer_fk()
    amount: Mapped[int] = mapped_column(Uint256())
    evidence_hash: Mapped[str] = mapped_column(Bytes32())
    occurred_at: Mapped[int] = mapped_column(BigInteger)  # the engagement's time, unix seconds (uint40)


class Rejection(ChainLog, Base):
    """One skipped engagement: one ``Rejected`` log and the rule it failed."""

    __tablename__ = "rejections"
    __table_args__ = (
        Index("ix_rejections_campaign", "chain_id", "escrow", "campaign_id", "event_id"),
        *chain_log_args("rejections"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    consumer: Mapped[str] = mapped_column(Address(), index=True)
    customer_id: Mapped[int | None] = _customer_fk()
    reason: Mapped[RejectReason] = mapped_column(IntEnumType(RejectReason))


class Claim(ChainLog, Base):
    """One ``Claimed`` log: a consumer's accrual in a campaign paid out to ``recipient``."""

    __tablename__ = "claims"
    __table_args__ = (
        Index("ix_claims_campaign", "chain_id", "escrow", "campaign_id"),
        *chain_log_args("claims"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    consumer: Mapped[str] = mapped_column(Address(), index=True)
    customer_id: Mapped[int | None] = _customer_fk()
    recipient: Mapped[str] = mapped_column(Address())
    amount: Mapped[int] = mapped_column(Uint256())


class IndexCheckpoint(Base):
    """How far the indexer has gone for one set of contracts on one chain. Written in the same transaction as
    the rows of the range it closes, so a crash leaves either both or neither."""

    __tablename__ = "index_checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    contract_set: Mapped[str] = mapped_column(String(66), primary_key=True)  # a stable key of the addresses
    addresses: Mapped[str] = mapped_column(Text)  # the indexed addresses, lowercase, comma-separated
    block_number: Mapped[int] = mapped_column(BigInteger)  # the last block fully indexed
    block_hash: Mapped[str] = mapped_column(Bytes32())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class IndexedBlock(Base):
    """The reorg window: each recent indexed block's hash and parent hash. A new block whose parent hash differs
    from the stored hash below it reveals a reorg; walking down finds the common ancestor."""

    __tablename__ = "indexed_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[str] = mapped_column(Bytes32())
    parent_hash: Mapped[str] = mapped_column(Bytes32())
    timestamp: Mapped[int | None] = mapped_column(BigInteger)  # unix seconds, when the indexer fetched the header
