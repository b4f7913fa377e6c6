"""Bodies of the consumer's routes: consents (grant, revoke, receipts), wallet links, rewards and claims.

Purposes are names (``ads``, ``email``), not the registry's bitmask. Signatures are 65 bytes as 0x-hex, made by
the signed-in wallet over the EIP-712 message whose nonce and domain GET /v1/consents/nonce gives. Amounts are
decimal strings of token base units; times are unix seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from api.schemas.common import EXAMPLE_ADDRESS, Address, CampaignId
from api.schemas.engagements import EXAMPLE_HASH, ActionName, RejectReasonName
from ledger.crm.consumer import CampaignRewards, ConsentReceipt
from ledger.crm.models import WalletLink
from ledger.crm.onchain import Consent, Touchpoint
from ledger.gasless import Relayed
from ledger.model import Purpose
from ledger.typed_data import Domain
from ledger.types import UINT256_DIGITS, UINT256_MAX, checksummed

PurposeName = Literal["ads", "email", "location", "profile", "purchases", "analytics"]
EXAMPLE_SIGNATURE = "0x" + "ab" * 65

Signature = Annotated[
    str,
    Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes (r, s, v) as 0x-hex.", examples=[EXAMPLE_SIGNATURE]),
]
Deadline = Annotated[int, Field(ge=0, le=UINT256_MAX, description="The signature is void after this (unix seconds).")]
Purposes = Annotated[list[PurposeName], Field(min_length=1, max_length=6, examples=[["ads", "email"]])]


def mask_of(purposes: list[PurposeName]) -> int:
    mask = Purpose(0)
    for name in purposes:
        mask |= Purpose[name.upper()]
    return int(mask)


def names_of(mask: int) -> list[PurposeName]:
    return [purpose.name.lower() for purpose in Purpose if purpose.name and mask & purpose]  # type: ignore[misc]


def _decimal(value: str) -> int:
    number = int(value)
    if number > UINT256_MAX:
        raise ValueError("larger than uint256")
    return number


class DomainOut(BaseModel):
    """An EIP-712 domain, as eth_signTypedData_v4 takes it."""

    name: str = Field(examples=["adledger ConsentRegistry"])
    version: str = Field(examples=["1"])
    chainId: int = Field(examples=[31337])  # noqa: N815 - EIP-712's own member name
    verifyingContract: str = Field(examples=[EXAMPLE_ADDRESS])  # noqa: N815

    @classmethod
    def of(cls, domain: Domain) -> DomainOut:
        return cls(**domain.as_dict())


class NoncesOut(BaseModel):
    """What the wallet's next signatures must carry: the nonces and the domains."""

    wallet: str = Field(description="The signed-in wallet, EIP-55.", examples=[EXAMPLE_ADDRESS])
    nonce: int = Field(description="The ConsentRegistry's nonce for the next Grant or Revoke.", examples=[0])
    claim_nonce: int = Field(description="The CampaignEscrow's nonce for the next Claim.", examples=[0])
    permit_nonce: int = Field(description="The reward token's nonce for the next Permit (a transfer).", examples=[0])
    domain: DomainOut = Field(description="The domain Grant, Revoke and Link are signed in.")
    claim_domain: DomainOut = Field(description="The domain Claim is signed in.")
    permit_domain: DomainOut = Field(description="The reward token's domain, which a transfer's Permit is signed in.")
    permit_spender: str = Field(
        description="The spender a transfer's Permit names: the relayer that sends it (EIP-55).",
        examples=[EXAMPLE_ADDRESS],
    )


class GrantIn(BaseModel):
    """A signed Grant(consumer, brand, purposes, expiresAt, nonce, deadline); the consumer is the signed-in wallet
    and the nonce its current one."""

    model_config = ConfigDict(strict=True, extra="forbid")

    brand: Address
    purposes: Purposes
    expires_at: int = Field(ge=0, lt=2**40, description="The consent lapses at this time (unix seconds).")
    deadline: Deadline
    signature: Signature


class RevokeIn(BaseModel):
    """A signed Revoke(consumer, brand, purposes, nonce, deadline)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    brand: Address
    purposes: Purposes
    deadline: Deadline
    signature: Signature


class ClaimIn(BaseModel):
    """A signed Claim(consumer, campaignIds, to, nonce, deadline), the nonce the escrow's."""

    model_config = ConfigDict(strict=True, extra="forbid")

    campaign_ids: list[CampaignId] = Field(min_length=1, max_length=100)
    to: Address = Field(description="Who receives the tokens (often the wallet itself).")
    deadline: Deadline
    signature: Signature


