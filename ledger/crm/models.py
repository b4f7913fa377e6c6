"""CRM records: customers (the only place PII lives), their proven wallets, and their purchases.

Chain-derived rows (campaigns, consents, touchpoints, …) and the indexer's own state are in
``ledger.crm.onchain``; they are re-exported here so that ``ledger.crm.models`` names every table.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CHAR, BigInteger, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ledger.crm.base import Base
from ledger.crm.onchain import (
    Campaign,
    CampaignAction,
    CampaignEvent,
    CampaignEventKind,
    Claim,
    Consent,
    ConsentChange,
    ConsentEvent,
    IndexCheckpoint,
    IndexedBlock,
    Rejection,
    Touchpoint,
)
from ledger.types import Address, Uint256, UTCDateTime, utcnow

__all__ = [
    "Base",
    "Campaign",
    "CampaignAction",
    "CampaignEvent",
    "CampaignEventKind",
    "Claim",
    "Consent",
    "ConsentChange",
    "ConsentEvent",
    "Conversion",
    "Customer",
    "IndexCheckpoint",
    "IndexedBlock",
    "LifecycleStage",
    "Rejection",
    "Touchpoint",
    "WalletLink",
    "WalletLinkNonce",
]


class LifecycleStage(StrEnum):
    """Where a customer stands, in CRM order; stored as these lowercase words."""

    AWARE = "aware"
    INTERESTED = "interested"
    FIRST_PURCHASE = "first_purchase"
    REPEAT = "repeat"
    LOYAL = "loyal"
    ADVOCATE = "advocate"


class Customer(Base):
    """One real person. The normalised email and phone are unique (NULLs allowed, many times) so that a second
    record for the same person cannot exist; ``ledger.crm.repository.upsert_customer`` merges instead."""

    __tablename__ = "customers"
    # SQLite would otherwise hand an erased customer's id (when it was the highest) to the next new customer
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))  # as entered; 320 is the RFC 5321 maximum
    phone: Mapped[str | None] = mapped_column(String(64))  # as entered
    email_normalized: Mapped[str | None] = mapped_column(String(320), unique=True)
    phone_normalized: Mapped[str | None] = mapped_column(String(16), unique=True)  # "+" and ≤ 15 digits (E.164)
    lead_source: Mapped[str | None] = mapped_column(String(100))
    lifecycle_stage: Mapped[LifecycleStage] = mapped_column(
        Enum(
            LifecycleStage,
            name="lifecycle_stage",
            native_enum=False,  # VARCHAR + CHECK on both engines: adding a stage is a plain migration
            create_constraint=True,
            length=20,
            values_callable=lambda stages: [stage.value for stage in stages],
        ),
        default=LifecycleStage.AWARE,
    )
    tier: Mapped[str | None] = mapped_column(String(50))
    owner: Mapped[str | None] = mapped_column(String(100))  # the account manager
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    wallet_links: Mapped[list[WalletLink]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True
    )


class WalletLink(Base):
    """A wallet proven to be the customer's by its signature over the EIP-712 link message; the evidence is
    kept so an auditor can re-verify it. A wallet belongs to at most one customer per brand."""

    __tablename__ = "wallet_links"
    __table_args__ = (UniqueConstraint("brand", "wallet"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    brand: Mapped[str] = mapped_column(Address())
    wallet: Mapped[str] = mapped_column(Address(), index=True)  # touchpoints join on it
    chain_id: Mapped[int] = mapped_column(BigInteger)  # of the EIP-712 domain the signature was made for
    nonce: Mapped[int] = mapped_column(Uint256())
    deadline: Mapped[int] = mapped_column(Uint256())
    signature: Mapped[str] = mapped_column(Text)  # 0x-hex; 65 bytes for an EOA, longer for ERC-1271 wallets
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="wallet_links")


class WalletLinkNonce(Base):
    """A nonce a wallet has spent on a link signature. Kept after the link is unlinked or its customer erased, so
    an old signature cannot link the wallet again; a wallet and a number, nothing that names the person."""

    __tablename__ = "wallet_link_nonces"

    wallet: Mapped[str] = mapped_column(Address(), primary_key=True)
    nonce: Mapped[int] = mapped_column(Uint256(), primary_key=True)


class Conversion(Base):
    """A purchase from a shop or POS. The value is an exact integer of the currency's minor units (cents;
    ISO 4217 exponent: 0 for JPY, 3 for KWD), never a float. (source, order_ref) is unique, so importing the
    same file twice adds nothing. After erasure the row stays, detached, so ROI totals do not change."""

    __tablename__ = "conversions"
    __table_args__ = (UniqueConstraint("source", "order_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(String(100))  # the shop or POS system ("shopify", "pos:store-12")
    order_ref: Mapped[str] = mapped_column(String(200))
    value_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(CHAR(3))  # ISO 4217, upper case
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
