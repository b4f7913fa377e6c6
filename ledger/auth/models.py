"""The API's credentials: sign-in nonces, wallet sessions and attester API keys.

Secrets are never stored: a session token or an API key is kept as the hex SHA-256 of its text, looked up by that
hash (``ledger.auth.sessions.secret_hash`` says why a fast hash is right here). Registered on ``ledger.crm.base.Base``
through ``ledger.crm``'s import of this module, like the outbox tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ledger.crm.base import Base, BigId
from ledger.types import Address, UTCDateTime, utcnow

SECRET_HASH_LENGTH = 64  # hex SHA-256
NONCE_MAX = 32  # ledger.siwe.generate_nonce gives 17 characters


class SiweNonce(Base):
    """A sign-in nonce handed out and not yet spent. Sign-in deletes the row (the spend is the DELETE's row count,
    atomic on both engines), so a replayed message finds nothing; expired rows are purged as new ones are issued."""

    __tablename__ = "siwe_nonces"

    nonce: Mapped[str] = mapped_column(String(NONCE_MAX), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WalletSession(Base):
    """A wallet signed in: the hash of its bearer token, the proven address, and when the token stops working."""

    __tablename__ = "wallet_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(SECRET_HASH_LENGTH), unique=True)
    address: Mapped[str] = mapped_column(Address(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiKey(Base):
    """An attester's key for one campaign, issued by the campaign's marketer (``issued_by``). It stands for
    ``attester``, which must stay an attester of the campaign on chain; ``revoked_at`` ends it for good."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_campaign", "chain_id", "escrow", "campaign_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(SECRET_HASH_LENGTH), unique=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    escrow: Mapped[str] = mapped_column(Address())
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    attester: Mapped[str] = mapped_column(Address())
    issued_by: Mapped[str] = mapped_column(Address())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
