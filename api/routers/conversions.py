"""Conversions (purchases from a shop or POS) for the CRM's customers: one at a time, or a CSV file.

Who may call: a marketer, as for /v1/customers (see ``api.routers.customers``): customers and their purchases
are shared by every marketer; other wallets get 403 ``access_denied``.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import SessionDep
from api.problems import responses
from api.routers import V1
from api.routers.customers import MARKETER_PROBLEMS, CrmMarketer
from api.schemas.conversions import ConversionIn, ConversionOut, ImportReportOut
from ledger.crm import conversions
from ledger.crm.conversions import SOURCE_MAX

router = APIRouter(prefix=f"{V1}/conversions", tags=["conversions"])


async def csv_body(request: Request) -> bytes:
    """The request body; the app's body size limit (``api.limits``) has already bounded it."""
    return await request.body()


CsvBody = Annotated[bytes, Depends(csv_body)]


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": ConversionOut, "description": "The same purchase was already recorded (`created: false`)."},
        **responses(
            *MARKETER_PROBLEMS,
            "customer_not_found",
            "invalid_conversion",
            "invalid_amount",
            "conversion_conflict",
            "request_too_large",
            "invalid_request",
        ),
    },
)
def post_conversion(
    body: ConversionIn, marketer: CrmMarketer, session: SessionDep, response: Response
) -> ConversionOut:
    """Record one purchase: 201 created, 200 when it is recorded already, 409 when recorded with other values."""
    conversion, created = conversions.record_conversion(
        session,
        customer_id=body.customer_id,
        source=body.source,
        order_ref=body.order_ref,
        value_minor=int(body.value_minor),
        currency=body.currency,
        occurred_at=body.occurred_at,
    )
    session.commit()
    if not created:
        response.status_code = 200
    return ConversionOut.of(conversion, created)


@router.post(
    "/import",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
    responses=responses(
        *MARKETER_PROBLEMS, "invalid_conversion", "invalid_conversion_file", "request_too_large", "invalid_request"
    ),
)
def import_conversions(
    source: Annotated[str, Query(min_length=1, max_length=SOURCE_MAX, description="The shop or POS system.")],
    body: CsvBody,
    marketer: CrmMarketer,
    session: SessionDep,
) -> ImportReportOut:
    """Import a CSV of purchases (UTF-8; header: order_ref, value, currency, occurred_at, and customer_id, email
    or phone). Each refused row is reported by its line and never stops the others; importing again adds nothing.
    """
    text = body.decode("utf-8-sig", errors="surrogateescape")  # bad bytes are reported on their line
    report = conversions.import_conversions_csv(session, io.StringIO(text, newline=""), source)
    return ImportReportOut.of(report)
