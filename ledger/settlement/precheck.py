"""The batcher's pre-checks: which queued engagements to send now and which to hold, as pure rules.

An event id is consumed by its first outcome, paid or rejected, so what may still succeed later stays queued
(consent not yet held within a grace, budget) and what fails for good is sent so the chain records why (see
``batcher``'s module docstring for the whole policy). Pure functions of the campaign's terms, the consumers'
packed consent records and the chain's time: tested without a chain.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum

from ledger.settlement.outbox import QueuedEngagement

# IConsentRegistry's packed record: purposes (8 bits), expiry (40 bits) at 8, a 32-bit grant time per purpose at 64
_EXPIRY_MASK, _GRANT_MASK = (1 << 40) - 1, (1 << 32) - 1


class Hold(StrEnum):
    """Why a queued engagement stays queued this cycle (``SettleReport.held``)."""

    NO_CONSENT_YET = "no_consent_yet"
    BUDGET = "budget"
    CAMPAIGN_PAUSED = "campaign_paused"
    CAMPAIGN_CLOSED = "campaign_closed"
    UNKNOWN_CAMPAIGN = "unknown_campaign"
    NOT_ATTESTER = "not_attester"
    FEE_CAP = "fee_cap"
    AFTER_REVERT = "after_revert"  # the campaign's last batch reverted for a reason no pre-check foresees
    WAITING = "waiting"  # follow: in a batch neither full by gas nor old enough yet


class ConsentVerdict(Enum):
    GRANTED = "granted"  # the escrow will count it (unless it is revoked or expires before the batch is mined)
    REFUSED = "refused"  # NoConsent for good: send it, the chain records the rejection
    NOT_YET = "not_yet"  # not held now, within the grace: keep it queued


@dataclass(frozen=True)
class CampaignRules:
    """A campaign's terms as settlement needs them; fixed at creation, so read once per process."""

    brand: str
    starts_at: int
    ends_at: int
    rewards: tuple[int, ...]  # per Action
    purposes: tuple[int, ...]  # per Action; 0 = not offered


@dataclass(frozen=True)
class CampaignView:
    """A campaign as one cycle sees it at the latest block."""

    rules: CampaignRules | None
    budget: int
    hold: Hold | None  # set when the whole campaign waits


def consent_verdict(record: int, required: int, occurred_at: int, now: int, grace: int) -> ConsentVerdict:
    """What the escrow will say about consent for an engagement at ``occurred_at`` needing ``required`` purposes,
    given the consumer's packed record (IConsentRegistry layout) as of the block at ``now``."""
    held = record & 0xFF
    expires_at = (record >> 8) & _EXPIRY_MASK
    if now < expires_at and held & required == required:
        granted = [(record >> (64 + 32 * i)) & _GRANT_MASK for i in range(6) if required >> i & 1]
        # a held purpose's grant time only ever moves later (revoke and grant, or lapse and grant): final
        return ConsentVerdict.GRANTED if all(at <= occurred_at for at in granted) else ConsentVerdict.REFUSED
    return ConsentVerdict.NOT_YET if now - occurred_at < grace else ConsentVerdict.REFUSED


def select_ready(
    rows: Sequence[QueuedEngagement],
    rules: CampaignRules,
    budget: int,
    consents: Mapping[str, int],
    now: int,
    grace: int,
) -> tuple[list[QueuedEngagement], Counter[str]]:
    """The rows to send now, in the given (consumer, time) order, and how many are held by reason.

    ``budget`` is what the campaign can still pay after our unmined batches; every engagement that may be paid
    reserves its reward (a cap may still reject it: conservative), so nothing sent is BudgetExhausted.
    """
    ready: list[QueuedEngagement] = []
    held: Counter[str] = Counter()
    blocked: dict[str, Hold] = {}  # consumer -> why an earlier engagement of theirs is held
    for row in rows:
        if row.consumer in blocked:
            held[blocked[row.consumer]] += 1
            continue
        action = int(row.action)
        required = rules.purposes[action]
        payable = required != 0 and rules.starts_at <= row.occurred_at <= rules.ends_at
        if payable:
            verdict = consent_verdict(consents.get(row.consumer, 0), required, row.occurred_at, now, grace)
            if verdict is ConsentVerdict.NOT_YET:
                blocked[row.consumer] = Hold.NO_CONSENT_YET
                held[Hold.NO_CONSENT_YET] += 1
                continue
            payable = verdict is ConsentVerdict.GRANTED
        if payable:
            if rules.rewards[action] > budget:
                blocked[row.consumer] = Hold.BUDGET
                held[Hold.BUDGET] += 1
                continue
            budget -= rules.rewards[action]
        ready.append(row)
    return ready, held
