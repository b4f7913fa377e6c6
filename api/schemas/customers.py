"""Bodies of /v1/customers: a customer (the only place PII is answered), a page of them, an erasure's report, and
a customer's timeline. Chain amounts are decimal strings of token base units; conversion values are minor units
as an integer string, with the major-unit decimal beside them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from api.schemas.conversions import major_units
from ledger.crm.erasure import ErasureReport
from ledger.crm.models import Claim, ConsentEvent, Conversion, Customer, LifecycleStage, Rejection, Touchpoint
from ledger.crm.repository import MAX_CUSTOMER_ID
from ledger.crm.search import CustomerPage
from ledger.crm.timeline import TimelineEntry, TimelinePage
from ledger.types import checksummed

CustomerIdPath = Annotated[int, Path(ge=1, le=MAX_CUSTOMER_ID, description="The customer's id.")]
Name = Annotated[str, Field(max_length=200)]
Email = Annotated[str, Field(max_length=320, examples=["ann@example.com"])]
Phone = Annotated[
    str, Field(max_length=64, description="International: +<country><number>.", examples=["+44 20 7946 0958"])
]
Label = Annotated[str, Field(max_length=100)]


class CustomerIn(BaseModel):
    """A customer to create, or to merge into the one with the same normalised email or phone."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None
    display_name: Name | None = None
    lead_source: Label | None = None
    tier: Annotated[str, Field(max_length=50)] | None = None
    owner: Label | None = Field(default=None, description="The account manager.")


class CustomerPatch(BaseModel):
    """The fields to change; a field left out is kept, null clears it (not the lifecycle stage). A new email or
    phone is normalised and refused (409 contact_in_use) when another customer has it."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    phone: Phone | None = None
    display_name: Name | None = None
    lead_source: Label | None = None
    lifecycle_stage: LifecycleStage | None = None
    tier: Annotated[str, Field(max_length=50)] | None = None
    owner: Label | None = None

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class CustomerOut(BaseModel):
    id: int
    display_name: str | None
    email: str | None
    phone: str | None
    lifecycle_stage: LifecycleStage
    lead_source: str | None
    tier: str | None
    owner: str | None
    wallets: list[str] = Field(description="Linked wallets (EIP-55), any brand.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        return cls(
            id=customer.id,
            display_name=customer.display_name,
            email=customer.email,
            phone=customer.phone,
            lifecycle_stage=customer.lifecycle_stage,
            lead_source=customer.lead_source,
            tier=customer.tier,
            owner=customer.owner,
            wallets=sorted({checksummed(link.wallet) for link in customer.wallet_links}),
            created_at=customer.created_at,
            updated_at=customer.updated_at,
        )


class CustomerUpserted(CustomerOut):
    merged: bool = Field(description="True when the body matched an existing customer and filled its blanks.")


class CustomerList(BaseModel):
    items: list[CustomerOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

    @classmethod
    def of(cls, page: CustomerPage) -> CustomerList:
        return cls(items=[CustomerOut.of(customer) for customer in page.items], next_cursor=page.next_cursor)


class ErasureOut(BaseModel):
    """What an erasure deleted (the customer, their links) and detached (chain rows and conversions stay)."""

    customer_id: int
    wallet_links_deleted: int
    touchpoints_detached: int
    rejections_detached: int
    claims_detached: int
    conversions_detached: int

    @classmethod
    def of(cls, report: ErasureReport) -> ErasureOut:
        return cls(**vars(report))


class TimelineItem(BaseModel):
    """One entry; the fields that do not apply to its ``kind`` are null."""

    kind: Literal["touchpoint", "rejection", "claim", "consent", "conversion"]
    at: int | None = Field(description="Unix seconds; null for a log whose block time is no longer known.")
    chain_id: int | None = None
    campaign_id: int | None = None
    wallet: str | None = Field(default=None, description="The customer's wallet that acted (EIP-55).")
    action: str | None = None
    amount: str | None = Field(default=None, description="Token base units, decimal string.")
    reason: str | None = None
    recipient: str | None = None
    brand: str | None = None
    change: str | None = None
    purposes: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    log_index: int | None = None
    conversion_id: int | None = None
    source: str | None = None
    order_ref: str | None = None
    value_minor: str | None = None
    currency: str | None = None
    value: str | None = Field(default=None, description="Major units, decimal string (`12.34`).")

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineItem:
        row = entry.row
        if isinstance(row, Conversion):
            return cls(
                kind="conversion",
                at=entry.at,
                conversion_id=row.id,
                source=row.source,
                order_ref=row.order_ref,
                value_minor=str(row.value_minor),
                currency=row.currency,
                value=major_units(row.value_minor, row.currency),
            )
        fields: dict[str, Any] = {
            "kind": entry.kind,
            "at": entry.at,
            "chain_id": row.chain_id,
            "wallet": checksummed(row.consumer),
            "tx_hash": row.tx_hash,
            "block_number": row.block_number,
            "log_index": row.log_index,
        }
        if isinstance(row, ConsentEvent):
            fields |= {"brand": checksummed(row.brand), "change": row.change.value, "purposes": row.purposes}
        else:
            fields["campaign_id"] = row.campaign_id
        if isinstance(row, Touchpoint):
            fields |= {"action": row.action.name.lower(), "amount": str(row.amount)}
        elif isinstance(row, Rejection):
            fields["reason"] = row.reason.name.lower()
        elif isinstance(row, Claim):
            fields |= {"amount": str(row.amount), "recipient": checksummed(row.recipient)}
        return cls(**fields)


class TimelineOut(BaseModel):
    items: list[TimelineItem] = Field(description="Oldest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")

    @classmethod
    def of(cls, page: TimelinePage) -> TimelineOut:
        return cls(items=[TimelineItem.of(entry) for entry in page.items], next_cursor=page.next_cursor)
