"""An auditor's proof that a campaign's indexed figures tie out with the chain, one named check at a time.

At the indexer's checkpoint block, the escrow's own view (``campaignState``) must equal the folded state, and the
money must balance from the individual logs: everything funded (the creation budget plus each top-up) less every
paid reward less the refund is the budget left; every reward less every claim is what is still owed; the
per-batch totals the escrow logged (BatchSettled) equal the sum of the individual Rewarded and Rejected logs. A
failed check names both sides, so a missing or forged delivery shows as the amount it moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from ledger.chain import Chain
from ledger.contracts import bind, named_reverts
from ledger.crm import sums
from ledger.crm.campaigns import find_campaign, indexed_block
from ledger.crm.onchain import Campaign, CampaignEvent, CampaignEventKind, Claim, Rejection, Touchpoint
from ledger.errors import CampaignNotIndexed
from ledger.model import CampaignStatus
from ledger.suite import Deployment


@dataclass(frozen=True)
class Check:
    """One equality: ``expected`` (the chain's figure or the escrow's own totals) against ``actual``."""

    name: str
    description: str
    expected: int | str
    actual: int | str

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


@dataclass(frozen=True)
class Verification:
    campaign_id: int
    block_number: int  # the indexer's checkpoint: the chain is read at this block
    checks: list[Check]

    @property
    def verified(self) -> bool:
        return all(check.passed for check in self.checks)


def verify_campaign(session: Session, chain: Chain, deployment: Deployment, campaign_id: int) -> Verification:
    """Every check at the indexer's checkpoint block; the chain is read there, so rows and views agree in time."""
    row = find_campaign(session, chain_id=deployment.chain_id, escrow=deployment.escrow, campaign_id=campaign_id)
    block = indexed_block(session, row.chain_id, row.escrow)
    if block is None:  # a campaign row exists only once a checkpoint covering it was written
        raise CampaignNotIndexed(row.chain_id, row.escrow, campaign_id)
    with named_reverts():
        _, status, budget, owed = (
            bind(chain, "CampaignEscrow", deployment.escrow)
            .functions.campaignState(campaign_id)
            .call(block_identifier=block)
        )
    figures = _figures(session, row, block)
    onchain_status = CampaignStatus(status).name.lower()
    checks = [
        Check("status", "the escrow's status equals the indexed status", onchain_status, row.status.name.lower()),
        Check("budget", "the escrow's budget equals the indexed budget", int(budget), row.budget),
        Check("owed", "the escrow's owed equals the indexed owed", int(owed), row.owed),
        Check(
            "budget_from_logs",
            "funded - paid rewards - refund, from the individual logs, equals the escrow's budget",
            int(budget),
            figures["funded"] - figures["spend"] - figures["refunded"],
        ),
        Check(
            "owed_from_logs",
            "paid rewards - claims, from the individual logs, equals the escrow's owed",
            int(owed),
            figures["spend"] - figures["claimed"],
        ),
        Check(
            "batch_amount",
            "the batches' logged amounts equal the sum of their Rewarded logs",
            figures["batch_amount"],
            figures["spend"],
        ),  # fmt: skip
        Check(
            "batch_paid",
            "the batches' logged paid counts equal the number of Rewarded logs",
            figures["batch_paid"],
            figures["deliveries"],
        ),  # fmt: skip
        Check(
            "batch_rejected",
            "the batches' logged rejected counts equal the number of Rejected logs",
            figures["batch_rejected"],
            figures["rejections"],
        ),  # fmt: skip
    ]
    return Verification(campaign_id, block, checks)


def _figures(session: Session, row: Campaign, block: int) -> dict[str, int]:
    """The campaign's money and counts summed exactly from its individual logs up to ``block``."""

    def of(model: Any) -> tuple[ColumnElement[bool], ...]:
        return (
            model.chain_id == row.chain_id,
            model.escrow == row.escrow,
            model.campaign_id == row.campaign_id,
            model.block_number <= block,
        )

    deliveries, spend = sums.total(session, Touchpoint.amount, *of(Touchpoint))
    rejections = session.scalar(select(func.count()).select_from(Rejection).where(*of(Rejection))) or 0
    _, claimed = sums.total(session, Claim.amount, *of(Claim))
    events = sums.count_and_sum(session, CampaignEvent.amount, *of(CampaignEvent), group_by=CampaignEvent.kind)
    created = sums.total(session, CampaignEvent.budget, *of(CampaignEvent),
                         CampaignEvent.kind == CampaignEventKind.CREATED)[1]  # fmt: skip
    batch_paid = sums.total(session, CampaignEvent.paid_count, *of(CampaignEvent),
                            CampaignEvent.kind == CampaignEventKind.BATCH_SETTLED)[1]  # fmt: skip
    batch_rejected = sums.total(session, CampaignEvent.rejected_count, *of(CampaignEvent),
                                CampaignEvent.kind == CampaignEventKind.BATCH_SETTLED)[1]  # fmt: skip
    return {
        "funded": created + events.get(CampaignEventKind.FUNDED, (0, 0))[1],
        "refunded": events.get(CampaignEventKind.CLOSED, (0, 0))[1],
        "spend": spend,
        "deliveries": deliveries,
        "rejections": rejections,
        "claimed": claimed,
        "batch_amount": events.get(CampaignEventKind.BATCH_SETTLED, (0, 0))[1],
        "batch_paid": batch_paid,
        "batch_rejected": batch_rejected,
    }
