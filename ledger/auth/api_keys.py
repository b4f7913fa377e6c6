"""Attester API keys: issued per campaign by its marketer, stored hashed, revocable, each standing for one attester.

Who may do what is read from the indexed chain, not from anything the API stores: the campaign's marketer is
``campaigns.marketer`` (who created it on chain), and an address is an attester of the campaign while its last
``AttesterAdded``/``AttesterRemoved`` log (campaign_events, in chain order) is an add. That is checked when a key is
issued and again each time it is used, so removing an attester on chain disables its keys as soon as the indexer
has seen the block. A key is ``adl_`` + 32 random bytes (urlsafe base64), shown once; the database keeps its
SHA-256 (``ledger.auth.sessions.secret_hash``). Functions work in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.auth.models import ApiKey
from ledger.auth.sessions import secret_hash
from ledger.crm.onchain import Campaign, CampaignEvent, CampaignEventKind
from ledger.errors import (
    AccessDenied,
    ApiKeyNotFound,
    AttesterNotRegistered,
    CampaignNotIndexed,
    InvalidApiKey,
    NotCampaignMarketer,
)
from ledger.settlement.outbox_state import EngagementState, engagement_state
from ledger.types import normalize_address, utcnow

#: API keys start with this, so a leaked one is recognisable (secret scanners) and never taken for a session token.
KEY_PREFIX = "adl_"
KEY_BYTES = 32


@dataclass(frozen=True)
class IssuedApiKey:
    """A new key: ``key`` is the secret, shown to the marketer once; ``key_id`` names it for revocation."""

    key_id: int
    key: str
    campaign_id: int
    attester: str  # lowercase 0x-hex
    created_at: datetime


@dataclass(frozen=True)
class AttesterCaller:
    """An attester calling with a live key: it may report and read engagements of this one campaign only."""

    key_id: int
    chain_id: int
    escrow: str
    campaign_id: int
    attester: str  # lowercase 0x-hex

    def require_campaign(self, campaign_id: int) -> None:
        """Raises AccessDenied unless ``campaign_id`` is the key's campaign."""
        if campaign_id != self.campaign_id:
            raise AccessDenied(f"this API key is for campaign {self.campaign_id}, not campaign {campaign_id}")


def issue_api_key(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    marketer: str,
    attester: str,
    now: datetime | None = None,
) -> IssuedApiKey:
    """A new key for ``attester`` on the campaign, asked for by ``marketer`` (a signed-in wallet).

    Raises CampaignNotIndexed, NotCampaignMarketer, or AttesterNotRegistered (not an attester of the campaign on
    chain, as indexed). Several live keys per attester are allowed, so a key can be rotated without downtime.
    """
    escrow, attester = normalize_address(escrow), normalize_address(attester)
    _require_marketer(session, chain_id, escrow, campaign_id, marketer)
    if not is_attester(session, chain_id=chain_id, escrow=escrow, campaign_id=campaign_id, attester=attester):
        raise AttesterNotRegistered(campaign_id, attester)
    key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
    row = ApiKey(
        key_hash=secret_hash(key),
        chain_id=chain_id,
        escrow=escrow,
        campaign_id=campaign_id,
        attester=attester,
        issued_by=normalize_address(marketer),
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    return IssuedApiKey(row.id, key, campaign_id, attester, row.created_at)


def revoke_api_key(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    marketer: str,
    key_id: int,
    now: datetime | None = None,
) -> None:
    """Revokes the campaign's key ``key_id`` for good; revoking it again changes nothing. Raises
    CampaignNotIndexed, NotCampaignMarketer, or ApiKeyNotFound (no such key in this campaign)."""
    escrow = normalize_address(escrow)
    _require_marketer(session, chain_id, escrow, campaign_id, marketer)
    row = session.scalar(
        select(ApiKey).where(
            ApiKey.id == key_id,
            ApiKey.chain_id == chain_id,
            ApiKey.escrow == escrow,
            ApiKey.campaign_id == campaign_id,
        )
    )
    if row is None:
        raise ApiKeyNotFound(campaign_id, key_id)
    if row.revoked_at is None:
        row.revoked_at = now or utcnow()
        session.flush()


def caller_of(session: Session, key: str) -> AttesterCaller:
    """The attester a live key stands for; InvalidApiKey if the key is unknown or revoked, or its attester has
    since been removed from the campaign on chain."""
    if not key.startswith(KEY_PREFIX):
        raise InvalidApiKey(f"not an API key (they start with {KEY_PREFIX!r})")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == secret_hash(key)))
    if row is None or row.revoked_at is not None:
        raise InvalidApiKey("unknown or revoked API key")
    caller = AttesterCaller(row.id, row.chain_id, row.escrow, row.campaign_id, row.attester)
    if not is_attester(
        session,
        chain_id=caller.chain_id,
        escrow=caller.escrow,
        campaign_id=caller.campaign_id,
        attester=caller.attester,
    ):
        raise InvalidApiKey(f"{caller.attester} is no longer an attester of campaign {caller.campaign_id} on chain")
    return caller


def visible_engagement(session: Session, caller: AttesterCaller, *, campaign_id: int, event_id: int) -> EngagementState:
    """The engagement's state, for the attester that reported it only. Raises AccessDenied (another campaign or
    another attester's engagement) or EngagementNotFound."""
    caller.require_campaign(campaign_id)
    state = engagement_state(
        session, chain_id=caller.chain_id, escrow=caller.escrow, campaign_id=campaign_id, event_id=event_id
    )
    if state.attester != caller.attester:
        raise AccessDenied(f"engagement {event_id} of campaign {campaign_id} was reported by another attester")
    return state


def is_attester(session: Session, *, chain_id: int, escrow: str, campaign_id: int, attester: str) -> bool:
    """Whether ``attester`` is an attester of the campaign now: its last add/remove log, in chain order, is an add."""
    last = session.scalar(
        select(CampaignEvent.kind)
        .where(
            CampaignEvent.chain_id == chain_id,
            CampaignEvent.escrow == normalize_address(escrow),
            CampaignEvent.campaign_id == campaign_id,
            CampaignEvent.kind.in_((CampaignEventKind.ATTESTER_ADDED, CampaignEventKind.ATTESTER_REMOVED)),
            CampaignEvent.account == normalize_address(attester),
        )
        .order_by(CampaignEvent.block_number.desc(), CampaignEvent.log_index.desc())
        .limit(1)
    )
    return last == CampaignEventKind.ATTESTER_ADDED


def _require_marketer(session: Session, chain_id: int, escrow: str, campaign_id: int, marketer: str) -> None:
    found = session.scalar(
        select(Campaign.marketer).where(
            Campaign.chain_id == chain_id, Campaign.escrow == escrow, Campaign.campaign_id == campaign_id
        )
    )
    if found is None:
        raise CampaignNotIndexed(chain_id, escrow, campaign_id)
    if found != normalize_address(marketer):
        raise NotCampaignMarketer(campaign_id, marketer)
