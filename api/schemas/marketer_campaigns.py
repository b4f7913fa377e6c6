"""Bodies of the marketer's campaign routes: preparing a create, relaying signed transactions, campaign reads.

Amounts are decimal strings of token base units (uint256 does not fit a JSON number); actions are names.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import EXAMPLE_ADDRESS, Address
from api.schemas.engagements import ActionName, RejectReasonName
from ledger.crm.campaigns import ActionReport, CampaignReport, CampaignSummary
from ledger.model import DEFAULT_PURPOSES, Action
from ledger.relay import MAX_RAW_BYTES, PreparedCreate, TxStatus
from ledger.suite import CampaignTerms
from ledger.types import checksummed

UINT8_MAX = 255
UINT40_MAX = 2**40 - 1
AMOUNT = r"^[0-9]{1,78}$"
EXAMPLE_TX = "0x" + "5e" * 32


def _amount(description: str) -> Any:
    return Field(pattern=AMOUNT, description=f"{description}, in token base units (decimal string).", examples=["1"])


class ActionTermsIn(BaseModel):
    """One offered action. An action left out of ``actions`` is not offered."""

    model_config = ConfigDict(strict=True, extra="forbid")

    reward: str = _amount("Paid per engagement (uint96; zero records without paying)")
    purposes: int | None = Field(
        default=None, ge=1, le=UINT8_MAX, description="Consent purposes bitmask required; default: the action's usual."
    )
    lifetime_cap: int = Field(default=0, ge=0, le=UINT8_MAX, description="Per consumer; 0 = no cap.")
    daily_cap: int = Field(default=0, ge=0, le=UINT8_MAX, description="Per consumer per UTC day; 0 = no cap.")


class CampaignPrepareIn(BaseModel):
    """A campaign to create and fund in one transaction (createCampaignWithPermit), sent by the signed-in wallet.

    Call once without ``permit_signature`` to get the Permit to sign, then again with it (and the same
    ``deadline``) to get the transaction's calldata and gas; sign that transaction and POST it to /v1/campaigns."""

    model_config = ConfigDict(strict=True, extra="forbid")

    brand: Address
    token: Address | None = Field(default=None, description="The reward token; default: the deployment's.")
    starts_at: int = Field(ge=0, le=UINT40_MAX, description="Unix seconds.")
    ends_at: int = Field(ge=0, le=UINT40_MAX, description="Unix seconds.")
    actions: dict[ActionName, ActionTermsIn] = Field(min_length=1)
    attesters: list[Address] = Field(default_factory=list, max_length=100)
    budget: str = _amount("Pulled from the marketer by the permit")
    deadline: int | None = Field(default=None, ge=0, description="The permit's deadline; default: in an hour.")
    permit_signature: str | None = Field(
        default=None, pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes over the Permit this route returned."
    )

    def terms(self, default_token: str) -> CampaignTerms:
        actions = {Action[name.upper()]: terms for name, terms in self.actions.items()}
        return CampaignTerms(
            token=self.token or default_token,
            brand=self.brand,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            rewards={action: int(t.reward) for action, t in actions.items()},
            purposes={action: t.purposes or int(DEFAULT_PURPOSES[action]) for action, t in actions.items()},
            lifetime_caps={action: t.lifetime_cap for action, t in actions.items()},
            daily_caps={action: t.daily_cap for action, t in actions.items()},
        )


class PreparedCreateOut(BaseModel):
    """``permit``: EIP-712 typed data for ``eth_signTypedData_v4``. ``transaction``: the EIP-1559 fields to sign
    (``data`` and ``gas`` are null until ``permit_signature`` is given)."""

    permit: dict[str, Any]
    transaction: dict[str, Any]

    @classmethod
    def of(cls, prepared: PreparedCreate) -> PreparedCreateOut:
        return cls(permit=prepared.permit, transaction=prepared.transaction)


class SignedTransactionIn(BaseModel):
    """An EIP-1559 transaction to the escrow, signed by the signed-in wallet, as 0x-hex."""

    model_config = ConfigDict(strict=True, extra="forbid")

    signed_transaction: str = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$", max_length=2 + 2 * MAX_RAW_BYTES, examples=["0x02f9..."]
    )


