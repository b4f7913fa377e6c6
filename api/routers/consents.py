"""The consumer's consents, gasless: the service relays the wallet's signed Grant or Revoke and pays the gas;
what was granted to whom, for what and until when is read back from the indexed logs."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import DeploymentDep, RuntimeDep, SessionDep, Wallet
from api.problems import WALLET_PROBLEMS, responses
from api.routers import V1
from api.schemas.consumers import (
    ConsentOut,
    ConsentReceiptOut,
    DomainOut,
    GrantIn,
    NoncesOut,
    RelayedOut,
    RevokeIn,
    mask_of,
)
from ledger.crm import consumer
from ledger.errors import ChainError
from ledger.gasless import GaslessRelay
from ledger.types import checksummed

router = APIRouter(prefix=f"{V1}/consents", tags=["consumers"])

RELAY_PROBLEMS = (
    *WALLET_PROBLEMS,
    "invalid_request",
    "request_too_large",
    "invalid_signature",
    "expired_signature",
    "deployment_not_found",
    "chain_unavailable",
    "transaction_failed",
)


def get_relay(runtime: RuntimeDep, deployment: DeploymentDep) -> GaslessRelay:
    """The relay on the app's chain: ChainError (503) while the chain is unreachable or not the deployment's."""
    chain = runtime.chain
    if chain is None:
        raise ChainError("the chain is not reachable; gasless actions wait until it is (see /readyz)")
    if chain.chain_id != deployment.chain_id:
        raise ChainError(f"connected to chain {chain.chain_id}, the deployment is on chain {deployment.chain_id}")
    return GaslessRelay(chain, deployment)


Relay = Annotated[GaslessRelay, Depends(get_relay)]


@router.get("/nonce", responses=responses(*WALLET_PROBLEMS, "deployment_not_found", "chain_unavailable"))
def get_nonce(wallet: Wallet, relay: Relay) -> NoncesOut:
    """The nonces and EIP-712 domains the wallet's next Grant, Revoke, Link, Claim and Permit (transfer) signatures
    must carry."""
    return NoncesOut(
        wallet=checksummed(wallet.address),
        nonce=relay.registry_nonce(wallet.address),
        claim_nonce=relay.escrow_nonce(wallet.address),
        permit_nonce=relay.permit_nonce(wallet.address),
        domain=DomainOut.of(relay.registry_domain),
        claim_domain=DomainOut.of(relay.escrow_domain),
        permit_domain=DomainOut.of(relay.token_domain),
        permit_spender=checksummed(relay.relayer.address),
    )


@router.post("/grant", status_code=202, responses=responses(*RELAY_PROBLEMS, "invalid_expiry", "invalid_brand"))
def post_grant(body: GrantIn, wallet: Wallet, relay: Relay) -> RelayedOut:
    """Relays the wallet's signed Grant (grantBySig); the consent shows in GET /v1/consents once indexed."""
    relayed = relay.grant(
        wallet.address, body.brand, mask_of(body.purposes), body.expires_at, body.deadline, _bytes(body.signature)
    )
    return RelayedOut.of(relayed)


@router.post("/revoke", status_code=202, responses=responses(*RELAY_PROBLEMS, "invalid_purposes"))
def post_revoke(body: RevokeIn, wallet: Wallet, relay: Relay) -> RelayedOut:
    """Relays the wallet's signed Revoke (revokeBySig), effective in the block that mines it."""
    relayed = relay.revoke(wallet.address, body.brand, mask_of(body.purposes), body.deadline, _bytes(body.signature))
    return RelayedOut.of(relayed)


@router.get("", responses=responses(*WALLET_PROBLEMS, "deployment_not_found"))
def get_consents(wallet: Wallet, session: SessionDep, deployment: DeploymentDep) -> list[ConsentOut]:
    """The wallet's current consent per brand, as indexed, with its expiry and the log that set it."""
    consents = consumer.consents_of(
        session, chain_id=deployment.chain_id, registry=deployment.registry, wallet=wallet.address
    )
    now = int(time.time())
    return [ConsentOut.of(consent, now) for consent in consents]


@router.get("/receipts", responses=responses(*WALLET_PROBLEMS, "deployment_not_found"))
def get_receipts(wallet: Wallet, session: SessionDep, deployment: DeploymentDep) -> list[ConsentReceiptOut]:
    """Every grant and revoke the wallet made, oldest first: brand, purposes, expiry, block, tx hash, time."""
    receipts = consumer.consent_receipts(
        session, chain_id=deployment.chain_id, registry=deployment.registry, wallet=wallet.address
    )
    return [ConsentReceiptOut.of(receipt) for receipt in receipts]


def _bytes(signature: str) -> bytes:
    return bytes.fromhex(signature[2:])  # the schema checked it is 0x + 130 hex digits
