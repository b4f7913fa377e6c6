"""Limits enforced before a request reaches its route: the body size, and request rates per caller.

``BodySizeLimit`` is plain ASGI, so it refuses before anything parses the body: at once when Content-Length
declares too much, and while streaming when a body without one (chunked) passes the limit. In that case it stops
feeding the app (a disconnect), drops whatever the app answers to that, and answers 413 itself.

``RateLimiter`` is an in-process token bucket per key: each key's bucket refills at ``rate`` requests a second up to
``burst``; a request takes one token, or is refused with ``RateLimited`` (429, ``Retry-After``) and takes none.
``RateLimits`` holds the app's four, from its settings: per attester API key, per signed-in wallet, and per client
IP for the sign-in routes and for the public reads; ``api.deps`` applies them. A bucket left alone until it is full
again is the same as no bucket, so it is dropped: memory holds only the keys seen in the last ``burst / rate``
seconds (and never more than ``max_keys``). The limits are per process: behind several workers, each allows the rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem
from ledger.errors import RateLimited
from ledger.settings import Settings

Clock = Callable[[], float]
_EPSILON = 1e-9  # a bucket refilled to 0.999999999… by float arithmetic holds a token


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            "request_too_large",
            f"the request body is larger than {self.max_bytes} bytes",
            limit=self.max_bytes,
            help="send less per request (engagements: split them over several calls)",
        )
        response.headers["Connection"] = "close"  # the unread rest of the body cannot be skipped reliably
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class RateLimiter:
    """Token buckets per key, ``rate`` tokens a second up to ``burst``; thread-safe (sync routes run in threads).

    ``per`` names the key in the 429 (``api_key``, ``wallet``, ``client_ip``); ``clock`` is monotonic seconds."""

    def __init__(
        self, per: str, rate: float, burst: int, *, clock: Clock = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError(
                f"a rate limit needs rate > 0, burst >= 1 and max_keys >= 1, not {rate}, {burst}, {max_keys}"
            )
        self.per = per
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._idle = burst / rate  # untouched this long, a bucket is full again
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # tokens, when; oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The buckets kept now."""
        with self._lock:
            return len(self._buckets)

    def take(self, key: Hashable) -> float:
        """Takes a token from ``key``'s bucket: 0.0 if it had one, else the seconds until it has (none taken)."""
        with self._lock:
            now = self._clock()
            self._evict(now)
            tokens, when = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - when) * self.rate)
            wait = 0.0 if tokens >= 1 - _EPSILON else (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1 if wait == 0.0 else tokens, now)  # now the most recently touched
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # the least recently touched: it only starts full again
            return wait

    def check(self, key: Hashable) -> None:
        """Takes a token, or raises RateLimited with the whole seconds (at least 1) until one is there."""
        wait = self.take(key)
        if wait > 0:
            raise RateLimited(self.per, max(1, math.ceil(wait)))

    def _evict(self, now: float) -> None:
        """Drops the buckets idle long enough to be full: the order is by last touch, so they are at the front."""
        while self._buckets:
            key, (_, when) = next(iter(self._buckets.items()))
            if now - when < self._idle:
                return
            del self._buckets[key]


@dataclass(frozen=True)
class RateLimits:
    """The app's rate limits: per attester API key id, per signed-in wallet address, per client IP signing in,
    and per client IP reading the public (auditor) routes."""

    attester: RateLimiter
    wallet: RateLimiter
    sign_in: RateLimiter
    public: RateLimiter

    @classmethod
    def of(cls, settings: Settings, clock: Clock = time.monotonic) -> RateLimits:
        return cls(
            attester=RateLimiter("api_key", settings.rate_attester, settings.burst_attester, clock=clock),
            wallet=RateLimiter("wallet", settings.rate_wallet, settings.burst_wallet, clock=clock),
            sign_in=RateLimiter("client_ip", settings.rate_sign_in, settings.burst_sign_in, clock=clock),
            public=RateLimiter("client_ip", settings.rate_public, settings.burst_public, clock=clock),
        )
