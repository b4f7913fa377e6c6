"""What an auditor reads: every chain-derived figure of every campaign, and each settled engagement, no PII.

An auditor needs no account. Rows here come only from the escrow's logs (wallet addresses, amounts, evidence
hashes, where each log sits); the CRM's customer records and wallet links are never joined. Lists are keyset
pages in the order an auditor checks against the chain: campaigns by id, settled engagements by event id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from ledger.crm.campaigns import CampaignSummary, find_campaign, summary_of
from ledger.crm.onchain import Campaign, Rejection, Touchpoint
from ledger.errors import InvalidCursor, SettledEventNotFound
from ledger.model import Action, RejectReason
from ledger.types import normalize_address

Row = TypeVar("Row")
MAX_CURSOR_DIGITS = 20


@dataclass(frozen=True)
class Page(Generic[Row]):
    """One page; ``next_cursor`` fetches the next (None on the last)."""

    items: list[Row]
    next_cursor: str | None


def campaigns(
    session: Session, *, chain_id: int, escrow: str, limit: int, cursor: str | None = None
) -> Page[CampaignSummary]:
    """Every indexed campaign of the escrow, by id."""
    query = select(Campaign).where(Campaign.chain_id == chain_id, Campaign.escrow == normalize_address(escrow))
    if cursor is not None:
        query = query.where(Campaign.campaign_id > _parse_cursor(cursor))
    rows = list(session.scalars(query.order_by(Campaign.campaign_id).limit(limit + 1)))
    return _page([summary_of(row) for row in rows], limit, lambda summary: summary.campaign_id)


def deliveries(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    limit: int,
    cursor: str | None = None,
    action: Action | None = None,
    consumer: str | None = None,
) -> Page[Touchpoint]:
    """The campaign's paid engagements (its Rewarded logs) by event id, optionally of one action or wallet."""
    filters = []
    if action is not None:
        filters.append(Touchpoint.action == action)
    if consumer is not None:
        filters.append(Touchpoint.consumer == normalize_address(consumer))
    return _by_event_id(session, Touchpoint, (chain_id, escrow, campaign_id), limit, cursor, filters)


def rejections(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    limit: int,
    cursor: str | None = None,
    reason: RejectReason | None = None,
) -> Page[Rejection]:
    """The campaign's refused engagements (its Rejected logs, with the chain's reason) by event id."""
    filters = [] if reason is None else [Rejection.reason == reason]
    return _by_event_id(session, Rejection, (chain_id, escrow, campaign_id), limit, cursor, filters)


Settled = TypeVar("Settled", Touchpoint, Rejection)


def _by_event_id(
    session: Session,
    model: type[Settled],
    campaign: tuple[int, str, int],
    limit: int,
    cursor: str | None,
    filters: Sequence[ColumnElement[bool]],
) -> Page[Settled]:
    """One page of the campaign's ``model`` rows in event id order; CampaignNotIndexed for an unknown campaign."""
    chain_id, escrow, campaign_id = campaign
    find_campaign(session, chain_id=chain_id, escrow=escrow, campaign_id=campaign_id)
    query = select(model).where(
        model.chain_id == chain_id,
        model.escrow == normalize_address(escrow),
        model.campaign_id == campaign_id,
        *filters,
    )
    if cursor is not None:
        query = query.where(model.event_id > _parse_cursor(cursor))
    rows = list(session.scalars(query.order_by(model.event_id).limit(limit + 1)))
    return _page(rows, limit, lambda row: row.event_id)


def settled_event(
    session: Session, *, chain_id: int, escrow: str, campaign_id: int, event_id: int
) -> Touchpoint | Rejection:
    """The one log that settled ``event_id`` (the escrow settles an event id once: paid or rejected);
    SettledEventNotFound if none is indexed (not settled yet, not indexed yet, or never sent)."""
    escrow = normalize_address(escrow)
    paid = session.scalar(
        select(Touchpoint).where(
            Touchpoint.chain_id == chain_id,
            Touchpoint.escrow == escrow,
            Touchpoint.campaign_id == campaign_id,
            Touchpoint.event_id == event_id,
        )
    )
    if paid is not None:
        return paid
    rejected = session.scalar(
        select(Rejection).where(
            Rejection.chain_id == chain_id,
            Rejection.escrow == escrow,
            Rejection.campaign_id == campaign_id,
            Rejection.event_id == event_id,
        )
    )
    if rejected is not None:
        return rejected
    raise SettledEventNotFound(campaign_id, event_id)


def _page(rows: list[Row], limit: int, key: Callable[[Row], int]) -> Page[Row]:
    items = rows[:limit]
    more = len(rows) > limit
    return Page(items, str(key(items[-1])) if more and items else None)


def _parse_cursor(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > MAX_CURSOR_DIGITS:
        raise InvalidCursor(f"{cursor!r} is not a cursor of this list")
    return int(cursor)
