"""Rate limits: the token bucket on a fake clock, and over HTTP per API key, per wallet and per client IP signing in,
answered 429 rate_limited with Retry-After; and the OpenAPI document says which routes may answer so."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.app import create_app
from api.deps import get_attester, get_wallet, limit_public, limit_sign_in
from api.limits import RateLimiter, RateLimits
from ledger.errors import RateLimited
from ledger.settings import Settings
from tests.api.conftest import DOMAIN, MARKETER, OTHER, assert_problem, bearer, issue_key
from tests.api.conftest import sign_in as sign_in_as

SECOND_ATTESTER = OTHER  # campaign_1's other attester

pytestmark = pytest.mark.anyio


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class TestRateLimiter:
    def test_a_full_bucket_lets_the_burst_through_then_says_how_long_to_wait(self, clock: FakeClock):
        limiter = RateLimiter("wallet", rate=2.0, burst=3, clock=clock)
        assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert limiter.take("a") == pytest.approx(0.5)
        assert limiter.take("a") == pytest.approx(0.5)  # a refused request takes no token

    def test_tokens_refill_at_the_rate(self, clock: FakeClock):
        limiter = RateLimiter("wallet", rate=2.0, burst=3, clock=clock)
        for _ in range(3):
            limiter.take("a")
        clock.advance(0.25)
        assert limiter.take("a") == pytest.approx(0.25)
        clock.advance(0.25)
        assert limiter.take("a") == 0.0
        assert limiter.take("a") > 0

    def test_the_refill_stops_at_the_burst(self, clock: FakeClock):
        limiter = RateLimiter("wallet", rate=50.0, burst=4, clock=clock)
        limiter.take("a")
        clock.advance(3_600)
        assert [limiter.take("a") == 0.0 for _ in range(5)] == [True] * 4 + [False]

    def test_a_token_refilled_in_many_small_steps_is_whole(self, clock: FakeClock):
        limiter = RateLimiter("api_key", rate=50.0, burst=1, clock=clock)
        for _ in range(100):  # 0.02 s steps: float sums fall just short of a whole token
            assert limiter.take("a") == 0.0
            clock.advance(0.02)

    def test_keys_have_their_own_buckets(self, clock: FakeClock):
        limiter = RateLimiter("api_key", rate=1.0, burst=1, clock=clock)
        assert limiter.take(1) == 0.0
        assert limiter.take(1) > 0
        assert limiter.take(2) == 0.0

    def test_check_raises_rate_limited_with_whole_seconds_rounded_up(self, clock: FakeClock):
        limiter = RateLimiter("client_ip", rate=0.4, burst=1, clock=clock)
        limiter.check("10.0.0.1")
        with pytest.raises(RateLimited) as raised:
            limiter.check("10.0.0.1")
        assert (raised.value.code, raised.value.per, raised.value.retry_after) == ("rate_limited", "client_ip", 3)
        fast = RateLimiter("api_key", rate=1_000.0, burst=1, clock=clock)
        fast.check(1)
        with pytest.raises(RateLimited) as raised:
            fast.check(1)
        assert raised.value.retry_after == 1  # never "retry in 0 s"

    def test_a_bucket_idle_until_full_is_dropped(self, clock: FakeClock):
        limiter = RateLimiter("wallet", rate=10.0, burst=30, clock=clock)  # full again 3 s after its last request
        limiter.take("old")
        clock.advance(2.0)
        limiter.take("recent")
        assert len(limiter) == 2
        clock.advance(1.0)
        limiter.take("new")
        assert len(limiter) == 2  # "old" is gone, "recent" stays (not full yet)
        clock.advance(3.0)
        limiter.take("new")
        assert len(limiter) == 1

    def test_dropping_a_bucket_changes_no_answer(self, clock: FakeClock):
        limiter = RateLimiter("wallet", rate=1.0, burst=2, clock=clock)
        limiter.take("a")
        limiter.take("a")
        clock.advance(2.0)
        limiter.take("b")  # evicts "a", which was full again
        assert len(limiter) == 1
        assert [limiter.take("a") == 0.0 for _ in range(3)] == [True, True, False]

    def test_memory_is_bounded_by_max_keys(self, clock: FakeClock):
        limiter = RateLimiter("client_ip", rate=1.0, burst=1, clock=clock, max_keys=100)
        for n in range(1_000):
            limiter.take(n)
        assert len(limiter) == 100

    def test_threads_share_a_bucket_without_losing_a_token(self, clock: FakeClock):
        limiter = RateLimiter("api_key", rate=1.0, burst=500, clock=clock)  # the clock stands still: no refill
        granted: list[bool] = []
        lock = threading.Lock()

        def hammer() -> None:
            for _ in range(100):
                ok = limiter.take("k") == 0.0
                with lock:
                    granted.append(ok)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert granted.count(True) == 500 and len(granted) == 800

    @pytest.mark.parametrize("rate, burst", [(0.0, 1), (-1.0, 1), (1.0, 0)])
    def test_a_limit_that_lets_nothing_through_is_refused(self, rate: float, burst: int):
        with pytest.raises(ValueError):
            RateLimiter("wallet", rate=rate, burst=burst)

    def test_the_default_settings(self):
        defaults = {name: field.default for name, field in Settings.model_fields.items()}  # not the environment's
        assert (defaults["rate_attester"], defaults["burst_attester"]) == (50.0, 100)
        assert (defaults["rate_wallet"], defaults["burst_wallet"]) == (10.0, 30)
        assert (defaults["rate_sign_in"], defaults["burst_sign_in"]) == (5.0, 20)
        assert (defaults["rate_public"], defaults["burst_public"]) == (20.0, 60)


@asynccontextmanager
async def limited_app(settings: Settings, clock: FakeClock, **limits: Any) -> AsyncIterator[FastAPI]:
    """The app with these limits (the others stay out of reach), on the fake clock."""
    limited = settings.model_copy(update=limits)
    app = create_app(limited)
    app.state.rate_limits = RateLimits.of(limited, clock=clock)
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: FastAPI, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 50_000)), base_url=f"https://{DOMAIN}")


def assert_rate_limited(response: httpx.Response, per: str, retry_after: int) -> None:
    problem = assert_problem(response, 429, "rate_limited")
    assert response.headers["retry-after"] == str(retry_after)
    assert (problem["per"], problem["retry_after"]) == (per, retry_after)
    assert problem["help"]


class TestOverHttp:
    async def test_an_api_key_past_its_burst_gets_429_and_another_key_does_not(
        self, settings: Settings, clock: FakeClock, campaign_1: int
    ):
        async with limited_app(settings, clock, rate_attester=0.5, burst_attester=3) as app, client_of(app) as http:
            first = bearer((await issue_key(http))["key"])
            second = {"X-API-Key": (await issue_key(http, attester=SECOND_ATTESTER))["key"]}
            for _ in range(3):
                assert_problem(await http.get("/v1/engagements/1/1", headers=first), 404, "engagement_not_found")
            assert_rate_limited(await http.get("/v1/engagements/1/1", headers=first), "api_key", 2)
            refused = await http.post("/v1/engagements", headers=first, json={"campaign_id": 1, "engagements": []})
            assert_rate_limited(refused, "api_key", 2)
            assert_problem(await http.get("/v1/engagements/1/1", headers=second), 404, "engagement_not_found")
            clock.advance(2.0)
            assert_problem(await http.get("/v1/engagements/1/1", headers=first), 404, "engagement_not_found")

    async def test_an_invalid_key_is_401_not_429(self, settings: Settings, clock: FakeClock):
        async with limited_app(settings, clock, rate_attester=0.5, burst_attester=1) as app, client_of(app) as http:
            for _ in range(3):
                response = await http.get("/v1/engagements/1/1", headers=bearer("adl_" + "0" * 43))
                assert_problem(response, 401, "invalid_api_key")

    async def test_a_wallet_past_its_burst_gets_429_on_every_session_and_another_wallet_does_not(
        self, settings: Settings, clock: FakeClock
    ):
        async with limited_app(settings, clock, rate_wallet=1.0, burst_wallet=2) as app, client_of(app) as http:
            marketer = bearer(await sign_in_as(http, MARKETER))
            marketer_again = bearer(await sign_in_as(http, MARKETER))
            other = bearer(await sign_in_as(http, OTHER))
            assert (await http.get("/v1/links", headers=marketer)).status_code == 200
            assert (await http.get("/v1/links", headers=marketer_again)).status_code == 200
            assert_rate_limited(await http.get("/v1/links", headers=marketer), "wallet", 1)
            assert_rate_limited(await http.get("/v1/links", headers=marketer_again), "wallet", 1)
            assert (await http.get("/v1/links", headers=other)).status_code == 200
            clock.advance(1.0)
            assert (await http.get("/v1/links", headers=marketer)).status_code == 200

    async def test_signing_in_is_limited_per_client_ip(self, settings: Settings, clock: FakeClock):
        async with (
            limited_app(settings, clock, rate_sign_in=0.25, burst_sign_in=2) as app,
            client_of(app, "203.0.113.7") as http,
            client_of(app, "198.51.100.9") as elsewhere,
        ):
            assert (await http.post("/v1/auth/nonce")).status_code == 201
            assert (await http.post("/v1/auth/nonce")).status_code == 201
            assert_rate_limited(await http.post("/v1/auth/nonce"), "client_ip", 4)
            # the sign-in itself shares the bucket, and is refused before its body is validated
            assert_rate_limited(await http.post("/v1/auth/siwe", json={}), "client_ip", 4)
            assert (await elsewhere.post("/v1/auth/nonce")).status_code == 201
            clock.advance(4.0)
            assert (await http.post("/v1/auth/nonce")).status_code == 201

    async def test_public_reads_are_limited_per_client_ip(self, settings: Settings, clock: FakeClock, campaign_1: int):
        async with (
            limited_app(settings, clock, rate_public=0.5, burst_public=2) as app,
            client_of(app, "203.0.113.7") as http,
            client_of(app, "198.51.100.9") as elsewhere,
        ):
            assert (await http.get("/v1/audit/campaigns")).status_code == 200
            assert (await http.get("/v1/audit/campaigns/1")).status_code == 200
            assert_rate_limited(await http.get("/v1/audit/campaigns"), "client_ip", 2)
            assert (await elsewhere.get("/v1/audit/campaigns")).status_code == 200
            assert (await http.post("/v1/auth/nonce")).status_code == 201  # the sign-in bucket is another
            clock.advance(2.0)
            assert (await http.get("/v1/audit/campaigns")).status_code == 200


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's routes; FastAPI 0.16x keeps an included router's routes behind a wrapper (``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found: set[Callable[..., Any]] = set()
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            found.add(dependency.call)
        found |= _calls(dependency)
    return found


class TestOpenApi:
    def test_every_limited_route_documents_429_rate_limited_with_retry_after_and_no_other_does(
        self, settings: Settings
    ):
        app = create_app(settings)
        document = app.openapi()
        limiters = {get_attester, get_wallet, limit_sign_in, limit_public}
        limited: set[tuple[str, str]] = set()
        documented: set[tuple[str, str]] = set()
        for route in _api_routes(app.routes):
            if not route.include_in_schema:
                continue
            for method in route.methods:
                operation = document["paths"][route.path][method.lower()]
                if _calls(route.dependant) & limiters:
                    limited.add((method, route.path))
                answer = operation["responses"].get("429")
                if answer is not None:
                    documented.add((method, route.path))
                    assert "`rate_limited`" in answer["description"]
                    assert answer["headers"]["Retry-After"]["schema"] == {"type": "integer"}
        assert {("POST", "/v1/auth/nonce"), ("POST", "/v1/auth/siwe"), ("POST", "/v1/engagements")} <= limited
        assert ("GET", "/v1/links") in limited and ("GET", "/healthz") not in limited
        assert documented == limited
