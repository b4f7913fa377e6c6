"""A marketer's campaigns: create and fund, top up, pause, attesters, close; reads of its own campaigns.

The service holds no marketer's key: every chain write is a transaction the marketer's wallet signed, relayed
unchanged by ``ledger.relay`` after checking its signer, target, chain and function, and simulating it (a revert
is answered with the contract's error, nothing is mined). Creating takes one signed transaction,
createCampaignWithPermit, whose token permit the wallet signs first:

1. ``POST /v1/campaigns/prepare`` with the terms: the Permit typed data (and the transaction fields);
2. the wallet signs the Permit; ``POST /v1/campaigns/prepare`` again with ``permit_signature``: the calldata and gas;
3. the wallet signs that transaction; ``POST /v1/campaigns`` with it: 202 and the tx hash;
4. ``GET /v1/campaigns/transactions/{tx_hash}``: the campaign id once mined; the reads show it once indexed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from api.deps import ChainDep, DeploymentDep, SessionDep, Wallet
from api.problems import WALLET_PROBLEMS, responses
from api.routers import V1
from api.schemas.common import CampaignIdPath
from api.schemas.marketer_campaigns import (
    CampaignDetailOut,
    CampaignOut,
    CampaignPrepareIn,
    PreparedCreateOut,
    RelayedOut,
    SignedTransactionIn,
    TransactionOut,
)
from ledger import relay
from ledger.crm import campaigns

router = APIRouter(prefix=f"{V1}/campaigns", tags=["campaigns"])

CHAIN_PROBLEMS = ("deployment_not_found", "chain_unavailable")
RELAY_PROBLEMS = (
    *WALLET_PROBLEMS,
    *CHAIN_PROBLEMS,
    "invalid_request",
    "request_too_large",
    "invalid_transaction",
    "function_not_allowed",
    "wrong_signer",
    "contract_revert",
)
TxHashPath = Annotated[str, PathParam(pattern=r"^0x[0-9a-fA-F]{64}$", description="The hash a relay answered with.")]


def _status_url(tx_hash: str) -> str:
    return f"{V1}/campaigns/transactions/{tx_hash}"


@router.post(
    "/prepare",
    responses=responses(*WALLET_PROBLEMS, *CHAIN_PROBLEMS, "invalid_request", "request_too_large", "contract_revert"),
)
def prepare_campaign(
    body: CampaignPrepareIn, wallet: Wallet, chain: ChainDep, deployment: DeploymentDep
) -> PreparedCreateOut:
    """What the signed-in wallet signs to create and fund a campaign: the Permit, then the transaction."""
    prepared = relay.prepare_create(
        chain,
        deployment,
        wallet.address,
        body.terms(deployment.token),
        body.attesters,
        int(body.budget),
        deadline=body.deadline,
        permit_signature=bytes.fromhex(body.permit_signature[2:]) if body.permit_signature else None,
    )
    return PreparedCreateOut.of(prepared)


@router.post("", status_code=202, responses=responses(*RELAY_PROBLEMS))
def create_campaign(
    body: SignedTransactionIn, wallet: Wallet, chain: ChainDep, deployment: DeploymentDep
) -> RelayedOut:
    """Relay a createCampaign(WithPermit) transaction the signed-in wallet signed; 202 with its hash."""
    tx_hash = relay.relay_create(chain, deployment, wallet.address, body.signed_transaction)
    return RelayedOut(tx_hash=tx_hash, status_url=_status_url(tx_hash))


@router.get(
    "/transactions/{tx_hash}",
    responses=responses(*WALLET_PROBLEMS, *CHAIN_PROBLEMS, "transaction_not_found", "invalid_request"),
)
def get_transaction(tx_hash: TxHashPath, wallet: Wallet, chain: ChainDep, deployment: DeploymentDep) -> TransactionOut:
    """A relayed transaction: pending, mined (with the created campaign's id) or failed."""
    return TransactionOut.of(relay.transaction_status(chain, deployment, tx_hash))


@router.get("", responses=responses(*WALLET_PROBLEMS, "deployment_not_found"))
def list_campaigns(wallet: Wallet, session: SessionDep, deployment: DeploymentDep) -> list[CampaignOut]:
    """The signed-in marketer's campaigns, as indexed, newest first."""
    found = campaigns.list_campaigns(
        session, chain_id=deployment.chain_id, escrow=deployment.escrow, marketer=wallet.address
    )
    return [CampaignOut.of(summary) for summary in found]


@router.get(
    "/{campaign_id}",
    responses=responses(
        *WALLET_PROBLEMS, "deployment_not_found", "not_marketer", "campaign_not_indexed", "invalid_request"
    ),
)
def get_campaign(
    campaign_id: CampaignIdPath, wallet: Wallet, session: SessionDep, deployment: DeploymentDep
) -> CampaignDetailOut:
    """One of the marketer's campaigns: terms, live budget, spend, deliveries and rejections by action."""
    report = campaigns.campaign_report(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        campaign_id=campaign_id,
        marketer=wallet.address,
    )
    return CampaignDetailOut.of_report(report)


@router.post(
    "/{campaign_id}/transactions",
    status_code=202,
    responses=responses(*RELAY_PROBLEMS, "not_marketer", "campaign_not_indexed", "campaign_mismatch"),
)
def relay_campaign_transaction(
    campaign_id: CampaignIdPath,
    body: SignedTransactionIn,
    wallet: Wallet,
    session: SessionDep,
    chain: ChainDep,
    deployment: DeploymentDep,
) -> RelayedOut:
    """Relay topUp, pause, unpause, addAttester, removeAttester or close of this campaign, signed by its marketer."""
    tx_hash = relay.relay_manage(session, chain, deployment, campaign_id, wallet.address, body.signed_transaction)
    return RelayedOut(tx_hash=tx_hash, status_url=_status_url(tx_hash))
