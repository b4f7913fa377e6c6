"""Bodies of the public (auditor) routes: chain-derived figures and logs only, never a customer's record.

Amounts are decimal strings of token base units; actions and reasons are names; addresses are EIP-55. Each settled
engagement says where its log is (block, block hash, transaction, log index), so it can be checked on any node.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import EXAMPLE_ADDRESS
from api.schemas.engagements import ActionName, RejectReasonName
from api.schemas.marketer_campaigns import CampaignOut
from ledger.crm.audit import Page
from ledger.crm.campaigns import CampaignSummary
from ledger.crm.onchain import Rejection, Touchpoint
from ledger.crm.verification import Verification
from ledger.types import checksummed

EXAMPLE_HASH = "0x" + "ab" * 32
NEXT_CURSOR = Field(description="Pass as `cursor` for the next page; null on the last.")


class LogPosition(BaseModel):
    """Where a log sits on chain: enough to fetch its receipt and find it."""

    block_number: int
    block_hash: str = Field(examples=[EXAMPLE_HASH])
    tx_hash: str = Field(examples=[EXAMPLE_HASH])
    log_index: int


class DeliveryOut(LogPosition):
    """One paid engagement: one Rewarded log of the escrow."""

    outcome: Literal["paid"] = "paid"
    campaign_id: int
    event_id: int
    consumer: str = Field(description="The rewarded wallet (EIP-55).", examples=[EXAMPLE_ADDRESS])
    action: ActionName
    amount: str = Field(description="Token base units (decimal string).", examples=["10000000000000000"])
    occurred_at: int = Field(description="When the engagement happened, as attested (unix seconds).")
    evidence_hash: str = Field(description="The attester's commitment to its evidence.", examples=[EXAMPLE_HASH])

    @classmethod
    def of(cls, row: Touchpoint) -> DeliveryOut:
        return cls(
            campaign_id=row.campaign_id,
            event_id=row.event_id,
            consumer=checksummed(row.consumer),
            action=row.action.name.lower(),  # type: ignore[arg-type]
            amount=str(row.amount),
            occurred_at=row.occurred_at,
            evidence_hash=row.evidence_hash,
            **_position(row),
        )


class RejectedOut(LogPosition):
    """One refused engagement: one Rejected log of the escrow, with the rule it failed."""

    outcome: Literal["rejected"] = "rejected"
    campaign_id: int
    event_id: int
    consumer: str = Field(examples=[EXAMPLE_ADDRESS])
    reason: RejectReasonName = Field(description="The chain's reason.")

    @classmethod
    def of(cls, row: Rejection) -> RejectedOut:
        return cls(
            campaign_id=row.campaign_id,
            event_id=row.event_id,
            consumer=checksummed(row.consumer),
            reason=row.reason.name.lower(),  # type: ignore[arg-type]
            **_position(row),
        )


def _position(row: Touchpoint | Rejection) -> dict[str, Any]:
    return {"block_number": row.block_number, "block_hash": row.block_hash, "tx_hash": row.tx_hash,
            "log_index": row.log_index}  # fmt: skip


class CampaignPageOut(BaseModel):
    items: list[CampaignOut] = Field(description="By campaign id.")
    next_cursor: str | None = NEXT_CURSOR

    @classmethod
    def of(cls, page: Page[CampaignSummary]) -> CampaignPageOut:
        return cls(items=[CampaignOut.of(summary) for summary in page.items], next_cursor=page.next_cursor)


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut] = Field(description="By event id.")
    next_cursor: str | None = NEXT_CURSOR

    @classmethod
    def of(cls, page: Page[Touchpoint]) -> DeliveryPageOut:
        return cls(items=[DeliveryOut.of(row) for row in page.items], next_cursor=page.next_cursor)


class RejectedPageOut(BaseModel):
    items: list[RejectedOut] = Field(description="By event id.")
    next_cursor: str | None = NEXT_CURSOR

    @classmethod
    def of(cls, page: Page[Rejection]) -> RejectedPageOut:
        return cls(items=[RejectedOut.of(row) for row in page.items], next_cursor=page.next_cursor)


class CheckOut(BaseModel):
    name: str = Field(examples=["budget_from_logs"])
    description: str
    expected: str = Field(description="The chain's figure (or the escrow's own logged totals), as a string.")
    actual: str = Field(description="What the indexed rows give.")
    passed: bool


class VerificationOut(BaseModel):
    """Whether the campaign's indexed figures tie out with the chain at ``block_number`` (the indexer's
    checkpoint): ``verified`` is true when every check passed."""

    campaign_id: int
    block_number: int
    verified: bool
    checks: list[CheckOut]

    @classmethod
    def of(cls, verification: Verification) -> VerificationOut:
        return cls(
            campaign_id=verification.campaign_id,
            block_number=verification.block_number,
            verified=verification.verified,
            checks=[
                CheckOut(
                    name=c.name,
                    description=c.description,
                    expected=str(c.expected),
                    actual=str(c.actual),
                    passed=c.passed,
                )  # fmt: skip
                for c in verification.checks
            ],
        )
