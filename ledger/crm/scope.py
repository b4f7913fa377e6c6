"""Who may see the CRM: a marketer, i.e. a wallet that created at least one indexed campaign.

Customers are records the brand's team shares (they have no owner column), so every marketer reads and writes
them alike. What a customer did on chain is narrower: a marketer sees the touchpoints, rejections and claims of
its own campaigns, and the consent events for the brands its campaigns pay for.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.crm.models import Campaign
from ledger.errors import AccessDenied
from ledger.types import normalize_address

CampaignKey = tuple[int, str, int]  # (chain_id, escrow, campaign_id), as the chain rows name a campaign


@dataclass(frozen=True)
class MarketerScope:
    """A signed-in marketer and what of the chain it may see."""

    address: str  # lowercase 0x-hex
    campaigns: frozenset[CampaignKey]
    brands: frozenset[str]


def marketer_scope(session: Session, address: str) -> MarketerScope:
    """The marketer's campaigns and brands; AccessDenied when the wallet created no indexed campaign."""
    wallet = normalize_address(address)
    rows = session.execute(
        select(Campaign.chain_id, Campaign.escrow, Campaign.campaign_id, Campaign.brand).where(
            Campaign.marketer == wallet
        )
    ).all()
    if not rows:
        raise AccessDenied(f"{wallet} is not the marketer of any indexed campaign: the CRM is for marketers")
    return MarketerScope(
        address=wallet,
        campaigns=frozenset((chain_id, escrow, campaign_id) for chain_id, escrow, campaign_id, _ in rows),
        brands=frozenset(brand for *_, brand in rows),
    )
