"""A marketer's view of its campaigns, from the indexed tables: terms, live budget, spend, deliveries, rejections.

Every figure is as fresh as the indexer: ``indexed_block`` is the checkpoint of the chain's logs these rows were
folded from. Amounts are exact ints (``ledger.crm.sums``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.crm import sums
from ledger.crm.onchain import (
    Campaign,
    CampaignAction,
    CampaignEvent,
    CampaignEventKind,
    IndexCheckpoint,
    Rejection,
    Touchpoint,
)
from ledger.errors import CampaignNotIndexed, NotCampaignMarketer
from ledger.model import Action, CampaignStatus, RejectReason
from ledger.settlement.outbox_models import EngagementStatus, OutboxEngagement
from ledger.types import normalize_address


@dataclass(frozen=True)
class ActionReport:
    """One offered action: its terms, and what was paid (``deliveries``, ``spend``) or refused for it."""

    action: Action
    reward: int
    purposes: int
    lifetime_cap: int
    daily_cap: int
    deliveries: int = 0
    spend: int = 0
    rejections: int = 0  # only those whose action is known: see CampaignReport.rejections_unattributed


@dataclass(frozen=True)
class CampaignSummary:
    campaign_id: int
    marketer: str
    token: str
    brand: str
    starts_at: int
    ends_at: int
    status: CampaignStatus
    budget: int
    owed: int
    refunded: int
    updated_block: int
    created_tx: str
    created_block: int


@dataclass(frozen=True)
class CampaignReport:
    """A campaign in full. Rejected logs carry no action, so ``ActionReport.rejections`` counts only rejections
    of engagements this service's outbox accepted (their action is known by event id); the rest are in
    ``rejections_unattributed``. ``rejections_by_reason`` counts them all."""

    summary: CampaignSummary
    actions: list[ActionReport]
    spend: int
    deliveries: int
    rejections_by_reason: dict[RejectReason, int]
    rejections_unattributed: int
    outbox: dict[EngagementStatus, int]
    attesters: list[str]
    indexed_block: int | None


def find_campaign(session: Session, *, chain_id: int, escrow: str, campaign_id: int) -> Campaign:
    """The indexed campaign; CampaignNotIndexed (404) if there is none."""
    row = session.scalar(
        select(Campaign).where(
            Campaign.chain_id == chain_id,
            Campaign.escrow == normalize_address(escrow),
            Campaign.campaign_id == campaign_id,
        )
    )
    if row is None:
        raise CampaignNotIndexed(chain_id, escrow, campaign_id)
    return row


def require_marketer(session: Session, *, chain_id: int, escrow: str, campaign_id: int, marketer: str) -> Campaign:
    """The indexed campaign (see ``find_campaign``); NotCampaignMarketer (403) if another wallet created it."""
    row = find_campaign(session, chain_id=chain_id, escrow=escrow, campaign_id=campaign_id)
    if row.marketer != normalize_address(marketer):
        raise NotCampaignMarketer(campaign_id, normalize_address(marketer))
    return row


def list_campaigns(session: Session, *, chain_id: int, escrow: str, marketer: str) -> list[CampaignSummary]:
    """The marketer's indexed campaigns, newest first."""
    rows = session.scalars(
        select(Campaign)
        .where(
            Campaign.chain_id == chain_id,
            Campaign.escrow == normalize_address(escrow),
            Campaign.marketer == normalize_address(marketer),
        )
        .order_by(Campaign.campaign_id.desc())
    )
    return [summary_of(row) for row in rows]


def campaign_report(session: Session, *, chain_id: int, escrow: str, campaign_id: int, marketer: str) -> CampaignReport:
    """The campaign's terms, state and figures, for its marketer only (see ``require_marketer``)."""
    row = require_marketer(session, chain_id=chain_id, escrow=escrow, campaign_id=campaign_id, marketer=marketer)
    return report_of(session, row)


