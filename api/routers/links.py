"""The consumer's wallet links: the signed-in wallet proves, by its EIP-712 Link signature, that it is a brand's
customer record's wallet. The consumer sees its links' brands and times, never the record."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DeploymentDep, SessionDep, Wallet
from api.problems import WALLET_PROBLEMS, responses
from api.routers import V1
from api.schemas.consumers import LinkIn, LinkOut
from ledger.crm import consumer
from ledger.crm.links import link_wallet
from ledger.typed_data import REGISTRY_DOMAIN_NAME, Domain

router = APIRouter(prefix=f"{V1}/links", tags=["consumers"])


@router.post(
    "",
    status_code=201,
    responses=responses(
        *WALLET_PROBLEMS,
        "invalid_request",
        "request_too_large",
        "invalid_signature",
        "expired_signature",
        "nonce_used",
        "customer_not_found",
        "wallet_linked_elsewhere",
        "deployment_not_found",
    ),
)
def post_link(body: LinkIn, wallet: Wallet, session: SessionDep, deployment: DeploymentDep) -> LinkOut:
    """Links the signed-in wallet to a brand's customer record on its Link signature (registry's domain)."""
    domain = Domain(REGISTRY_DOMAIN_NAME, deployment.chain_id, deployment.registry)
    link = link_wallet(
        session,
        customer_id=body.customer_id,
        brand=body.brand,
        wallet=wallet.address,
        nonce=body.nonce,  # type: ignore[arg-type]  # the validator made it an int
        deadline=body.deadline,
        signature=body.signature,
        domain=domain,
    )
    answer = LinkOut.of(link)
    session.commit()
    return answer


@router.get("", responses=responses(*WALLET_PROBLEMS))
def get_links(wallet: Wallet, session: SessionDep) -> list[LinkOut]:
    """The signed-in wallet's links: brand, chain and time (no customer data)."""
    return [LinkOut.of(link) for link in consumer.wallet_links(session, wallet.address)]
