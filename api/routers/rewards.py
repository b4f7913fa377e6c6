"""The consumer's rewards: per campaign accrued, claimed, claimable and refused engagements (with the chain's
reason); every paid engagement with its transaction; and the gasless claim."""

from __future__ import annotations

import contextlib
import logging
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import DeploymentDep, RuntimeDep, SessionDep, Wallet
from api.problems import WALLET_PROBLEMS, responses
from api.routers import V1
from api.routers.consents import RELAY_PROBLEMS, Relay, get_relay
from api.schemas.consumers import CampaignRewardsOut, ClaimIn, RelayedOut, RewardOut, RewardPageOut, RewardsOut
from ledger.crm import consumer
from ledger.errors import LedgerError
from ledger.types import checksummed

log = logging.getLogger(__name__)

router = APIRouter(prefix=V1, tags=["consumers"])


@router.get("/rewards", responses=responses(*WALLET_PROBLEMS, "deployment_not_found"))
def get_rewards(wallet: Wallet, session: SessionDep, deployment: DeploymentDep, runtime: RuntimeDep) -> RewardsOut:
    """Per campaign: accrued and claimed (indexed), claimable (the escrow's view when the chain answers, else
    indexed accrued - claimed; ``claimable_source`` says which) and the wallet's refused engagements."""
    campaigns = consumer.rewards_by_campaign(
        session, chain_id=deployment.chain_id, escrow=deployment.escrow, wallet=wallet.address
    )
    out = []
    relay = None
    with contextlib.suppress(LedgerError):  # no chain: the indexed figures, and claimable_source says so
        relay = get_relay(runtime, deployment)
    for rewards in campaigns:
        on_chain = None
        if relay is not None:
            try:
                on_chain = relay.accrued(rewards.campaign_id, wallet.address)
            except (LedgerError, OSError) as exc:
                log.warning("accountOf(%s) failed, answering indexed figures: %s", rewards.campaign_id, exc)
                relay = None
        out.append(CampaignRewardsOut.of(rewards, on_chain))
    return RewardsOut(wallet=checksummed(wallet.address), campaigns=out)


@router.get(
    "/rewards/history",
    responses=responses(*WALLET_PROBLEMS, "invalid_request", "invalid_cursor", "deployment_not_found"),
)
def get_reward_history(
    wallet: Wallet,
    session: SessionDep,
    deployment: DeploymentDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=40, description="A page's next_cursor.")] = None,
) -> RewardPageOut:
    """Every reward paid to the wallet, newest first, with its transaction and block; paginated by ``cursor``."""
    page = consumer.reward_history(
        session,
        chain_id=deployment.chain_id,
        escrow=deployment.escrow,
        wallet=wallet.address,
        limit=limit,
        cursor=cursor,
    )
    return RewardPageOut(items=[RewardOut.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.post(
    "/claims",
    status_code=202,
    responses=responses(*RELAY_PROBLEMS, "nothing_to_claim", "unknown_campaign", "invalid_recipient"),
)
def post_claim(body: ClaimIn, wallet: Wallet, relay: Relay) -> RelayedOut:
    """Relays the wallet's signed Claim (claimBySig): its accruals in the campaigns are paid to ``to``."""
    relayed = relay.claim(wallet.address, body.campaign_ids, body.to, body.deadline, bytes.fromhex(body.signature[2:]))
    return RelayedOut.of(relayed)
