"""Where an accepted engagement is: queued, sent, settled (transaction, block, amount) or rejected (the chain's reason).

``engagement_state`` answers ``GET /v1/engagements/{campaign}/{event_id}``; ``states_of`` gives the same answer for
many outbox rows of one campaign at once (intake uses it for replays). The outbox row says queued or sent, and the
batcher's copy of a receipt; the indexer's touchpoints and rejections, once the chain's logs are indexed, say
settled or rejected and take precedence: the chain is the authority on an engagement's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from ledger.crm.onchain import Rejection, Touchpoint
from ledger.errors import EngagementNotFound
from ledger.model import Action, RejectReason
from ledger.settlement.batch import MAX_EVENT_ID
from ledger.settlement.outbox_models import MAX_CAMPAIGN_ID, EngagementStatus, OutboxEngagement, SettlementBatch
from ledger.types import normalize_address


@dataclass(frozen=True)
class EngagementState:
    """An accepted engagement and where it is. ``settled`` carries the paying transaction, its block and amount;
    ``rejected`` the chain's reason; ``sent`` the transaction it went out in (``tx_hash``), not yet final."""

    chain_id: int
    escrow: str
    campaign_id: int
    event_id: int
    attester: str
    attester_ref: str
    consumer: str
    action: Action
    occurred_at: int
    evidence_hash: str
    status: EngagementStatus
    accepted_at: datetime
    tx_hash: str | None = None
    block_number: int | None = None
    amount: int | None = None
    reject_reason: RejectReason | None = None


def engagement_state(
    session: Session, *, chain_id: int, escrow: str, campaign_id: int, event_id: int
) -> EngagementState:
    """The engagement with this event id and where it is; settled and rejected come from the chain's own rows
    (the indexer's touchpoints and rejections) once indexed, else from the batcher's receipt. Raises
    EngagementNotFound."""
    escrow = normalize_address(escrow)
    if not (is_uint(chain_id, 2**63 - 1) and is_uint(campaign_id, MAX_CAMPAIGN_ID) and is_uint(event_id, MAX_EVENT_ID)):
        raise EngagementNotFound(f"no engagement {event_id!r} in campaign {campaign_id!r}")
    row = session.execute(
        state_query().where(
            OutboxEngagement.chain_id == chain_id,
            OutboxEngagement.escrow == escrow,
            OutboxEngagement.campaign_id == campaign_id,
            OutboxEngagement.event_id == event_id,
        )
    ).one_or_none()
    if row is None:
        raise EngagementNotFound(f"no engagement {event_id} in campaign {campaign_id} of escrow {escrow}")
    return states_of(session, [row])[event_id]


def state_query() -> Select[*tuple[Any, ...]]:
    """Outbox rows with the hash of the batch each went out in."""
    return select(
        OutboxEngagement.chain_id,
        OutboxEngagement.escrow,
        OutboxEngagement.campaign_id,
        OutboxEngagement.event_id,
        OutboxEngagement.attester,
        OutboxEngagement.attester_ref,
        OutboxEngagement.consumer,
        OutboxEngagement.action,
        OutboxEngagement.occurred_at,
        OutboxEngagement.evidence_hash,
        OutboxEngagement.status,
        OutboxEngagement.accepted_at,
        OutboxEngagement.tx_hash,
        OutboxEngagement.block_number,
        OutboxEngagement.amount,
        OutboxEngagement.reject_reason,
        SettlementBatch.tx_hash.label("batch_tx_hash"),
    ).outerjoin(SettlementBatch, SettlementBatch.id == OutboxEngagement.batch_id)


def states_of(session: Session, rows: Sequence[Row[Any]]) -> dict[int, EngagementState]:
    """The state of each row (all of one campaign) by event id.

    Queued rows are as stored: the batcher marks rows sent before it broadcasts their batch, so a queued event id
    is on no chain. For the others the indexer's rows, where present, decide: a Rewarded log (settled), else the
    Rejected log with the rule the engagement failed, else a DuplicateEvent rejection alone (the id was settled
    by something that is not this outbox). A resend after a crash adds DuplicateEvent rejections beside the
    first outcome, and these never hide it.
    """
    if not rows:
        return {}
    first = rows[0]
    outcomes = _chain_outcomes(
        session,
        first.chain_id,
        first.escrow,
        first.campaign_id,
        [row.event_id for row in rows if row.status != EngagementStatus.QUEUED],
    )
    states = {}
    for row in rows:
        state = EngagementState(
            chain_id=row.chain_id,
            escrow=row.escrow,
            campaign_id=row.campaign_id,
            event_id=row.event_id,
            attester=row.attester,
            attester_ref=row.attester_ref,
            consumer=row.consumer,
            action=row.action,
            occurred_at=row.occurred_at,
            evidence_hash=row.evidence_hash,
            status=row.status,
            accepted_at=row.accepted_at,
            tx_hash=row.tx_hash or (row.batch_tx_hash if row.status == EngagementStatus.SENT else None),
            block_number=row.block_number,
            amount=row.amount,
            reject_reason=row.reject_reason,
        )
        outcome = outcomes.get(row.event_id)
        states[row.event_id] = state if outcome is None else replace(state, **outcome.__dict__)
    return states


@dataclass(frozen=True)
class _Outcome:
    status: EngagementStatus
    tx_hash: str
    block_number: int
    amount: int | None
    reject_reason: RejectReason | None


def _chain_outcomes(
    session: Session, chain_id: int, escrow: str, campaign_id: int, event_ids: list[int]
) -> dict[int, _Outcome]:
    """What the indexed logs say about these event ids of one campaign (see ``states_of`` for the precedence)."""
    if not event_ids:
        return {}
    outcomes: dict[int, _Outcome] = {}
    rejections = session.execute(
        select(Rejection.event_id, Rejection.tx_hash, Rejection.block_number, Rejection.reason)
        .where(
            Rejection.chain_id == chain_id,
            Rejection.escrow == escrow,
            Rejection.campaign_id == campaign_id,
            Rejection.event_id.in_(event_ids),
        )
        .order_by(Rejection.block_number, Rejection.log_index)
    )
    for event_id, tx_hash, block_number, reason in rejections:
        kept = outcomes.get(event_id)  # the earliest, unless a real reason comes after a DuplicateEvent
        if kept is None or (kept.reject_reason == RejectReason.DUPLICATE_EVENT and reason != kept.reject_reason):
            outcomes[event_id] = _Outcome(EngagementStatus.REJECTED, tx_hash, block_number, None, reason)
    paid = session.execute(
        select(Touchpoint.event_id, Touchpoint.tx_hash, Touchpoint.block_number, Touchpoint.amount).where(
            Touchpoint.chain_id == chain_id,
            Touchpoint.escrow == escrow,
            Touchpoint.campaign_id == campaign_id,
            Touchpoint.event_id.in_(event_ids),
        )
    )
    for event_id, tx_hash, block_number, amount in paid:
        outcomes[event_id] = _Outcome(EngagementStatus.SETTLED, tx_hash, block_number, amount, None)
    return outcomes


def is_uint(value: object, top: int) -> bool:
    """Whether ``value`` is an int (not a bool) in [0, top]: what fits a uint column before it is bound."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top
