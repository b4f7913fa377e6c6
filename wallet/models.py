"""The API's answers as the wallet reads them: the fields it uses, validated, amounts as Python ints.

These mirror ``api/schemas`` (the wallet never imports ``api``): a changed field fails here, at the boundary,
with the field's name, rather than deep in a command. Unknown fields are ignored, so the API may add some.
Amounts arrive as decimal strings of base units, are ints inside, and are written back as decimal strings by
``model_dump(mode="json")`` (what ``--json`` prints), since JSON numbers lose precision past 2^53.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from ledger.typed_data import Domain


def _base_units(value: object) -> int:
    """Only decimal strings or ints: pydantic's lax int would also take 1.5e18 as a float, losing digits."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("an amount is a decimal string of base units")


Amount = Annotated[int, BeforeValidator(_base_units), PlainSerializer(str, return_type=str, when_used="json")]


class Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class IssuedNonce(Answer):
    nonce: str
    expires_at: datetime
    domain: str
    chain_id: int


class Session(Answer):
    token: str
    address: str
    expires_at: datetime


class DomainAnswer(Answer):
    name: str
    version: str
    chainId: int  # noqa: N815 - EIP-712's member name, as the API writes it
    verifyingContract: str  # noqa: N815

    def domain(self) -> Domain:
        return Domain(self.name, self.chainId, self.verifyingContract, self.version)


class Nonces(Answer):
    """GET /v1/consents/nonce: what the wallet's next signatures must carry."""

    wallet: str
    nonce: int
    claim_nonce: int
    permit_nonce: int
    domain: DomainAnswer
    claim_domain: DomainAnswer
    permit_domain: DomainAnswer
    permit_spender: str


class Relayed(Answer):
    """A relayed action's transaction: mined, shown by the reads once the indexer has read its block."""

    action: Literal["grant", "revoke", "claim", "transfer"]
    tx_hash: str
    block_number: int
    nonce: int
    relayer: str


class Consent(Answer):
    brand: str
    purposes: list[str]
    expires_at: int
    active: bool
    block_number: int
    tx_hash: str


class ConsentReceipt(Answer):
    change: Literal["grant", "revoke"]
    brand: str
    purposes: list[str]
    held_after: list[str]
    expires_at: int | None
    block_number: int
    block_time: int | None
    tx_hash: str
    log_index: int


class Link(Answer):
    brand: str
    chain_id: int
    linked_at: datetime


class Rejection(Answer):
    event_id: int
    reason: str
    block_number: int
    tx_hash: str


class CampaignRewards(Answer):
    campaign_id: int
    accrued: Amount
    claimed: Amount
    claimable: Amount
    claimable_source: Literal["chain", "indexed"]
    paid_count: int
    rejected: list[Rejection]


class Rewards(Answer):
    wallet: str
    campaigns: list[CampaignRewards]


class Reward(Answer):
    campaign_id: int
    event_id: int
    action: str
    amount: Amount
    occurred_at: int
    block_number: int
    tx_hash: str
    log_index: int


class RewardPage(Answer):
    items: list[Reward]
    next_cursor: str | None
