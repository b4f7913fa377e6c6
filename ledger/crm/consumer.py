"""What one consumer's wallet may see of the indexed chain: its consents, their receipts, its links and rewards.

Every query is keyed by the wallet, so a caller that passes the signed-in wallet can only ever read its own
rows. Figures come from the indexed logs (each with its tx hash and block); amounts are summed exactly on both
databases (``ledger.crm.sums``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from ledger.crm import sums
from ledger.crm.models import WalletLink
from ledger.crm.onchain import Claim, Consent, ConsentEvent, IndexedBlock, Rejection, Touchpoint
from ledger.errors import InvalidCursor
from ledger.types import normalize_address


@dataclass(frozen=True)
class ConsentReceipt:
    """One ConsentGranted or ConsentRevoked log: what changed, what was held afterwards, and where it is."""

    event: ConsentEvent
    block_time: int | None  # unix seconds, when the indexer still holds the block's header


@dataclass
class CampaignRewards:
    """A wallet's rewards in one campaign, from the indexed logs."""

    campaign_id: int
    accrued: int = 0  # every Rewarded amount
    claimed: int = 0  # every Claimed amount
    paid_count: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def unclaimed(self) -> int:
        return self.accrued - self.claimed


@dataclass(frozen=True)
class RewardPage:
    """Rewards newest first; ``next_cursor`` fetches the older ones (None on the last page)."""

    items: list[Touchpoint]
    next_cursor: str | None


def consents_of(session: Session, *, chain_id: int, registry: str, wallet: str) -> list[Consent]:
    """The wallet's current consent per brand (purposes 0 after a full revoke), brands in the order first granted."""
    return list(
        session.scalars(
            select(Consent)
            .where(
                Consent.chain_id == chain_id,
                Consent.registry_address == normalize_address(registry),
                Consent.consumer == normalize_address(wallet),
            )
            .order_by(Consent.id)
        )
    )


def consent_receipts(session: Session, *, chain_id: int, registry: str, wallet: str) -> list[ConsentReceipt]:
    """Every grant and revoke the wallet made, oldest first, with its block's time when known."""
    rows = session.execute(
        select(ConsentEvent, IndexedBlock.timestamp)
        .outerjoin(
            IndexedBlock,
            and_(IndexedBlock.chain_id == ConsentEvent.chain_id, IndexedBlock.number == ConsentEvent.block_number),
        )
        .where(
            ConsentEvent.chain_id == chain_id,
            ConsentEvent.registry_address == normalize_address(registry),
            ConsentEvent.consumer == normalize_address(wallet),
        )
        .order_by(ConsentEvent.block_number, ConsentEvent.log_index)
    )
    return [ConsentReceipt(event, timestamp) for event, timestamp in rows]


def wallet_links(session: Session, wallet: str) -> list[WalletLink]:
    """The wallet's links to customer records, oldest first (the caller shows brand and time, not the customer)."""
    return list(
        session.scalars(
            select(WalletLink).where(WalletLink.wallet == normalize_address(wallet)).order_by(WalletLink.id)
        )
    )


def rewards_by_campaign(session: Session, *, chain_id: int, escrow: str, wallet: str) -> list[CampaignRewards]:
    """Per campaign the wallet was paid or refused in: accrued, claimed, and the refused engagements."""
    scope = (chain_id, normalize_address(escrow), normalize_address(wallet))
    found: dict[int, CampaignRewards] = {}

    def of(campaign_id: int) -> CampaignRewards:
        if campaign_id not in found:
            found[campaign_id] = CampaignRewards(campaign_id)
        return found[campaign_id]

    paid = sums.count_and_sum(session, Touchpoint.amount, *_mine(Touchpoint, *scope), group_by=Touchpoint.campaign_id)
    for campaign_id, (count, amount) in paid.items():
        rewards = of(campaign_id)
        rewards.accrued, rewards.paid_count = amount, count
    claimed = sums.count_and_sum(session, Claim.amount, *_mine(Claim, *scope), group_by=Claim.campaign_id)
    for campaign_id, (_, amount) in claimed.items():
        of(campaign_id).claimed = amount
    for rejection in session.scalars(
        select(Rejection).where(*_mine(Rejection, *scope)).order_by(Rejection.block_number, Rejection.log_index)
    ):
        of(rejection.campaign_id).rejections.append(rejection)
    return [found[campaign_id] for campaign_id in sorted(found)]


def reward_history(
    session: Session, *, chain_id: int, escrow: str, wallet: str, limit: int, cursor: str | None = None
) -> RewardPage:
    """The wallet's paid engagements newest first, ``limit`` per page; ``cursor`` is a page's ``next_cursor``."""
    query = select(Touchpoint).where(*_mine(Touchpoint, chain_id, normalize_address(escrow), normalize_address(wallet)))
    if cursor is not None:
        block, log = _parse_cursor(cursor)
        query = query.where(
            or_(
                Touchpoint.block_number < block,
                and_(Touchpoint.block_number == block, Touchpoint.log_index < log),
            )
        )
    rows = list(
        session.scalars(query.order_by(Touchpoint.block_number.desc(), Touchpoint.log_index.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = f"{items[-1].block_number}.{items[-1].log_index}" if more and items else None
    return RewardPage(items, next_cursor)


def _mine(
    model: type[Touchpoint] | type[Claim] | type[Rejection], chain_id: int, escrow: str, wallet: str
) -> tuple[ColumnElement[bool], ...]:
    return (model.chain_id == chain_id, model.escrow == escrow, model.consumer == wallet)


def _parse_cursor(cursor: str) -> tuple[int, int]:
    """``"<block>.<log index>"`` of the last row of the previous page."""
    block, _, log = cursor.partition(".")
    if not (block.isdigit() and log.isdigit()) or len(cursor) > 40:
        raise InvalidCursor(f"{cursor!r} is not a cursor of this list")
    return int(block), int(log)
