"""``ApiClient``: a consumer wallet's side of the adledger HTTP API, over httpx.

It signs in with Sign-In with Ethereum (EIP-4361) and keeps the session token in a ``SessionCache`` until it
expires; an answer of 401 ``invalid_session`` (the token was revoked, or the server's database was reset) makes it
sign in once more and repeat the request, which the server refused before doing anything. Nothing else is
retried: a relayed action (grant, revoke, claim, transfer) sends a transaction, so repeating one whose answer was
lost could act twice or fail on its spent nonce. Every signature asks the API for the current nonces and EIP-712
domains first (GET /v1/consents/nonce) and is made by ``wallet.Wallet``.

The wallet is decrypted only when a signature is needed (``LockedWallet``): a read with a cached session needs no
password. Deadlines count from the chain's clock when ``rpc_url`` names a node that answers (``wallet.chain_clock``:
a devnet runs ahead of the wall clock), else from the wall clock.

Errors are ``WalletError``s: the API's problem+json as ``ApiProblem`` (its ``code``, ``detail`` and ``help``), a
network failure as ``ApiUnreachable``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from ledger import siwe
from wallet import chain_clock
from wallet.address import checksummed
from wallet.errors import ApiDomainMismatch, ApiProblem, ApiUnreachable, WalletError
from wallet.models import Consent, ConsentReceipt, IssuedNonce, Link, Nonces, Relayed, Reward, RewardPage, Rewards
from wallet.models import Session as SessionAnswer
from wallet.purposes import mask_of
from wallet.sessions import SessionCache
from wallet.wallet import Wallet

DEFAULT_API = "http://127.0.0.1:8000"
STATEMENT = "Sign in to adledger."
# a signature is void an hour after it is made: long enough for a slow relay, short enough that a leaked one lapses
DEADLINE_SECONDS = 3600
# relayed actions answer once their transaction is mined; a devnet mines at once, a public chain in seconds
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
HISTORY_PAGE = 500  # the API's largest page
CLAIM_MAX_CAMPAIGNS = 100  # the API's ClaimIn limit
PROBLEM_JSON = "application/problem+json"
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443}

T = TypeVar("T")


class LockedWallet:
    """A stored wallet by its address, decrypted by ``unlock`` on first use (asking for its password then)."""

    def __init__(self, address: str, unlock: Callable[[], Wallet]) -> None:
        self.address = checksummed(address)
        self._unlock = unlock
        self._wallet: Wallet | None = None

    def __repr__(self) -> str:
        return f"LockedWallet({self.address})"

    def unlock(self) -> Wallet:
        if self._wallet is None:
            wallet = self._unlock()
            if wallet.address != self.address:
                raise WalletError(f"unlocking {self.address} gave the key of {wallet.address}")
            self._wallet = wallet
        return self._wallet


class ApiClient:
    """One wallet's calls to the API at ``base_url`` (``http://127.0.0.1:8000`` under ``make run``).

    ``sessions`` keeps the session token between processes (``SessionCache.in_dir(wallet dir)``); without it the
    client signs in once per instance. ``rpc_url``, a JSON-RPC node of the API's chain, gives the chain's clock.
    ``transport`` is httpx's, for a server in the same process."""

    def __init__(
        self,
        base_url: str,
        wallet: Wallet | LockedWallet,
        sessions: SessionCache | None = None,
        *,
        rpc_url: str | None = None,
        timeout: httpx.Timeout | float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = httpx.URL(self.base_url) if self.base_url.startswith(("http://", "https://")) else None
        if url is None or not url.host:
            raise ApiUnreachable(base_url, "not an http:// or https:// URL")
        self._url = url
        self._wallet = wallet
        self._sessions = sessions
        self.rpc_url = rpc_url
        self._token: str | None = None
        self._chain_ahead: int | None = None  # seconds the chain's clock runs ahead of this machine's
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def address(self) -> str:
        return self._wallet.address

    # -- session ------------------------------------------------------------------------------------------

    def sign_in(self) -> SessionAnswer:
        """Signs in anew (a fresh nonce, an EIP-4361 message signed by the wallet) and caches the session."""
        issued = self._parse(IssuedNonce, self._send("POST", "/v1/auth/nonce"))
        if not _same_site(issued.domain, self._url):
            raise ApiDomainMismatch(self.base_url, issued.domain)
        wallet = self._signer()
        message = siwe.SiweMessage(
            domain=issued.domain,
            address=wallet.address,
            statement=STATEMENT,
            uri=f"{self.base_url}/v1/auth/siwe",
            version=siwe.VERSION,
            chain_id=issued.chain_id,
            nonce=issued.nonce,
            issued_at=siwe.format_datetime(datetime.now(UTC)),
        )
        body = {"message": message.prepare(), "signature": wallet.sign_in(message)}
        session = self._parse(SessionAnswer, self._send("POST", "/v1/auth/siwe", json=body))
        if checksummed(session.address) != wallet.address:
            raise _unexpected(200, f"the API signed in {session.address}, not {wallet.address}")
        self._token = session.token
        if self._sessions is not None:
            self._sessions.put(self.base_url, wallet.address, session.token, session.expires_at)
        return session

    # -- reads --------------------------------------------------------------------------------------------

    def now(self, chain_id: int | None = None) -> int:
        """Unix seconds by the later of the wall clock and the chain's (read once per client, from ``rpc_url``):
        what a deadline or a consent's expiry counts from."""
        if self._chain_ahead is None:
            on_chain = None
            if self.rpc_url is not None:
                chain_id = self.nonces().domain.chainId if chain_id is None else chain_id
                on_chain = chain_clock.chain_time(self.rpc_url, chain_id)
            self._chain_ahead = 0 if on_chain is None else max(0, on_chain - int(time.time()))
        return int(time.time()) + self._chain_ahead

    def nonces(self) -> Nonces:
        """The nonces and EIP-712 domains the wallet's next signatures must carry."""
        nonces = self._parse(Nonces, self._call("GET", "/v1/consents/nonce"))
        if checksummed(nonces.wallet) != self.address:
            raise _unexpected(200, f"the session belongs to {nonces.wallet}, not {self.address}")
        return nonces

    def consents(self) -> list[Consent]:
        """The wallet's current consent per brand, as the API indexed it from the chain."""
        return self._parse(list[Consent], self._call("GET", "/v1/consents"))

    def consent_receipts(self) -> list[ConsentReceipt]:
        """Every grant and revoke the wallet made, oldest first."""
        return self._parse(list[ConsentReceipt], self._call("GET", "/v1/consents/receipts"))

    def links(self) -> list[Link]:
        return self._parse(list[Link], self._call("GET", "/v1/links"))

    def rewards(self) -> Rewards:
        """Per campaign: accrued, claimed, claimable, and each refused engagement with the chain's reason."""
        return self._parse(Rewards, self._call("GET", "/v1/rewards"))

    def reward_history(self, limit: int | None = None) -> list[Reward]:
        """Rewards paid to the wallet, newest first: ``limit`` of them, or all, following the pages' cursors."""
        rewards: list[Reward] = []
        cursor: str | None = None
        while limit is None or len(rewards) < limit:
            size = HISTORY_PAGE if limit is None else min(HISTORY_PAGE, limit - len(rewards))
            params: dict[str, Any] = {"limit": size} | ({"cursor": cursor} if cursor else {})
            page = self._parse(RewardPage, self._call("GET", "/v1/rewards/history", params=params))
            rewards.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        return rewards

    # -- signed actions -----------------------------------------------------------------------------------

    def grant(self, brand: str, purposes: Sequence[str], expires_at: int, *, deadline: int | None = None) -> Relayed:
        """Grants ``purposes`` (names: ``ads``, ``email`` ...) to ``brand`` until ``expires_at``, gaslessly."""
        brand, names = checksummed(brand), list(purposes)
        nonces = self.nonces()
        deadline = deadline or self._deadline(nonces)
        signature = self._signer().sign_consent(
            nonces.domain.domain(), brand, mask_of(names), expires_at, nonces.nonce, deadline
        )
        body = {"brand": brand, "purposes": names, "expires_at": expires_at, "deadline": deadline}
        return self._parse(Relayed, self._call("POST", "/v1/consents/grant", json=body | {"signature": signature}))

    def revoke(self, brand: str, purposes: Sequence[str], *, deadline: int | None = None) -> Relayed:
        """Withdraws ``purposes`` from ``brand``, gaslessly; effective in the block that mines it."""
        brand, names = checksummed(brand), list(purposes)
        nonces = self.nonces()
        deadline = deadline or self._deadline(nonces)
        signature = self._signer().sign_revoke(nonces.domain.domain(), brand, mask_of(names), nonces.nonce, deadline)
        body = {"brand": brand, "purposes": names, "deadline": deadline, "signature": signature}
        return self._parse(Relayed, self._call("POST", "/v1/consents/revoke", json=body))

    def link(self, customer_id: int, brand: str, *, deadline: int | None = None) -> Link:
        """Links the wallet to the brand's customer record ``customer_id`` (the id the brand gave the customer)."""
        brand = checksummed(brand)
        nonces = self.nonces()
        deadline = deadline or self._deadline(nonces)
        nonce = secrets.randbits(256)  # any unused uint256: the CRM, not a contract, remembers spent ones
        signature = self._signer().sign_link(nonces.domain.domain(), customer_id, brand, nonce, deadline)
        body = {"customer_id": customer_id, "brand": brand, "nonce": str(nonce), "deadline": deadline}
        return self._parse(Link, self._call("POST", "/v1/links", json=body | {"signature": signature}))

    def claim(self, campaign_ids: Sequence[int], to: str | None = None, *, deadline: int | None = None) -> Relayed:
        """Claims the wallet's accruals in ``campaign_ids`` (at most 100), paid to ``to`` (default: the wallet)."""
        ids = list(campaign_ids)
        recipient = checksummed(to) if to else self.address
        nonces = self.nonces()
        deadline = deadline or self._deadline(nonces)
        domain = nonces.claim_domain.domain()
        signature = self._signer().sign_claim(domain, ids, recipient, nonces.claim_nonce, deadline)
        body = {"campaign_ids": ids, "to": recipient, "deadline": deadline, "signature": signature}
        return self._parse(Relayed, self._call("POST", "/v1/claims", json=body))

    def transfer(self, to: str, value: int, *, deadline: int | None = None) -> Relayed:
        """Sends ``value`` base units of the reward token to ``to``, gaslessly: the wallet signs a Permit for the
        API's relayer, which moves exactly ``value``."""
        recipient = checksummed(to)
        nonces = self.nonces()
        deadline = deadline or self._deadline(nonces)
        signature = self._signer().sign_permit(
            nonces.permit_domain.domain(), nonces.permit_spender, value, nonces.permit_nonce, deadline
        )
        body = {"to": recipient, "value": str(value), "deadline": deadline, "signature": signature}
        return self._parse(Relayed, self._call("POST", "/v1/transfers", json=body))

    # -- plumbing -----------------------------------------------------------------------------------------

    def _deadline(self, nonces: Nonces) -> int:
        return self.now(nonces.domain.chainId) + DEADLINE_SECONDS

    def _signer(self) -> Wallet:
        return self._wallet if isinstance(self._wallet, Wallet) else self._wallet.unlock()

    def _session_token(self) -> str:
        if self._token is None and self._sessions is not None:
            self._token = self._sessions.get(self.base_url, self.address)
        if self._token is None:
            self.sign_in()
        assert self._token is not None
        return self._token

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request with the session; signs in again once if the API no longer knows the session."""
        response = self._send(method, path, headers=_bearer(self._session_token()), **kwargs)
        if response.status_code == 401 and _problem_code(response) == "invalid_session":
            self._token = None
            if self._sessions is not None:
                self._sessions.drop(self.base_url, self.address)
            response = self._send(method, path, headers=_bearer(self._session_token()), **kwargs)
        return response

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.RequestError as exc:
            # connecting failed: the request never left; anything later: it may have arrived and acted
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            reason = str(exc) or type(exc).__name__
            raise ApiUnreachable(self.base_url, reason, sent=method != "GET" and not unsent) from None

    def _parse(self, shape: type[T], response: httpx.Response) -> T:
        """The answer's body as ``shape``; an error answer raises ApiProblem."""
        if response.is_success:
            try:
                return TypeAdapter(shape).validate_json(response.content)
            except ValidationError as exc:
                where = f"{response.request.method} {response.request.url.path}"
                detail = f"the answer to {where} is not what the wallet reads: {exc}"
                raise _unexpected(response.status_code, detail) from None
        raise _problem(response)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem_body(response: httpx.Response) -> dict[str, Any] | None:
    if response.headers.get("content-type", "").split(";")[0].strip() != PROBLEM_JSON:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and isinstance(body.get("code"), str) else None


def _problem_code(response: httpx.Response) -> str | None:
    body = _problem_body(response)
    return None if body is None else str(body["code"])


def _problem(response: httpx.Response) -> ApiProblem:
    body = _problem_body(response)
    if body is None:
        text = " ".join(response.text.split())[:200] or "(empty)"
        return _unexpected(response.status_code, f"HTTP {response.status_code} without a problem body: {text}")
    help_text = body.get("help") if isinstance(body.get("help"), str) else None
    detail = str(body.get("detail") or body.get("title") or body["code"])
    return ApiProblem(body["code"], response.status_code, detail, help_text, body)


def _unexpected(status: int, detail: str) -> ApiProblem:
    return ApiProblem("unexpected_answer", status, detail, "is --api the adledger API, of a version this wallet reads?")


def _same_site(domain: str, api: httpx.URL) -> bool:
    """Whether a sign-in for ``domain`` (host[:port]) is a sign-in to the API at ``api``: the same host and port,
    counting localhost, 127.0.0.1 and ::1 as one host (``make run`` names localhost, clients use 127.0.0.1)."""
    try:
        named = httpx.URL(f"{api.scheme}://{domain}")
    except httpx.InvalidURL:
        return False
    if named.path not in ("", "/") or named.query or named.userinfo:
        return False
    default = DEFAULT_PORTS.get(api.scheme)
    if (named.port or default) != (api.port or default):
        return False
    return named.host == api.host or (named.host in LOOPBACK and api.host in LOOPBACK)
