"""Public reads for auditors: every campaign's chain-derived figures, each settled engagement, and a verification
that the indexed figures tie out with the chain. No sign-in; limited per client IP; no customer record is read.

Rows are as fresh as the indexer (``indexed_block`` on a campaign, ``block_number`` on a verification); each
engagement carries its log's position so it can be re-checked on any node.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ChainDep, DeploymentDep, PublicLimit, SessionDep
from api.problems import responses
from api.routers import V1
from api.schemas.audit import (
    CampaignPageOut,
    DeliveryOut,
    DeliveryPageOut,
    RejectedOut,
    RejectedPageOut,
    VerificationOut,
)
from api.schemas.common import Address, CampaignIdPath, EventIdPath
from api.schemas.engagements import ActionName, RejectReasonName
from api.schemas.marketer_campaigns import CampaignDetailOut
from ledger.crm import audit, campaigns, verification
from ledger.crm.onchain import Touchpoint
from ledger.model import Action, RejectReason

router = APIRouter(prefix=f"{V1}/audit", tags=["auditors"], dependencies=[PublicLimit])

PUBLIC_PROBLEMS = ("rate_limited", "deployment_not_found", "invalid_request")
PAGE_PROBLEMS = (*PUBLIC_PROBLEMS, "invalid_cursor")
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=20, description="A page's next_cursor.")]


@router.get("/campaigns", responses=responses(*PAGE_PROBLEMS))
def list_campaigns(
    session: SessionDep, deployment: DeploymentDep, limit: Limit = 100, cursor: Cursor = None
) -> CampaignPageOut:
    """Every indexed campaign of the deployment's escrow, by id: marketer, brand, budget, owed, refunded."""
    page = audit.campaigns(session, chain_id=deployment.chain_id, escrow=deployment.escrow, limit=limit, cursor=cursor)
    return CampaignPageOut.of(page)


@router.get("/campaigns/{campaign_id}", responses=responses(*PUBLIC_PROBLEMS, "campaign_not_indexed"))
def get_campaign(campaign_id: CampaignIdPath, session: SessionDep, deployment: DeploymentDep) -> CampaignDetailOut:
    """A campaign's terms and figures: live budget, spend, deliveries and rejections by action and reason."""
    row = campaigns.find_campaign(
        session, chain_id=deployment.chain_id, escrow=deployment.escrow, campaign_id=campaign_id
    )
    return CampaignDetailOut.of_report(campaigns.report_of(session, row))


@router.get("/campaigns/{campaign_id}/deliveries", responses=responses(*PAGE_PROBLEMS, "campaign_not_indexed"))
def list_deliveries(
    campaign_id: CampaignIdPath,
    session: SessionDep,
    deployment: DeploymentDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    action: Annotated[ActionName | None, Query(description="Only this action.")] = None,
    consumer: Annotated[Address | None, Query(description="Only this wallet.")] = None,
) -> DeliveryPageOut:
    """The campaign's paid engagements (Rewarded logs) by event id, with each log's position."""
    page = audit.deliveries(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        campaign_id=campaign_id,
        limit=limit,
        cursor=cursor,
        action=Action[action.upper()] if action else None,
        consumer=consumer,
    )
    return DeliveryPageOut.of(page)


@router.get("/campaigns/{campaign_id}/rejections", responses=responses(*PAGE_PROBLEMS, "campaign_not_indexed"))
def list_rejections(
    campaign_id: CampaignIdPath,
    session: SessionDep,
    deployment: DeploymentDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    reason: Annotated[RejectReasonName | None, Query(description="Only this reason.")] = None,
) -> RejectedPageOut:
    """The campaign's refused engagements (Rejected logs) by event id, each with the chain's reason."""
    page = audit.rejections(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        campaign_id=campaign_id,
        limit=limit,
        cursor=cursor,
        reason=RejectReason[reason.upper()] if reason else None,
    )
    return RejectedPageOut.of(page)


@router.get(
    "/campaigns/{campaign_id}/events/{event_id}", responses=responses(*PUBLIC_PROBLEMS, "settled_event_not_found")
)
def get_settled_event(
    campaign_id: CampaignIdPath, event_id: EventIdPath, session: SessionDep, deployment: DeploymentDep
) -> DeliveryOut | RejectedOut:
    """How the escrow settled one event id: paid (with amount and evidence hash) or rejected (with the reason)."""
    row = audit.settled_event(
        session, chain_id=deployment.chain_id, escrow=deployment.escrow, campaign_id=campaign_id, event_id=event_id
    )
    return DeliveryOut.of(row) if isinstance(row, Touchpoint) else RejectedOut.of(row)


@router.get(
    "/campaigns/{campaign_id}/verification",
    responses=responses(*PUBLIC_PROBLEMS, "campaign_not_indexed", "chain_unavailable"),
)
def verify_campaign(
    campaign_id: CampaignIdPath, session: SessionDep, chain: ChainDep, deployment: DeploymentDep
) -> VerificationOut:
    """Reads the escrow at the indexer's checkpoint and checks the indexed state and every log's money against it:
    budget and owed, funded - rewards - refund, rewards - claims, and the batches' own totals."""
    return VerificationOut.of(verification.verify_campaign(session, chain, deployment, campaign_id))
