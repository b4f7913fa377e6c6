"""Wallet sign-in: a single-use nonce, a verified EIP-4361 message, and a short-lived bearer token for the address.

The flow is the EIP's: the service hands out a nonce (``issue_nonce``), the wallet signs a message naming it with
this service's domain and chain, and ``sign_in`` verifies it with ``ledger.siwe.verify``, spending the nonce last
and atomically (a DELETE whose row count says whether this caller got it), then stores a new session. The token is
returned once; the database keeps only its hash. Every function works in the caller's transaction; the caller
commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from eth_utils.address import to_checksum_address
from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from ledger import siwe
from ledger.auth.models import SiweNonce, WalletSession
from ledger.errors import InvalidSession
from ledger.types import normalize_address, utcnow

#: Session tokens start with this, so a leaked one is recognisable (secret scanners) and never taken for an API key.
TOKEN_PREFIX = "adls_"
TOKEN_BYTES = 32  # 256 bits from the OS's CSPRNG


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """A new session: ``token`` is the bearer secret, shown to the wallet once."""

    token: str
    address: str  # EIP-55
    expires_at: datetime


@dataclass(frozen=True)
class WalletCaller:
    """A signed-in wallet, as a request's principal."""

    session_id: int
    address: str  # lowercase 0x-hex, as the CRM tables store addresses
    expires_at: datetime


def secret_hash(secret: str) -> str:
    """The hex SHA-256 a token or API key is stored and looked up by.

    A fast hash is right for these secrets, unlike passwords: each holds 256 random bits, so no guessing or
    precomputation can find one from its hash however fast the hash is, and a slow KDF (bcrypt, argon2) would only
    add ~100 ms of CPU to every request. It must also be unsalted and deterministic, so the lookup is one index probe.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_nonce(session: Session, *, ttl: timedelta, now: datetime | None = None) -> IssuedNonce:
    """A fresh nonce, usable once until ``now + ttl``; purges expired ones on the way (the table stays small)."""
    at = now or utcnow()
    session.execute(delete(SiweNonce).where(SiweNonce.expires_at <= at))
    issued = IssuedNonce(siwe.generate_nonce(), at + ttl)
    session.add(SiweNonce(nonce=issued.nonce, expires_at=issued.expires_at))
    session.flush()
    return issued


def spend_nonce(session: Session, nonce: str, *, now: datetime | None = None) -> bool:
    """Whether ``nonce`` was issued, unexpired and unspent; it is spent either way. Two concurrent spends of one
    nonce: PostgreSQL makes the second DELETE wait for the first to commit and then find nothing; SQLite has one
    writer at a time."""
    result = session.execute(
        delete(SiweNonce).where(SiweNonce.nonce == nonce, SiweNonce.expires_at > (now or utcnow()))
    )
    return cast(CursorResult[object], result).rowcount == 1


def sign_in(
    session: Session,
    message: str,
    signature: str,
    *,
    domain: str,
    chain_id: int,
    ttl: timedelta,
    now: datetime | None = None,
) -> SignedIn:
    """A session for the address that signed ``message`` (EIP-4361 text) for ``domain`` and ``chain_id``.

    Raises the ``SiweError`` naming the first failed check (the nonce is only spent once all others passed). The
    session ends at ``now + ttl``, or at the message's Expiration Time if that is sooner: signing in never outlives
    what the wallet agreed to.
    """
    at = now or utcnow()
    verified = siwe.verify(
        message,
        signature,
        domain=domain,
        chain_id=chain_id,
        now=at,
        nonce_is_fresh=lambda nonce: spend_nonce(session, nonce, now=at),
    )
    expires_at = at + ttl
    if verified.expiration_time is not None:
        expires_at = min(expires_at, siwe.parse_datetime(verified.expiration_time))
    session.execute(delete(WalletSession).where(WalletSession.expires_at <= at))
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        WalletSession(
            token_hash=secret_hash(token),
            address=normalize_address(verified.address),
            created_at=at,
            expires_at=expires_at,
        )
    )
    session.flush()
    return SignedIn(token, to_checksum_address(verified.address), expires_at)


def caller_of(session: Session, token: str, *, now: datetime | None = None) -> WalletCaller:
    """The wallet whose live session ``token`` is; InvalidSession if none (unknown, logged out or expired)."""
    if not token.startswith(TOKEN_PREFIX):
        raise InvalidSession(f"not a session token (they start with {TOKEN_PREFIX!r})")
    row = session.scalar(select(WalletSession).where(WalletSession.token_hash == secret_hash(token)))
    if row is None:
        raise InvalidSession("unknown session token, or signed out")
    if row.expires_at <= (now or utcnow()):
        raise InvalidSession(f"the session expired at {siwe.format_datetime(row.expires_at)}")
    return WalletCaller(row.id, row.address, row.expires_at)


def sign_out(session: Session, caller: WalletCaller) -> None:
    """Ends the caller's session: its token stops working at once."""
    session.execute(delete(WalletSession).where(WalletSession.id == caller.session_id))