class RelayedOut(BaseModel):
    """Sent to the chain, not yet final: follow ``status_url``."""

    tx_hash: str = Field(examples=[EXAMPLE_TX])
    status_url: str = Field(examples=[f"/v1/campaigns/transactions/{EXAMPLE_TX}"])


class TransactionOut(BaseModel):
    """A relayed transaction: pending, mined (with the created campaign's id, for a create) or failed."""

    tx_hash: str
    state: str = Field(examples=["mined"])
    block_number: int | None = None
    campaign_id: int | None = None

    @classmethod
    def of(cls, status: TxStatus) -> TransactionOut:
        return cls(
            tx_hash=status.tx_hash,
            state=status.state.value,
            block_number=status.block_number,
            campaign_id=status.campaign_id,
        )


class CampaignOut(BaseModel):
    """A campaign as indexed: budget is what is left in escrow, owed what consumers accrued and not claimed."""

    campaign_id: int
    marketer: str = Field(description="EIP-55.", examples=[EXAMPLE_ADDRESS])
    token: str
    brand: str
    starts_at: int
    ends_at: int
    status: str = Field(examples=["active"], description="active, paused or closed.")
    budget: str = _amount("Unspent, in escrow")
    owed: str = _amount("Accrued to consumers, not yet claimed")
    refunded: str = _amount("Returned to the marketer at close")
    updated_block: int = Field(description="The last log folded into this row.")
    created_tx: str

    @classmethod
    def of(cls, summary: CampaignSummary) -> CampaignOut:
        return cls(
            campaign_id=summary.campaign_id,
            marketer=checksummed(summary.marketer),
            token=checksummed(summary.token),
            brand=checksummed(summary.brand),
            starts_at=summary.starts_at,
            ends_at=summary.ends_at,
            status=summary.status.name.lower(),
            budget=str(summary.budget),
            owed=str(summary.owed),
            refunded=str(summary.refunded),
            updated_block=summary.updated_block,
            created_tx=summary.created_tx,
        )


class ActionOut(BaseModel):
    action: ActionName
    reward: str = _amount("Per paid engagement")
    purposes: int
    lifetime_cap: int
    daily_cap: int
    deliveries: int = Field(description="Paid engagements (Rewarded logs).")
    spend: str = _amount("Paid for this action")
    rejections: int = Field(description="Rejected engagements known to be of this action (see the campaign's).")

    @classmethod
    def of(cls, report: ActionReport) -> ActionOut:
        return cls(
            action=report.action.name.lower(),  # type: ignore[arg-type]
            reward=str(report.reward),
            purposes=report.purposes,
            lifetime_cap=report.lifetime_cap,
            daily_cap=report.daily_cap,
            deliveries=report.deliveries,
            spend=str(report.spend),
            rejections=report.rejections,
        )


class CampaignDetailOut(CampaignOut):
    """A campaign with its terms and figures, as fresh as ``indexed_block``. Rejected logs carry no action:
    ``rejections_by_reason`` counts all; per action, only those whose engagement this service accepted, the
    rest being ``rejections_unattributed``."""

    actions: list[ActionOut]
    spend: str = _amount("Paid in all (sum of the Rewarded amounts)")
    deliveries: int
    rejections_by_reason: dict[RejectReasonName, int]
    rejections_unattributed: int
    outbox: dict[str, int] = Field(description="Engagements accepted by this service, by status.")
    attesters: list[str] = Field(description="EIP-55, current.")
    indexed_block: int | None = Field(description="The indexer's checkpoint: the figures include this block.")

    @classmethod
    def of_report(cls, report: CampaignReport) -> CampaignDetailOut:
        return cls(
            **CampaignOut.of(report.summary).model_dump(),
            actions=[ActionOut.of(action) for action in report.actions],
            spend=str(report.spend),
            deliveries=report.deliveries,
            rejections_by_reason={
                reason.name.lower(): count  # type: ignore[misc]
                for reason, count in report.rejections_by_reason.items()
            },
            rejections_unattributed=report.rejections_unattributed,
            outbox={status.value: count for status, count in report.outbox.items()},
            attesters=[checksummed(a) for a in report.attesters],
            indexed_block=report.indexed_block,
        )