class TransferIn(BaseModel):
    """A signed EIP-2612 Permit(owner, spender, value, nonce, deadline) of the reward token: the owner is the
    signed-in wallet, the spender ``permit_spender`` and the nonce ``permit_nonce`` of GET /v1/consents/nonce.
    The relayer spends exactly ``value``, to ``to``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    to: Address = Field(description="The wallet that receives the tokens.")
    value: str = Field(
        pattern=r"^[0-9]{1,78}$",
        description="Token base units (decimal string), 1 to 2^256 - 1.",
        examples=["10000000000000000"],
    )
    deadline: Deadline
    signature: Signature

    @field_validator("value")
    @classmethod
    def _a_uint256_above_zero(cls, value: str) -> str:
        if not 0 < int(value) <= UINT256_MAX:
            raise ValueError("a transfer moves 1 to 2^256 - 1 base units")
        return value


class RelayedOut(BaseModel):
    """The relayed transaction: mined, not yet final; the indexer shows its effect after its confirmations."""

    action: Literal["grant", "revoke", "claim", "transfer"]
    tx_hash: str = Field(examples=[EXAMPLE_HASH])
    block_number: int
    nonce: int = Field(description="The nonce the signature spent.")
    relayer: str = Field(description="The account that sent it and paid the gas, EIP-55.")

    @classmethod
    def of(cls, relayed: Relayed) -> RelayedOut:
        return cls(
            action=relayed.action,  # type: ignore[arg-type]
            tx_hash=relayed.tx_hash,
            block_number=relayed.block_number,
            nonce=relayed.nonce,
            relayer=checksummed(relayed.relayer),
        )


class ConsentOut(BaseModel):
    """The wallet's current consent to one brand, as indexed, and the log that set it."""

    brand: str = Field(description="EIP-55.")
    purposes: list[PurposeName]
    expires_at: int = Field(description="Active while block time is before this (unix seconds).")
    active: bool = Field(description="Some purpose is held and the expiry has not passed (by this server's clock).")
    block_number: int
    tx_hash: str

    @classmethod
    def of(cls, consent: Consent, now: int) -> ConsentOut:
        return cls(
            brand=checksummed(consent.brand),
            purposes=names_of(consent.purposes),
            expires_at=consent.expires_at,
            active=bool(consent.purposes) and now < consent.expires_at,
            block_number=consent.block_number,
            tx_hash=consent.tx_hash,
        )


class ConsentReceiptOut(BaseModel):
    """One grant or revoke: what was granted to whom, for what, until when, and the transaction that did it."""

    change: Literal["grant", "revoke"]
    brand: str = Field(description="To whom, EIP-55.")
    purposes: list[PurposeName] = Field(description="What this event granted or revoked.")
    held_after: list[PurposeName] = Field(description="Every purpose held after it.")
    expires_at: int | None = Field(description="Until when (grants only), unix seconds.")
    block_number: int
    block_time: int | None = Field(description="The block's time, unix seconds, while the indexer holds it.")
    tx_hash: str
    log_index: int

    @classmethod
    def of(cls, receipt: ConsentReceipt) -> ConsentReceiptOut:
        event = receipt.event
        return cls(
            change=event.change.value,
            brand=checksummed(event.brand),
            purposes=names_of(event.purposes),
            held_after=names_of(event.all_purposes),
            expires_at=event.expires_at,
            block_number=event.block_number,
            block_time=receipt.block_time,
            tx_hash=event.tx_hash,
            log_index=event.log_index,
        )


class LinkIn(BaseModel):
    """A signed Link(wallet, customerId, brand, nonce, deadline) in the registry's domain; the wallet is the
    signed-in one. The nonce is any unused uint256, as a decimal string (it is usually random)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(ge=1, le=2**63 - 1, strict=True)
    brand: Address
    nonce: Annotated[str, Field(pattern=rf"^[0-9]{{1,{UINT256_DIGITS}}}$"), AfterValidator(_decimal)]
    deadline: Deadline
    signature: Signature


class LinkOut(BaseModel):
    """A link of the wallet to a brand's customer record (the record itself is the brand's, not shown)."""

    brand: str = Field(description="EIP-55.")
    chain_id: int
    linked_at: datetime

    @classmethod
    def of(cls, link: WalletLink) -> LinkOut:
        return cls(brand=checksummed(link.brand), chain_id=link.chain_id, linked_at=link.linked_at)


class RejectionOut(BaseModel):
    event_id: int
    reason: RejectReasonName = Field(description="The chain's reason.")
    block_number: int
    tx_hash: str


class CampaignRewardsOut(BaseModel):
    """The wallet's rewards in one campaign."""

    campaign_id: int
    accrued: str = Field(description="Every reward paid, indexed (decimal string).", examples=["1010000000000000000"])
    claimed: str = Field(description="Every claim, indexed.")
    claimable: str = Field(description="What a claim would pay now.")
    claimable_source: Literal["chain", "indexed"] = Field(
        description="chain: the escrow's accountOf view; indexed: accrued - claimed (the chain was unreachable)."
    )
    paid_count: int
    rejected: list[RejectionOut]

    @classmethod
    def of(cls, rewards: CampaignRewards, on_chain: int | None) -> CampaignRewardsOut:
        return cls(
            campaign_id=rewards.campaign_id,
            accrued=str(rewards.accrued),
            claimed=str(rewards.claimed),
            claimable=str(rewards.unclaimed if on_chain is None else on_chain),
            claimable_source="indexed" if on_chain is None else "chain",
            paid_count=rewards.paid_count,
            rejected=[
                RejectionOut(
                    event_id=r.event_id,
                    reason=r.reason.name.lower(),  # type: ignore[arg-type]
                    block_number=r.block_number,
                    tx_hash=r.tx_hash,
                )
                for r in rewards.rejections
            ],
        )


class RewardsOut(BaseModel):
    wallet: str = Field(description="EIP-55.")
    campaigns: list[CampaignRewardsOut]


class RewardOut(BaseModel):
    """One paid engagement: one Rewarded log."""

    campaign_id: int
    event_id: int
    action: ActionName
    amount: str = Field(description="Token base units (decimal string).")
    occurred_at: int
    block_number: int
    tx_hash: str
    log_index: int

    @classmethod
    def of(cls, touchpoint: Touchpoint) -> RewardOut:
        return cls(
            campaign_id=touchpoint.campaign_id,
            event_id=touchpoint.event_id,
            action=touchpoint.action.name.lower(),  # type: ignore[arg-type]
            amount=str(touchpoint.amount),
            occurred_at=touchpoint.occurred_at,
            block_number=touchpoint.block_number,
            tx_hash=touchpoint.tx_hash,
            log_index=touchpoint.log_index,
        )


class RewardPageOut(BaseModel):
    items: list[RewardOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null on the last.")
