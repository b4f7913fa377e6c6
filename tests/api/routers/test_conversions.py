"""Conversions over HTTP: one purchase (created, replay, conflict) and a CSV import reporting bad lines."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import MARKETER, OTHER, assert_problem, bearer, sign_in

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("campaign_1")]


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await sign_in(client, MARKETER))


@pytest.fixture
async def customer(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await client.post("/v1/customers", json={"email": "ann@example.com"}, headers=auth)
    assert response.status_code == 201, response.text
    customer_id: int = response.json()["id"]
    return customer_id


def purchase(customer_id: int, **fields: str) -> dict[str, object]:
    values: dict[str, object] = {
        "customer_id": customer_id,
        "source": "shopify",
        "order_ref": "#1001",
        "value_minor": "1234",
        "currency": "usd",
        "occurred_at": "2026-01-02T10:30:00Z",
    }
    return values | fields


class TestPostConversion:
    async def test_created_then_replay_then_conflict(
        self, client: httpx.AsyncClient, auth: dict[str, str], customer: int
    ):
        created = await client.post("/v1/conversions", json=purchase(customer), headers=auth)
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["value_minor"], body["value"], body["currency"], body["created"]) == ("1234", "12.34", "USD", True)
        replay = await client.post("/v1/conversions", json=purchase(customer), headers=auth)
        assert replay.status_code == 200, replay.text
        assert (replay.json()["id"], replay.json()["created"]) == (body["id"], False)
        conflict = await client.post("/v1/conversions", json=purchase(customer, value_minor="999"), headers=auth)
        assert_problem(conflict, 409, "conversion_conflict")

    async def test_unknown_customer_and_bad_time(self, client: httpx.AsyncClient, auth: dict[str, str], customer: int):
        missing = await client.post("/v1/conversions", json=purchase(customer + 100), headers=auth)
        assert_problem(missing, 404, "customer_not_found")
        naive = await client.post(
            "/v1/conversions", json=purchase(customer, occurred_at="2026-01-02T10:30:00"), headers=auth
        )
        assert_problem(naive, 422, "invalid_conversion")

    async def test_a_non_marketer_is_denied(self, client: httpx.AsyncClient, customer: int):
        headers = bearer(await sign_in(client, OTHER))
        assert_problem(
            await client.post("/v1/conversions", json=purchase(customer), headers=headers), 403, "access_denied"
        )


class TestImport:
    async def test_reports_bad_lines_by_number_and_imports_once(
        self, client: httpx.AsyncClient, auth: dict[str, str], customer: int
    ):
        csv = (
            "order_ref,value,currency,occurred_at,email\n"
            "A-1,12.34,USD,2026-01-02T10:30:00Z,ann@example.com\n"
            "A-2,oops,USD,2026-01-02T10:30:00Z,ann@example.com\n"
            "A-3,1.00,EUR,2026-01-03T10:30:00+01:00,ann@example.com\n"
        )
        headers = auth | {"Content-Type": "text/csv"}
        first = await client.post("/v1/conversions/import", params={"source": "pos"}, content=csv, headers=headers)
        assert first.status_code == 200, first.text
        report = first.json()
        assert (report["rows_read"], report["imported"], report["already_imported"], report["ok"]) == (3, 2, 0, False)
        assert [error["line"] for error in report["errors"]] == [3]
        again = (
            await client.post("/v1/conversions/import", params={"source": "pos"}, content=csv, headers=headers)
        ).json()
        assert (again["imported"], again["already_imported"]) == (0, 2)

    async def test_a_bad_header_refuses_the_file(self, client: httpx.AsyncClient, auth: dict[str, str]):
        response = await client.post(
            "/v1/conversions/import", params={"source": "pos"}, content="order_ref,price\n", headers=auth
        )
        assert_problem(response, 422, "invalid_conversion_file")

    async def test_a_body_over_the_limit_is_413(self, client: httpx.AsyncClient, auth: dict[str, str], settings):
        body = "x" * (settings.api_max_body_bytes + 1)
        response = await client.post("/v1/conversions/import", params={"source": "pos"}, content=body, headers=auth)
        assert_problem(response, 413, "request_too_large")
