"""Current state (campaigns, consents) folded from the event rows, so it can always be rebuilt from the chain.

A campaign's status, budget, owed and refund are a left fold over its campaign events and claims in chain
order. After a reorg the fold is redone from the remaining rows (``refold_campaigns``). Going forward, a page
holds only logs above the cursor, so every one of them comes after everything already folded: the fold goes on
from the stored state with just the page's items (``fold_campaigns_forward``), which costs the page, not the
campaign's whole history. Both paths share ``_fold``, so they cannot disagree.

(block_number, log_index) orders logs totally: a log index counts within its block, not its transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.crm.onchain import Campaign, CampaignEvent, CampaignEventKind, Claim, Consent, ConsentChange, ConsentEvent
from ledger.model import CampaignStatus

# Consumers per IN (...) query when re-folding consents (well below SQLite's 32,766 parameters).
_CONSUMER_CHUNK = 5_000


@dataclass(frozen=True)
class FoldItem:
    """One log in a campaign's fold: a campaign event (``kind`` set) or a claim (``kind`` None, pays ``amount``)."""

    block_number: int
    log_index: int
    kind: CampaignEventKind | None
    amount: int | None = None
    budget: int | None = None
    owed: int | None = None

    @classmethod
    def of_row(cls, row: Mapping[str, Any], claim: bool) -> FoldItem:
        """From a campaign_events (or, ``claim``, claims) row as a dict of column values."""
        return cls(
            int(row["block_number"]),
            int(row["log_index"]),
            None if claim else CampaignEventKind(row["kind"]),
            row.get("amount"),
            row.get("budget"),
            row.get("owed"),
        )


def _fold(row: Campaign, items: Iterable[FoldItem]) -> None:
    """Applies ``items`` (in chain order, all after what ``row`` already holds) to the campaign's state."""
    status, budget, owed, refunded, updated = row.status, row.budget, row.owed, row.refunded, row.updated_block
    for item in items:
        updated = max(updated, item.block_number)
        kind = item.kind
        if kind is None:  # a claim pays out of what is owed
            owed -= item.amount or 0
        elif kind in (CampaignEventKind.CREATED, CampaignEventKind.FUNDED) and item.budget is not None:
            budget = item.budget
        elif kind == CampaignEventKind.BATCH_SETTLED:
            budget = item.budget if item.budget is not None else budget
            owed += item.amount or 0
        elif kind == CampaignEventKind.PAUSED:
            status = CampaignStatus.PAUSED
        elif kind == CampaignEventKind.UNPAUSED:
            status = CampaignStatus.ACTIVE
        elif kind == CampaignEventKind.CLOSED:
            status, budget, refunded = CampaignStatus.CLOSED, 0, item.amount or 0
            owed = item.owed if item.owed is not None else owed
    row.status, row.budget, row.owed, row.refunded, row.updated_block = status, budget, owed, refunded, updated


def _ordered(items: Iterable[FoldItem]) -> list[FoldItem]:
    return sorted(items, key=lambda item: (item.block_number, item.log_index))


def _campaign(session: Session, chain_id: int, escrow: str, campaign_id: int) -> Campaign | None:
    return session.execute(
        select(Campaign).where(
            Campaign.chain_id == chain_id, Campaign.escrow == escrow, Campaign.campaign_id == campaign_id
        )
    ).scalar_one_or_none()


