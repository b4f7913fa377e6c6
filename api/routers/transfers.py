"""A consumer gives reward tokens to another wallet without holding gas: the wallet signs a token Permit for the
relayer, which sends ``permit`` and ``transferFrom`` (``ledger.gasless.GaslessRelay.transfer``)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Wallet
from api.problems import responses
from api.routers import V1
from api.routers.consents import RELAY_PROBLEMS, Relay
from api.schemas.consumers import RelayedOut, TransferIn

router = APIRouter(prefix=V1, tags=["consumers"])


@router.post(
    "/transfers", status_code=202, responses=responses(*RELAY_PROBLEMS, "invalid_recipient", "insufficient_balance")
)
def post_transfer(body: TransferIn, wallet: Wallet, relay: Relay) -> RelayedOut:
    """Relays the wallet's signed Permit, then moves exactly ``value`` to ``to``; gas is the service's."""
    relayed = relay.transfer(wallet.address, body.to, int(body.value), body.deadline, bytes.fromhex(body.signature[2:]))
    return RelayedOut.of(relayed)
