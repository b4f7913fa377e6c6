"""Campaign management by its marketer: attester API keys (campaign reads and writes come next)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import DeploymentDep, SessionDep, Wallet
from api.problems import responses
from api.routers import V1
from api.schemas.campaigns import ApiKeyIn, ApiKeyOut
from api.schemas.common import CampaignIdPath, KeyIdPath
from ledger.auth import api_keys
from ledger.types import checksummed

router = APIRouter(prefix=f"{V1}/campaigns", tags=["campaigns"])

MARKETER_PROBLEMS = ("credentials_required", "invalid_session", "not_marketer", "campaign_not_indexed")


@router.post(
    "/{campaign_id}/api-keys",
    status_code=201,
    responses=responses(
        *MARKETER_PROBLEMS, "attester_not_registered", "invalid_request", "request_too_large", "deployment_not_found"
    ),
)
def issue_api_key(
    campaign_id: CampaignIdPath, body: ApiKeyIn, wallet: Wallet, session: SessionDep, deployment: DeploymentDep
) -> ApiKeyOut:
    """Issue an API key for one of the campaign's attesters (on chain); the campaign's marketer only. Shown once."""
    issued = api_keys.issue_api_key(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        campaign_id=campaign_id,
        marketer=wallet.address,
        attester=body.attester,
    )
    session.commit()
    return ApiKeyOut(
        key_id=issued.key_id,
        key=issued.key,
        campaign_id=issued.campaign_id,
        attester=checksummed(issued.attester),
        created_at=issued.created_at,
    )


@router.delete(
    "/{campaign_id}/api-keys/{key_id}",
    status_code=204,
    responses=responses(*MARKETER_PROBLEMS, "api_key_not_found", "invalid_request", "deployment_not_found"),
)
def revoke_api_key(
    campaign_id: CampaignIdPath, key_id: KeyIdPath, wallet: Wallet, session: SessionDep, deployment: DeploymentDep
) -> Response:
    """Revoke one of the campaign's API keys for good (again: no change); the campaign's marketer only."""
    api_keys.revoke_api_key(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        campaign_id=campaign_id,
        marketer=wallet.address,
        key_id=key_id,
    )
    session.commit()
    return Response(status_code=204)
