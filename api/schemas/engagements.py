"""Bodies of /v1/engagements: a batch of reported engagements, the per-engagement answer, one engagement's state.

Types are strict (``true`` is not an integer, ``"5"`` is not a number). Actions are names (``ad_view``), not the
chain's integers: readable in logs and stable if the contract's enum grows. What only makes one engagement
invalid (a malformed address or hash, a time outside the campaign, a too-long ``attester_ref``) is answered per
engagement by ``ledger.settlement.outbox``, so one bad engagement never sinks the batch; only the batch's shape
(types, names, more than ``MAX_PER_CALL``) refuses the whole request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidatorFunctionWrapHandler, field_validator

from api.schemas.common import EXAMPLE_ADDRESS, CampaignId
from ledger.errors import TooManyEngagements
from ledger.model import Action
from ledger.settlement import outbox
from ledger.settlement.outbox import MAX_PER_CALL, EngagementState, IntakeOutcome, IntakeProblem, IntakeResult
from ledger.settlement.outbox_models import EngagementStatus
from ledger.types import checksummed

# The ledger enums' names, lowercase (tests/api/routers/test_engagements.py keeps them in step).
ActionName = Literal[
    "install", "location_opt_in", "daily_open", "ad_view", "ad_click", "email_open", "email_click", "subscribe"
]
RejectReasonName = Literal[
    "duplicate_event",
    "action_not_offered",
    "time_in_future",
    "outside_campaign_dates",
    "no_consent",
    "lifetime_cap_reached",
    "daily_cap_reached",
    "stale_day",
    "budget_exhausted",
]

EXAMPLE_HASH = "0x" + "3b" * 32


class EngagementReport(BaseModel):
    """One engagement the attester observed."""

    model_config = ConfigDict(strict=True, extra="forbid")

    attester_ref: str = Field(
        description="Your own id for it, 1 to 128 printable characters. Sending it again is a replay (answered "
        "with the same event id), never a second engagement.",
        examples=["view-000183"],
    )
    consumer: str = Field(description="The consumer's wallet: 0x + 40 hex digits.", examples=[EXAMPLE_ADDRESS])
    action: ActionName
    occurred_at: int = Field(description="When it happened, unix seconds.", examples=[1_767_225_600])
    evidence_hash: str = Field(description="Your hash of the evidence: 0x + 64 hex digits.", examples=[EXAMPLE_HASH])

    def to_ledger(self) -> outbox.EngagementIn:
        return outbox.EngagementIn(
            consumer=self.consumer,
            action=Action[self.action.upper()],
            occurred_at=self.occurred_at,
            evidence_hash=self.evidence_hash,
            attester_ref=self.attester_ref,
        )


class EngagementBatch(BaseModel):
    """Engagements of one campaign: the API key's campaign."""

    model_config = ConfigDict(strict=True, extra="forbid")

    campaign_id: CampaignId
    engagements: list[EngagementReport] = Field(
        max_length=MAX_PER_CALL, description=f"At most {MAX_PER_CALL}; more is refused whole with 413."
    )

    @field_validator("engagements", mode="wrap")
    @classmethod
    def _at_most_max_per_call(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Counts before validating the items: an oversized batch is a 413 naming the limit, not a 422."""
        if isinstance(value, list) and len(value) > MAX_PER_CALL:
            raise TooManyEngagements(f"{len(value)} engagements in one call; at most {MAX_PER_CALL}")
        return handler(value)


class EngagementResult(BaseModel):
    """The answer for one engagement, in the order sent."""

    attester_ref: str
    outcome: IntakeOutcome = Field(
        description="accepted (stored, new event id), replay (sent before: nothing stored, its event id), conflict "
        "(the attester_ref names another engagement: nothing stored), invalid (refused, see code)."
    )
    event_id: int | None = Field(description="The on-chain event id (null when invalid).", examples=[0])
    status: EngagementStatus | None = Field(description="Where the stored engagement is (null when invalid).")
    code: IntakeProblem | None = Field(description="Why it was not accepted (conflict, invalid).")
    message: str | None = None

    @classmethod
    def of(cls, result: IntakeResult) -> EngagementResult:
        return cls(
            attester_ref=result.attester_ref,
            outcome=result.outcome,
            event_id=result.event_id,
            status=None if result.state is None else result.state.status,
            code=result.code,
            message=result.message,
        )


class IntakeAnswer(BaseModel):
    """What happened to the batch: counts, and one result per engagement in input order."""

    accepted: int = Field(description="New engagements stored.")
    duplicates: int = Field(description="Replays of engagements stored before (idempotent: nothing changed).")
    conflicts: int
    invalid: int
    results: list[EngagementResult]

    @classmethod
    def of(cls, results: list[IntakeResult]) -> IntakeAnswer:
        def count(outcome: IntakeOutcome) -> int:
            return sum(1 for result in results if result.outcome == outcome)

        return cls(
            accepted=count(IntakeOutcome.ACCEPTED),
            duplicates=count(IntakeOutcome.REPLAY),
            conflicts=count(IntakeOutcome.CONFLICT),
            invalid=count(IntakeOutcome.INVALID),
            results=[EngagementResult.of(result) for result in results],
        )


class EngagementOut(BaseModel):
    """An accepted engagement and where it is: queued, sent (tx_hash, not final), settled (tx_hash, block_number,
    amount) or rejected (reject_reason, the chain's). Settled and rejected come from the chain's own logs."""

    chain_id: int = Field(examples=[31337])
    escrow: str = Field(description="EIP-55.")
    campaign_id: int
    event_id: int
    attester: str = Field(description="EIP-55.")
    attester_ref: str
    consumer: str = Field(description="EIP-55.")
    action: ActionName
    occurred_at: int = Field(description="Unix seconds.")
    evidence_hash: str = Field(examples=[EXAMPLE_HASH])
    status: EngagementStatus
    accepted_at: datetime
    tx_hash: str | None = None
    block_number: int | None = None
    amount: str | None = Field(
        default=None,
        pattern=r"^[0-9]+$",
        description="Reward paid, in token base units (decimal string).",
        examples=["250000000000000000"],
    )
    reject_reason: RejectReasonName | None = None

    @classmethod
    def of(cls, state: EngagementState) -> EngagementOut:
        return cls(
            chain_id=state.chain_id,
            escrow=checksummed(state.escrow),
            campaign_id=state.campaign_id,
            event_id=state.event_id,
            attester=checksummed(state.attester),
            attester_ref=state.attester_ref,
            consumer=checksummed(state.consumer),
            action=state.action.name.lower(),  # type: ignore[arg-type]
            occurred_at=state.occurred_at,
            evidence_hash=state.evidence_hash,
            status=state.status,
            accepted_at=state.accepted_at,
            tx_hash=state.tx_hash,
            block_number=state.block_number,
            amount=None if state.amount is None else str(state.amount),
            reject_reason=None if state.reject_reason is None else state.reject_reason.name.lower(),  # type: ignore[arg-type]
        )
