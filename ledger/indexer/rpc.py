"""Raw JSON-RPC for the indexer: one HTTP session per thread, orjson parsing, retries with backoff.

The indexer reads pages of thousands of logs; web3's request path (result formatters, the stdlib json parser)
costs several times the node's own answer on such pages (TOOLCHAIN.md, bench index). Over HTTP this client
posts the request itself and parses with orjson; any other provider goes through web3's ``make_request``,
serialised by a lock since those providers are not thread-safe. The indexer needs a JSON-RPC node (anvil, a URL):
eth-tester's in-process provider takes and answers Python values, not JSON-RPC hex. A client may be shared by
threads (requests' sessions are not thread-safe), hence a ``requests.Session`` per thread.

Transient failures (connection refused or dropped, timeouts, HTTP 429 and 5xx, JSON-RPC "rate limit" answers)
are retried with exponential backoff; what still fails surfaces as a ChainError.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from web3 import HTTPProvider
from web3.types import RPCEndpoint

from ledger.chain import Chain
from ledger.errors import ChainError

# How nodes say "slow down": checked first, since a rate limit can share -32005 and "limit exceeded" with a
# too-large answer (Infura: -32005 "daily request count exceeded, request rate limited").
_RATE_LIMITED = ("rate limit", "rate exceeded", "too many requests")
# Other ways of saying "not now": retry the same request after a pause.
_TRANSIENT = ("temporarily unavailable", "try again")
# How nodes say a log query is too large (geth, erigon, besu, alchemy, infura, quicknode): shrink the range.
_TOO_LARGE = (
    "query returned more than",
    "too many results",
    "response size",
    "block range",
    "range is too large",
    "limit exceeded",
    "query timeout",
)


class _TransientAnswer(Exception):
    """An HTTP answer that means "try again" (429, 5xx)."""


@dataclass
class RpcClient:
    """JSON-RPC requests to ``chain``'s node with retries; returns the whole answer (``result`` or ``error``)."""

    chain: Chain
    retries: int = 5
    backoff: float = 0.2  # seconds, doubled each retry
    timeout: float = 30.0  # seconds per HTTP request
    sleep: Callable[[float], None] = time.sleep
    _local: threading.local = field(default_factory=threading.local, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """One call, retried on transport errors and transient answers; an error answer is returned as is."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._send(method, params)
            except (OSError, ValueError, _TransientAnswer) as exc:  # requests' errors are OSErrors; bad JSON
                if last:
                    raise ChainError(f"{method} failed after {self.retries + 1} attempts: {exc}") from exc
            else:
                error = response.get("error")
                if not (error and is_transient(error)) or last:
                    return response
            self.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def result(self, method: str, params: list[Any]) -> Any:
        """The call's ``result``; an error answer raises ChainError."""
        response = self.request(method, params)
        if "error" in response:
            raise ChainError(f"{method} answered an error: {response['error']}")
        return response["result"]

    def _send(self, method: str, params: list[Any]) -> dict[str, Any]:
        provider = self.chain.w3.provider
        if not isinstance(provider, HTTPProvider):
            with self._lock:
                return dict(provider.make_request(RPCEndpoint(method), params))
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        body = orjson.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        answer = session.post(
            str(provider.endpoint_uri),
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=self.timeout,
        )
        if answer.status_code == 429 or answer.status_code >= 500:
            raise _TransientAnswer(f"HTTP {answer.status_code}")
        parsed = orjson.loads(answer.content)
        if not isinstance(parsed, dict):
            raise ValueError(f"{method}: a JSON-RPC answer must be an object, got {type(parsed).__name__}")
        return parsed


def _message(error: Any) -> str:
    return str(error.get("message", error) if isinstance(error, dict) else error).lower()


def _rate_limited(error: Any) -> bool:
    code = error.get("code") if isinstance(error, dict) else None
    return code == 429 or any(phrase in _message(error) for phrase in _RATE_LIMITED)


def is_too_large(error: Any) -> bool:
    """Whether an eth_getLogs error answer says the range or result is too large (and not "slow down")."""
    if _rate_limited(error):
        return False
    code = error.get("code") if isinstance(error, dict) else None
    return code == -32005 or any(phrase in _message(error) for phrase in _TOO_LARGE)


def is_transient(error: Any) -> bool:
    """Whether an error answer says "not now" (rate limits), as opposed to a refusal or a real error."""
    if _rate_limited(error):
        return True
    return not is_too_large(error) and any(phrase in _message(error) for phrase in _TRANSIENT)
