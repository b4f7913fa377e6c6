"""Sign-In with Ethereum (EIP-4361): a nonce, a signed message in exchange for a session token, and logout."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from api.deps import DeploymentDep, SessionDep, SettingsDep, SignInLimit, Wallet
from api.problems import responses
from api.routers import V1
from api.schemas.auth import NonceOut, SessionOut, SiweIn
from ledger.auth import sessions

router = APIRouter(prefix=f"{V1}/auth", tags=["auth"])

SIGN_IN_PROBLEMS = (
    "invalid_request",
    "request_too_large",
    "siwe_malformed",
    "siwe_invalid_signature",
    "siwe_domain_mismatch",
    "siwe_chain_mismatch",
    "siwe_issued_in_future",
    "siwe_expired",
    "siwe_not_yet_valid",
    "siwe_nonce_used",
    "deployment_not_found",
    "rate_limited",
)


@router.post(
    "/nonce", status_code=201, dependencies=[SignInLimit], responses=responses("deployment_not_found", "rate_limited")
)
def issue_nonce(session: SessionDep, settings: SettingsDep, deployment: DeploymentDep) -> NonceOut:
    """A single-use sign-in nonce, with the domain and chain id the signed message must name."""
    issued = sessions.issue_nonce(session, ttl=timedelta(seconds=settings.siwe_nonce_ttl))
    session.commit()
    return NonceOut(
        nonce=issued.nonce, expires_at=issued.expires_at, domain=settings.api_domain, chain_id=deployment.chain_id
    )


@router.post("/siwe", dependencies=[SignInLimit], responses=responses(*SIGN_IN_PROBLEMS))
def sign_in(body: SiweIn, session: SessionDep, settings: SettingsDep, deployment: DeploymentDep) -> SessionOut:
    """Exchange a wallet-signed EIP-4361 message for a short-lived session token (its nonce is spent)."""
    signed = sessions.sign_in(
        session,
        body.message,
        body.signature,
        domain=settings.api_domain,
        chain_id=deployment.chain_id,
        ttl=timedelta(seconds=settings.session_ttl),
    )
    session.commit()
    return SessionOut(token=signed.token, address=signed.address, expires_at=signed.expires_at)


@router.post("/logout", status_code=204, responses=responses("credentials_required", "invalid_session"))
def logout(wallet: Wallet, session: SessionDep) -> Response:
    """End the caller's session: its token stops working at once."""
    sessions.sign_out(session, wallet)
    session.commit()
    return Response(status_code=204)
