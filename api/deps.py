"""Named dependencies: the settings, a database session per request, the deployment, the metrics, and who calls.

Principals: ``Attester`` (an API key, as ``Authorization: Bearer adl_…`` or ``X-API-Key: adl_…``) and ``Wallet``
(a signed-in session, ``Authorization: Bearer adls_…``). Resolving one reads the database through ``ledger.auth``;
a missing or dead credential is a ``LedgerError`` (401), answered by ``api.problems``. Each principal is also
rate-limited (``api.limits``): per API key and per wallet, once the credential is known good; the sign-in routes,
which have no principal, take ``SignInLimit`` (per client IP), and the public reads ``PublicLimit`` (per client
IP). Past a limit the answer is 429 ``rate_limited``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from api.limits import RateLimits
from api.metrics import Metrics
from ledger.auth import api_keys, sessions
from ledger.auth.api_keys import AttesterCaller
from ledger.auth.sessions import WalletCaller
from ledger.chain import Chain
from ledger.db import writer_sessions
from ledger.errors import ChainError, CredentialsRequired, DeploymentNotFound
from ledger.settings import Settings
from ledger.suite import Deployment

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="A wallet's session token (`adls_…`, from POST /v1/auth/siwe) or an attester's API key (`adl_…`).",
)
_api_key = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKey", description="An attester's API key (`adl_…`)."
)


@dataclass(frozen=True)
class Runtime:
    """What the app's lifespan builds: the database's sessions, the deployment manifest (None when there is none:
    the app still starts, and /readyz says why it is not ready) and the chain (None when unreachable)."""

    sessions: sessionmaker[Session] | None = None
    deployment: Deployment | None = None
    chain: Chain | None = None

    @cached_property
    def write_sessions(self) -> sessionmaker[Session] | None:
        """``sessions`` whose transactions begin with the main SQLite file's write lock (ledger.db.writer_sessions)."""
        return None if self.sessions is None else writer_sessions(self.sessions)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed (rolled back unless committed) afterwards. In a request that may write, the
    transaction begins with SQLite's write lock, of the main file (engagement intake takes the outbox file's
    instead, ledger.settlement.outbox): a deferred transaction that read before another writer committed could
    not write afterwards. It begins at the route's first statement, not here: every writer of that file waits
    for the lock, so parsing and checking a request (credentials included, which read through their own short
    session) must not hold it. PostgreSQL ignores the option."""
    with _sessions(request, write=request.method not in READ_METHODS)() as session:
        yield session


def _sessions(request: Request, *, write: bool = False) -> sessionmaker[Session]:
    """The app's sessions (``write``: those that begin with the write lock)."""
    runtime = get_runtime(request)
    factory = runtime.write_sessions if write else runtime.sessions
    if factory is None:
        raise RuntimeError("the app's lifespan has not run: serve it with uvicorn, or enter its lifespan in tests")
    return factory


def get_deployment(request: Request) -> Deployment:
    """The manifest read at startup; DeploymentNotFound (503) when there was none."""
    deployment = get_runtime(request).deployment
    if deployment is None:
        raise DeploymentNotFound(f"no deployment manifest at {request.app.state.settings.deployment_file}")
    return deployment


def get_chain(request: Request) -> Chain:
    """The chain connected at startup; ChainError (503 chain_unavailable) when it could not be reached."""
    chain = get_runtime(request).chain
    if chain is None:
        raise ChainError(f"the chain {request.app.state.settings.chain} was not reachable when the API started")
    return chain


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


_limits_made = threading.Lock()


def get_rate_limits(request: Request) -> RateLimits:
    """The app's rate limiters, made from its settings on first use and shared by all its requests (a test may set
    ``app.state.rate_limits`` first, on a fake clock)."""
    state = request.app.state
    limits: RateLimits | None = getattr(state, "rate_limits", None)
    if limits is None:
        with _limits_made:
            limits = getattr(state, "rate_limits", None)
            if limits is None:
                limits = state.rate_limits = RateLimits.of(get_settings(request))
    return limits


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
DeploymentDep = Annotated[Deployment, Depends(get_deployment)]
ChainDep = Annotated[Chain, Depends(get_chain)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]


def authenticate_attester(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> AttesterCaller:
    key = api_key or (bearer.credentials if bearer is not None else None)
    if not key:
        raise CredentialsRequired("this route needs an attester's API key")
    with _sessions(request)() as session:  # closed before the route's own transaction begins
        return api_keys.caller_of(session, key)


def authenticate_wallet(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> WalletCaller:
    if bearer is None:
        raise CredentialsRequired("this route needs a wallet's session token (sign in with POST /v1/auth/siwe)")
    with _sessions(request)() as session:  # closed before the route's own transaction begins
        return sessions.caller_of(session, bearer.credentials)


def get_attester(
    caller: Annotated[AttesterCaller, Depends(authenticate_attester)], limits: RateLimitsDep
) -> AttesterCaller:
    """The calling attester, within its API key's rate limit."""
    limits.attester.check(caller.key_id)
    return caller


def get_wallet(caller: Annotated[WalletCaller, Depends(authenticate_wallet)], limits: RateLimitsDep) -> WalletCaller:
    """The signed-in wallet, within its rate limit (all its sessions share it)."""
    limits.wallet.check(caller.address)
    return caller


def limit_sign_in(request: Request, limits: RateLimitsDep) -> None:
    """The sign-in routes' limit, per client IP (behind a proxy, run uvicorn with --proxy-headers so it is the
    client's, not the proxy's)."""
    limits.sign_in.check(request.client.host if request.client else "")


def limit_public(request: Request, limits: RateLimitsDep) -> None:
    """The public (auditor) reads' limit, per client IP: anyone may read, nobody may flood."""
    limits.public.check(request.client.host if request.client else "")


Attester = Annotated[AttesterCaller, Depends(get_attester)]
Wallet = Annotated[WalletCaller, Depends(get_wallet)]
SignInLimit = Depends(limit_sign_in)  # for a route's dependencies=[…]
PublicLimit = Depends(limit_public)
