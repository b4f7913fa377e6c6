"""Engagement intake from attesters, and each engagement's state: queued, sent, settled or rejected."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from api.deps import Attester, MetricsDep, SessionDep
from api.problems import responses
from api.routers import V1
from api.schemas.common import CampaignIdPath, EventIdPath
from api.schemas.engagements import EngagementBatch, EngagementOut, IntakeAnswer
from ledger.auth import api_keys
from ledger.settlement import outbox

router = APIRouter(prefix=f"{V1}/engagements", tags=["engagements"])

ATTESTER_PROBLEMS = ("credentials_required", "invalid_api_key", "access_denied")


@router.post(
    "",
    status_code=202,
    response_model=IntakeAnswer,
    responses=responses(
        *ATTESTER_PROBLEMS,
        "campaign_not_indexed",
        "campaign_not_open",
        "event_ids_exhausted",
        "too_many_engagements",
        "request_too_large",
        "invalid_request",
    ),
)
def post_engagements(body: EngagementBatch, attester: Attester, session: SessionDep, metrics: MetricsDep) -> Response:
    """Report engagements of the key's campaign; each is answered accepted, replay, conflict or invalid, in order.

    Idempotent on ``attester_ref``: what was answered accepted is stored before this answer, and sending it again
    is a replay with the same event id."""
    attester.require_campaign(body.campaign_id)
    results = outbox.accept_engagements(
        session,
        chain_id=attester.chain_id,
        escrow=attester.escrow,
        campaign_id=body.campaign_id,
        attester=attester.attester,
        engagements=[engagement.to_ledger() for engagement in body.engagements],
        now=int(time.time()),
    )
    session.commit()
    metrics.count_intake(results)
    # serialised here, once: as a return value FastAPI would validate the 1,000 results again before dumping them
    return Response(IntakeAnswer.of(results).model_dump_json(), status_code=202, media_type="application/json")


@router.get(
    "/{campaign_id}/{event_id}",
    responses=responses(*ATTESTER_PROBLEMS, "engagement_not_found", "invalid_request"),
)
def get_engagement(
    campaign_id: CampaignIdPath, event_id: EventIdPath, attester: Attester, session: SessionDep
) -> EngagementOut:
    """One engagement's state, for the attester that reported it: queued, sent, settled (tx, block, amount) or
    rejected (the chain's reason)."""
    state = api_keys.visible_engagement(session, attester, campaign_id=campaign_id, event_id=event_id)
    return EngagementOut.of(state)