def report_of(session: Session, row: Campaign) -> CampaignReport:
    """The figures of an indexed campaign, whoever asks: callers decide who may (see ``campaign_report``)."""
    chain_id, escrow = row.chain_id, row.escrow
    key = (chain_id, escrow, row.campaign_id)
    delivered = _deliveries(session, key)
    rejected = _rejections(session, key)
    by_action: Counter[Action] = Counter()
    by_reason: Counter[RejectReason] = Counter()
    unattributed = 0
    for action, reason, count in rejected:
        by_reason[reason] += count
        if action is None:
            unattributed += count
        else:
            by_action[action] += count
    terms = session.scalars(
        select(CampaignAction).where(CampaignAction.campaign_pk == row.id).order_by(CampaignAction.action)
    )
    actions = [
        ActionReport(
            action=t.action,
            reward=t.reward,
            purposes=t.purposes,
            lifetime_cap=t.lifetime_cap,
            daily_cap=t.daily_cap,
            deliveries=delivered.get(t.action, (0, 0))[0],
            spend=delivered.get(t.action, (0, 0))[1],
            rejections=by_action[t.action],
        )
        for t in terms
    ]
    return CampaignReport(
        summary=summary_of(row),
        actions=actions,
        spend=sum(amount for _, amount in delivered.values()),
        deliveries=sum(count for count, _ in delivered.values()),
        rejections_by_reason=dict(by_reason),
        rejections_unattributed=unattributed,
        outbox=_outbox(session, key),
        attesters=_attesters(session, key),
        indexed_block=indexed_block(session, chain_id, escrow),
    )


def summary_of(row: Campaign) -> CampaignSummary:
    return CampaignSummary(
        campaign_id=row.campaign_id,
        marketer=row.marketer,
        token=row.token,
        brand=row.brand,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        status=row.status,
        budget=row.budget,
        owed=row.owed,
        refunded=row.refunded,
        updated_block=row.updated_block,
        created_tx=row.tx_hash,
        created_block=row.block_number,
    )


Key = tuple[int, str, int]


def _deliveries(session: Session, key: Key) -> dict[Action, tuple[int, int]]:
    """Paid engagements per action: (count, amount)."""
    where = (Touchpoint.chain_id == key[0], Touchpoint.escrow == key[1], Touchpoint.campaign_id == key[2])
    return sums.count_and_sum(session, Touchpoint.amount, *where, group_by=Touchpoint.action)


def _rejections(session: Session, key: Key) -> list[tuple[Action | None, RejectReason, int]]:
    """Rejections per (action, reason); the action from the outbox row of the same event id, None without one."""
    stmt = (
        select(OutboxEngagement.action, Rejection.reason, func.count())
        .outerjoin(
            OutboxEngagement,
            (OutboxEngagement.chain_id == Rejection.chain_id)
            & (OutboxEngagement.escrow == Rejection.escrow)
            & (OutboxEngagement.campaign_id == Rejection.campaign_id)
            & (OutboxEngagement.event_id == Rejection.event_id),
        )
        .where(Rejection.chain_id == key[0], Rejection.escrow == key[1], Rejection.campaign_id == key[2])
        .group_by(OutboxEngagement.action, Rejection.reason)
    )
    return [(action, reason, int(count)) for action, reason, count in session.execute(stmt)]


def _outbox(session: Session, key: Key) -> dict[EngagementStatus, int]:
    stmt = (
        select(OutboxEngagement.status, func.count())
        .where(
            OutboxEngagement.chain_id == key[0],
            OutboxEngagement.escrow == key[1],
            OutboxEngagement.campaign_id == key[2],
        )
        .group_by(OutboxEngagement.status)
    )
    counts = {status: 0 for status in EngagementStatus}
    counts.update({status: int(count) for status, count in session.execute(stmt)})
    return counts


def _attesters(session: Session, key: Key) -> list[str]:
    """The attesters now, folded in chain order from AttesterAdded / AttesterRemoved logs."""
    stmt = (
        select(CampaignEvent.kind, CampaignEvent.account)
        .where(
            CampaignEvent.chain_id == key[0],
            CampaignEvent.escrow == key[1],
            CampaignEvent.campaign_id == key[2],
            CampaignEvent.kind.in_([CampaignEventKind.ATTESTER_ADDED, CampaignEventKind.ATTESTER_REMOVED]),
        )
        .order_by(CampaignEvent.block_number, CampaignEvent.log_index)
    )
    current: dict[str, None] = {}
    for kind, account in session.execute(stmt):
        if account is None:  # the indexer always sets it for attester logs
            continue
        if kind == CampaignEventKind.ATTESTER_ADDED:
            current[account] = None
        else:
            current.pop(account, None)
    return list(current)


def indexed_block(session: Session, chain_id: int, escrow: str) -> int | None:
    """The indexer's checkpoint for the contract set holding ``escrow``: how fresh these rows are."""
    rows = session.execute(
        select(IndexCheckpoint.addresses, IndexCheckpoint.block_number).where(IndexCheckpoint.chain_id == chain_id)
    )
    blocks = [block for addresses, block in rows if escrow in addresses.split(",")]
    return max(blocks) if blocks else None