def refold_campaigns(session: Session, chain_id: int, campaigns: Iterable[tuple[str, int]]) -> None:
    """Recomputes each campaign's state from all its remaining events and claims (after a reorg)."""
    for escrow, campaign_id in campaigns:
        row = _campaign(session, chain_id, escrow, campaign_id)
        if row is None:  # its creation was rolled back too
            continue
        events = session.execute(
            select(CampaignEvent).where(
                CampaignEvent.chain_id == chain_id,
                CampaignEvent.escrow == escrow,
                CampaignEvent.campaign_id == campaign_id,
            )
        ).scalars()
        claims = session.execute(
            select(Claim.block_number, Claim.log_index, Claim.amount).where(
                Claim.chain_id == chain_id, Claim.escrow == escrow, Claim.campaign_id == campaign_id
            )
        ).all()
        items = [FoldItem(e.block_number, e.log_index, e.kind, e.amount, e.budget, e.owed) for e in events]
        items += [FoldItem(int(b), int(i), None, int(a)) for b, i, a in claims]
        row.status, row.budget, row.owed, row.refunded = CampaignStatus.ACTIVE, 0, 0, 0
        row.updated_block = row.block_number
        _fold(row, _ordered(items))
    session.flush()


def fold_campaigns_forward(session: Session, chain_id: int, items: Mapping[tuple[str, int], list[FoldItem]]) -> None:
    """Folds a page's items into each campaign's stored state; every item lies above the stored cursor."""
    for (escrow, campaign_id), campaign_items in items.items():
        row = _campaign(session, chain_id, escrow, campaign_id)
        if row is None:  # an event of a campaign this deployment never created: nothing to fold into
            continue
        _fold(row, _ordered(campaign_items))
    session.flush()


def refold_consents(session: Session, chain_id: int, pairs: Iterable[tuple[str, str, str]]) -> None:
    """Sets each (registry, consumer, brand) consent to what its latest remaining event says, or removes it.

    Set-based: one query for the events and one for the current rows per registry and chunk of consumers, so a
    page of thousands of first-time grants costs a few queries, not three per consumer.
    """
    by_registry: dict[str, set[tuple[str, str]]] = {}
    for registry, consumer, brand in pairs:
        by_registry.setdefault(registry, set()).add((consumer, brand))
    for registry, wanted in by_registry.items():
        consumers = sorted({consumer for consumer, _ in wanted})
        for start in range(0, len(consumers), _CONSUMER_CHUNK):
            chunk = consumers[start : start + _CONSUMER_CHUNK]
            _refold_chunk(session, chain_id, registry, chunk, wanted)
    session.flush()


def _refold_chunk(
    session: Session, chain_id: int, registry: str, consumers: list[str], wanted: set[tuple[str, str]]
) -> None:
    events: dict[tuple[str, str], list[ConsentEvent]] = {}
    query = (
        select(ConsentEvent)
        .where(
            ConsentEvent.chain_id == chain_id,
            ConsentEvent.registry_address == registry,
            ConsentEvent.consumer.in_(consumers),
        )
        .order_by(ConsentEvent.block_number, ConsentEvent.log_index)
    )
    for event in session.execute(query).scalars():
        events.setdefault((event.consumer, event.brand), []).append(event)
    current = {
        (row.consumer, row.brand): row
        for row in session.execute(
            select(Consent).where(
                Consent.chain_id == chain_id, Consent.registry_address == registry, Consent.consumer.in_(consumers)
            )
        ).scalars()
    }
    in_chunk = set(consumers)
    for consumer, brand in wanted:
        if consumer not in in_chunk:
            continue
        _refold_pair(session, chain_id, registry, consumer, brand, events.get((consumer, brand), []),
                     current.get((consumer, brand)))  # fmt: skip


def _refold_pair(
    session: Session,
    chain_id: int,
    registry: str,
    consumer: str,
    brand: str,
    events: list[ConsentEvent],
    current: Consent | None,
) -> None:
    if not events:
        if current is not None:
            session.delete(current)
        return
    latest = events[-1]
    grants = [e for e in events if e.change == ConsentChange.GRANT and e.expires_at is not None]
    expires_at = grants[-1].expires_at if grants else 0
    if current is None:
        current = Consent(chain_id=chain_id, registry_address=registry, consumer=consumer, brand=brand)
        session.add(current)
    current.purposes = latest.all_purposes
    current.expires_at = int(expires_at or 0)
    current.block_number, current.tx_hash, current.log_index = latest.block_number, latest.tx_hash, latest.log_index
