"""The CRM's customers: create or merge, read, edit, erase, search, and a customer's timeline.

Who may call: a marketer, i.e. a signed-in wallet (SIWE) that is the marketer of at least one indexed campaign
(``campaigns.marketer``); any other wallet (a consumer, an auditor) gets 403 ``access_denied`` and never sees PII.
Customers are records the brand's marketing team shares (the schema has no owner per record), so every marketer
reads and writes every customer and conversion. What the chain says about a customer is scoped: the timeline shows
only the touchpoints, rejections and claims of the caller's own campaigns, and consent events only for the brands
of those campaigns.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import SessionDep, Wallet
from api.problems import responses
from api.routers import V1
from api.schemas.customers import (
    CustomerIdPath,
    CustomerIn,
    CustomerList,
    CustomerOut,
    CustomerPatch,
    CustomerUpserted,
    ErasureOut,
    TimelineOut,
)
from ledger.crm import repository, search, timeline
from ledger.crm.erasure import erase_customer
from ledger.crm.models import LifecycleStage
from ledger.crm.scope import MarketerScope, marketer_scope

router = APIRouter(prefix=f"{V1}/customers", tags=["customers"])


def get_crm_marketer(wallet: Wallet, session: SessionDep) -> MarketerScope:
    return marketer_scope(session, wallet.address)


CrmMarketer = Annotated[MarketerScope, Depends(get_crm_marketer)]
MARKETER_PROBLEMS = ("credentials_required", "invalid_session", "access_denied")
Limit = Annotated[int, Query(ge=1, le=search.MAX_PAGE, description="Items per page.")]
Cursor = Annotated[str | None, Query(max_length=120, description="`next_cursor` of the previous page.")]


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": CustomerUpserted, "description": "Merged into an existing customer (`merged: true`)."},
        **responses(
            *MARKETER_PROBLEMS, "invalid_contact", "ambiguous_customer", "request_too_large", "invalid_request"
        ),
    },
)
def post_customer(body: CustomerIn, marketer: CrmMarketer, session: SessionDep, response: Response) -> CustomerUpserted:
    """Create a customer, or merge into the one with the same normalised email or phone (201 created, 200 merged:
    a merge only fills the existing record's blanks)."""
    customer, merged = repository.upsert_customer(session, **body.model_dump())
    session.commit()
    if merged:
        response.status_code = 200
    return CustomerUpserted(**CustomerOut.of(customer).model_dump(), merged=merged)


@router.get("", responses=responses(*MARKETER_PROBLEMS, "invalid_contact", "invalid_cursor", "invalid_request"))
def list_customers(
    marketer: CrmMarketer,
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(max_length=320, description="An email or phone (exact, normalised), or the start of a name."),
    ] = None,
    stage: LifecycleStage | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CustomerList:
    """Search customers, in id order, a page at a time."""
    return CustomerList.of(search.search_customers(session, q=q, stage=stage, limit=limit, cursor=cursor))


@router.get("/{customer_id}", responses=responses(*MARKETER_PROBLEMS, "customer_not_found", "invalid_request"))
def get_customer(customer_id: CustomerIdPath, marketer: CrmMarketer, session: SessionDep) -> CustomerOut:
    """One customer."""
    return CustomerOut.of(repository.get_customer(session, customer_id))


@router.patch(
    "/{customer_id}",
    responses=responses(
        *MARKETER_PROBLEMS,
        "customer_not_found",
        "invalid_contact",
        "contact_in_use",
        "request_too_large",
        "invalid_request",
    ),
)
def patch_customer(
    customer_id: CustomerIdPath, body: CustomerPatch, marketer: CrmMarketer, session: SessionDep
) -> CustomerOut:
    """Change a customer's fields; a new email or phone must not be another customer's."""
    customer = repository.update_customer(session, customer_id, body.changes())
    session.commit()
    return CustomerOut.of(customer)


@router.delete("/{customer_id}", responses=responses(*MARKETER_PROBLEMS, "customer_not_found", "invalid_request"))
def delete_customer(customer_id: CustomerIdPath, marketer: CrmMarketer, session: SessionDep) -> ErasureOut:
    """Erase a customer: their PII and wallet links are deleted; chain rows and conversions stay, detached."""
    report = erase_customer(session, customer_id)
    session.commit()
    return ErasureOut.of(report)


@router.get(
    "/{customer_id}/timeline",
    responses=responses(*MARKETER_PROBLEMS, "customer_not_found", "invalid_cursor", "invalid_request"),
)
def get_timeline(
    customer_id: CustomerIdPath, marketer: CrmMarketer, session: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> TimelineOut:
    """The customer's touchpoints, rejections and claims in your campaigns, consent events for your brands, and
    conversions, oldest first."""
    page = timeline.customer_timeline(session, marketer, customer_id, limit=limit, cursor=cursor)
    return TimelineOut.of(page)
