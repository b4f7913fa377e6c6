"""The FastAPI application: ``create_app(settings)``, run by ``adledger serve`` (uvicorn).

The lifespan migrates the database to head, opens its session factory, reads the deployment manifest and
connects the chain. Only the database is required: without a manifest or a chain the app still starts, /healthz
answers, /readyz says what is missing, and the routes that need the deployment answer 503 deployment_not_found.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from api import problems
from api.deps import Runtime
from api.limits import BodySizeLimit
from api.metrics import Metrics, RequestMetrics
from api.routers import (
    audit,
    auth,
    campaigns,
    consents,
    conversions,
    customers,
    engagements,
    health,
    links,
    marketer_campaigns,
    rewards,
    transfers,
)
from ledger.chain import Chain, connect
from ledger.db import create_engine_for, session_factory, upgrade
from ledger.errors import DeploymentNotFound, LedgerError
from ledger.settings import Settings
from ledger.suite import Deployment

log = logging.getLogger(__name__)

API_VERSION = "1"  # the routes are under /v1 (api.routers.V1)
DESCRIPTION = """\
Consent-based incentive and ad-attribution ledger: marketers fund reward campaigns in escrow on an EVM chain,
attesters report engagements, consumers are paid on chain, and every figure is traceable to the chain's logs.

**Callers.** Wallets (marketers, consumers) sign in with Sign-In with Ethereum (`POST /v1/auth/nonce`, then
`POST /v1/auth/siwe`) and send `Authorization: Bearer <session token>`. Attesters send an API key issued by the
campaign's marketer, as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Auditors need nothing: the
`/v1/audit` routes are public reads of chain-derived figures (no customer data), limited per client IP.

**Errors** are RFC 9457 `application/problem+json` bodies with a stable `code`; each route lists its codes.
**Amounts** are decimal strings of token base units; times are unix seconds or RFC 3339.
"""


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; nothing is opened until its lifespan starts."""
    app = FastAPI(
        title="adledger",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=_lifespan,
        dependencies=[Depends(problems.reject_unknown_query)],
    )
    app.state.settings = settings
    app.state.runtime = Runtime()
    app.state.metrics = Metrics(lambda: app.state.runtime.sessions)
    problems.install(app)
    # the last added runs first: time every request, including those refused for their size
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    for router in (
        health.router,
        auth.router,
        campaigns.router,
        marketer_campaigns.router,
        engagements.router,
        consents.router,
        links.router,
        rewards.router,
        transfers.router,
        customers.router,
        conversions.router,
        audit.router,
    ):
        app.include_router(router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    with ExitStack() as stack:
        engine = create_engine_for(settings)
        stack.callback(engine.dispose)
        await run_in_threadpool(upgrade, engine)
        app.state.runtime = Runtime(
            sessions=session_factory(engine), deployment=_deployment(settings), chain=_chain(stack, settings)
        )
        try:
            yield
        finally:
            app.state.runtime = Runtime()


def _deployment(settings: Settings) -> Deployment | None:
    try:
        return Deployment.load(settings.deployment_file)
    except DeploymentNotFound as exc:
        log.warning("%s: routes that need the deployment answer 503 until it exists and the API restarts", exc)
        return None


def _chain(stack: ExitStack, settings: Settings) -> Chain | None:
    """The chain, or None (logged) when it cannot be reached now; /readyz then reports it."""
    try:
        return stack.enter_context(connect(settings))
    except (LedgerError, OSError) as exc:
        log.warning("chain %s not reachable: %s", settings.chain, exc)
        return None
