"""Every error is an RFC 9457 problem with a stable code: ledger errors, schema errors, unknown routes, oversized
bodies and bugs; and the OpenAPI document says so for every route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from api.app import create_app
from api.problems import API_PROBLEMS, MEDIA_TYPE, STATUS, ledger_problem
from ledger import errors
from ledger.settings import Settings
from tests.api.conftest import DOMAIN, assert_problem
from tests.ledger.test_errors import all_ledger_errors

pytestmark = pytest.mark.anyio
LIMIT = 1024


@asynccontextmanager
async def serving(settings: Settings, *, raise_app_exceptions: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose body limit is LIMIT bytes and which has a route that fails with a bug."""
    app = create_app(settings.model_copy(update={"api_max_body_bytes": LIMIT}))

    @app.post("/bug")
    def bug() -> None:
        raise RuntimeError("secret internals in /srv/adledger")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=f"https://{DOMAIN}") as c,
    ):
        yield c


class TestStatusTable:
    def test_every_ledger_error_code_has_an_http_status(self):
        assert {cls.code for cls in all_ledger_errors()} - STATUS.keys() == set()

    def test_the_table_names_no_code_that_does_not_exist(self):
        known = {cls.code for cls in all_ledger_errors()} | API_PROBLEMS.keys()
        assert STATUS.keys() - known == set()

    def test_codes_shared_by_several_errors_mean_one_thing(self):
        assert STATUS["invalid_signature"] == STATUS["siwe_invalid_signature"] == 401
        assert STATUS["not_marketer"] == 403  # the contract's revert and the API's check


class TestLedgerProblem:
    def test_a_revert_carries_its_arguments_as_decimal_strings(self):
        response = ledger_problem(errors.EscrowBudgetTooLarge(7, 2**104, 2**104 - 1))
        assert (response.status_code, response.media_type) == (422, MEDIA_TYPE)
        body = response.body.decode()
        assert f'"total":"{2**104}"' in body and f'"max":"{2**104 - 1}"' in body and '"campaign_id":"7"' in body

    def test_fields_never_override_the_problem_members(self):
        response = ledger_problem(errors.SiweMalformed("bad", field="domain", line=1))
        assert b'"code":"siwe_malformed"' in response.body
        assert b'"field":"domain"' in response.body and b'"line":1' in response.body


class TestProblems:
    async def test_an_unknown_route_is_a_404_problem(self, client: httpx.AsyncClient):
        problem = assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
        assert problem["detail"] == "no route GET /v1/nothing-here"

    async def test_a_wrong_method_is_a_405_problem_with_allow(self, client: httpx.AsyncClient):
        response = await client.put("/v1/auth/nonce")
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "POST"

    async def test_allow_names_every_method_of_the_path_not_only_the_first_routes(self, client: httpx.AsyncClient):
        response = await client.options("/v1/campaigns")  # GET (list) and POST (create) are separate routes
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET, POST"

    @pytest.mark.parametrize("path", ["/healthz", "/v1/audit/campaigns?limit=5"])
    async def test_a_query_parameter_the_route_does_not_take_is_an_invalid_request(
        self, client: httpx.AsyncClient, path: str
    ):
        separator = "&" if "?" in path else "?"
        response = await client.get(f"{path}{separator}limt=5&zz=1")
        problem = assert_problem(response, 422, "invalid_request")
        assert [error["loc"] for error in problem["errors"]] == [["query", "limt"], ["query", "zz"]]

    async def test_the_routes_own_query_parameters_pass(self, client: httpx.AsyncClient):
        response = await client.get("/v1/audit/campaigns?limit=5&cursor=1")
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        "content", [b"{not json", b"[]", b"", b'{"message": "\xe9"}'], ids=["not-json", "array", "empty", "not-utf8"]
    )
    async def test_a_body_that_is_not_the_schemas_json_is_an_invalid_request(
        self, client: httpx.AsyncClient, content: bytes
    ):
        response = await client.post("/v1/auth/siwe", content=content, headers={"content-type": "application/json"})
        problem = assert_problem(response, 422, "invalid_request")
        assert problem["errors"] and all(set(error) == {"loc", "msg", "type"} for error in problem["errors"])

    async def test_a_declared_oversized_body_is_refused_before_it_is_read(self, settings: Settings):
        async with serving(settings) as client:
            response = await client.post("/v1/auth/siwe", content=b"x" * (LIMIT + 1))
        problem = assert_problem(response, 413, "request_too_large")
        assert problem["limit"] == LIMIT and str(LIMIT) in problem["detail"]

    async def test_a_streamed_oversized_body_is_refused_once_it_passes_the_limit(self, settings: Settings):
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield b" " * 512

        async with serving(settings) as client:
            response = await client.post(
                "/v1/auth/siwe", content=chunks(), headers={"content-type": "application/json"}
            )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "request_too_large")

    async def test_a_body_within_the_limit_goes_through(self, settings: Settings):
        async with serving(settings) as client:
            response = await client.post("/v1/auth/siwe", json={"message": "m" * 900, "signature": "0x"})
        assert_problem(response, 422, "siwe_malformed")

    async def test_a_bug_is_a_500_problem_without_its_text(self, settings: Settings):
        async with serving(settings, raise_app_exceptions=False) as client:
            response = await client.post("/bug")
        problem = assert_problem(response, 500, "internal_error")
        assert "secret" not in response.text and "RuntimeError" not in response.text
        assert "Traceback" not in problem["detail"]


class TestOpenApi:
    @pytest.fixture
    def document(self, settings: Settings) -> dict:
        return create_app(settings).openapi()  # the document needs no lifespan

    def test_every_problem_response_is_problem_json_with_the_problem_schema(self, document: dict):
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                for status, response in operation["responses"].items():
                    if status[0] in "45":
                        assert list(response["content"]) == [MEDIA_TYPE], (method, path, status)
                        assert response["content"][MEDIA_TYPE]["schema"] == {"$ref": "#/components/schemas/Problem"}
                        assert response["content"][MEDIA_TYPE]["examples"]
        assert "HTTPValidationError" not in document["components"]["schemas"]

    def test_every_route_documents_invalid_request(self, document: dict):
        """Every route: a query parameter it does not take is an invalid request, even on a route without input."""
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                assert "422" in operation["responses"], (method, path)
                assert "invalid_request" in operation["responses"]["422"]["description"], (method, path)
                assert "invalid_request" in operation["responses"]["422"]["content"][MEDIA_TYPE]["examples"]
                if operation.get("requestBody"):
                    assert "413" in operation["responses"], (method, path)

    def test_routes_are_versioned_under_v1_beside_the_probes(self, document: dict):
        assert {path for path in document["paths"] if not path.startswith("/v1/")} == {
            "/healthz",
            "/readyz",
            "/metrics",
        }

    def test_the_batch_limit_is_in_the_schema(self, document: dict):
        batch = document["components"]["schemas"]["EngagementBatch"]
        assert batch["properties"]["engagements"]["maxItems"] == 1000
        assert batch["additionalProperties"] is False
