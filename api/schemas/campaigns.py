"""Bodies of /v1/campaigns: attester API keys (campaign reads and writes come with the marketer endpoints)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import EXAMPLE_ADDRESS, Address


class ApiKeyIn(BaseModel):
    """Which attester the key stands for: an attester of the campaign on chain."""

    model_config = ConfigDict(strict=True, extra="forbid")

    attester: Address


class ApiKeyOut(BaseModel):
    """A new key. ``key`` is shown only here (the service keeps its hash): hand it to the attester now."""

    key_id: int = Field(description="Names the key for revocation.", examples=[12])
    key: str = Field(
        description="`adl_` + 43 characters.", examples=["adl_VGhpcyBpcyBub3QgYSByZWFsIGtleSwgb2YgY291cnNl"]
    )
    campaign_id: int = Field(examples=[1])
    attester: str = Field(description="EIP-55.", examples=[EXAMPLE_ADDRESS])
    created_at: datetime
