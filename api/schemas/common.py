"""Types several routers share: ids bounded by their columns (an id the database cannot hold is a 422, never a
database error), and addresses, taken in any valid case and given back EIP-55 checksummed."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

from ledger.settlement.batch import MAX_EVENT_ID
from ledger.settlement.outbox_models import MAX_CAMPAIGN_ID
from ledger.types import normalize_address

BIGINT_MAX = 2**63 - 1
EXAMPLE_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _address(value: str) -> str:
    return normalize_address(value)  # ValueError (422) for a bad checksum


Address = Annotated[
    str,
    Field(
        pattern=r"^0x[0-9a-fA-F]{40}$",
        description="0x + 40 hex digits; mixed case must be a valid EIP-55 checksum.",
        examples=[EXAMPLE_ADDRESS],
    ),
    AfterValidator(_address),
]
CampaignId = Annotated[int, Field(ge=0, le=MAX_CAMPAIGN_ID, description="The escrow's campaign id.", examples=[1])]
CampaignIdPath = Annotated[int, Path(ge=0, le=MAX_CAMPAIGN_ID, description="The escrow's campaign id.")]
EventIdPath = Annotated[
    int, Path(ge=0, le=MAX_EVENT_ID, description="The engagement's event id, from the 202 that accepted it.")
]
KeyIdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX, description="The key's id, from the 201 that issued it.")]
