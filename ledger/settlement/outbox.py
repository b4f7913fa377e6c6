"""The engagement outbox: attested engagements accepted into the database, each given its dense on-chain event id.

``accept_engagements`` is the domain half of ``POST /v1/engagements``: it validates each engagement, stores the
new ones in ``outbox_engagements`` and answers, per engagement and in input order, accepted (with its event
id), replay (the same engagement again: its event id and state), conflict (the attester's id already names
another engagement) or invalid (a reason code). It flushes within the caller's transaction and the caller
commits before answering 202, so what was answered accepted is durable. ``engagement_state`` (from
``outbox_state``, re-exported) is the other half, ``GET /v1/engagements/{campaign}/{event_id}``; ``next_queued`` is
the settlement batcher's drain.

Event ids are dense per campaign, from 0 (the escrow keeps settled ids in a bitmap of 256 per storage word, so
dense ids keep the words few), handed out in input order to new engagements only: an invalid engagement, a
replay or a conflict uses none. The per-campaign ``outbox_counters`` row is the allocator, locked and bumped
in the transaction that inserts the rows:

- PostgreSQL: ``SELECT ... FOR UPDATE`` on the counter row serialises a campaign's intake, and the lookup of
  existing attester ids runs after it, so it sees every committed engagement (READ COMMITTED, the default;
  under REPEATABLE READ or SERIALIZABLE a concurrent intake fails with a serialization error, to retry).
- SQLite: a writer holds the whole outbox file (ledger.db). Callers must open the transaction with
  ``session.connection(execution_options={ledger.db.SQLITE_IMMEDIATE: ledger.db.OUTBOX})`` (or leave the session
  without a transaction, and this module does it): a deferred transaction that read before another writer
  committed cannot write afterwards. The campaign is read from the main file meanwhile, whose writers (the
  indexer) go on.

The first plan takes every engagement for new, the usual case, and lets the unique key on the attester's ids
say otherwise: when the insert skips one (a replay, or a concurrent writer outside this discipline that stored
it first), the whole insert is rolled back to a savepoint and planned again with the stored ids looked up, so
that engagement becomes a replay and the ids stay dense. Looking up first cost more than the insert itself:
on PostgreSQL, while a fresh table's statistics lag, the planner reads the campaign's every row for it (~40 ms
per 100 engagements at 20,000 rows, growing with the table).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ledger.crm.onchain import Campaign
from ledger.db import (
    OUTBOX,
    SQLITE_IMMEDIATE,
    bind_rows,
    insert_bound_rows_ignoring_duplicates,
    insert_ignoring_duplicates,
)
from ledger.errors import CampaignNotIndexed, CampaignNotOpen, EventIdsExhausted, TooManyEngagements
from ledger.model import Action, CampaignStatus
from ledger.settlement.batch import MAX_EVENT_ID, MAX_TIME, Engagement
from ledger.settlement.outbox_models import (
    ATTESTER_REF_MAX,
    MAX_CAMPAIGN_ID,
    EngagementStatus,
    OutboxCounter,
    OutboxEngagement,
)
from ledger.settlement.outbox_state import EngagementState, engagement_state, is_uint, state_query, states_of
from ledger.types import normalize_address, normalize_bytes32

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "MAX_PER_CALL",
    "EngagementIn",
    "EngagementState",
    "IntakeOutcome",
    "IntakeProblem",
    "IntakeResult",
    "accept_engagements",
    "engagement_state",
    "QueuedEngagement",
    "next_queued",
]

# An engagement may be stamped up to this far after the server's `now`: attesters' clocks run a little ahead of
# ours. The batcher holds such an engagement until the chain's time has passed it (`next_queued(until=...)`), as
# the escrow rejects an engagement later than the settling block (TimeInFuture).
CLOCK_SKEW_SECONDS = 60
# Engagements per intake call: bounds the IN lists, the insert and the time the counter lock is held.
MAX_PER_CALL = 1_000
# How often the insert is planned: once taking every engagement for new, then with the stored ids looked up,
# again when a concurrent writer stored one of them meanwhile.
_INSERT_ATTEMPTS = 4
_REF_KEY = ("chain_id", "escrow", "campaign_id", "attester", "attester_ref")
_ZERO_ADDRESS = "0x" + "00" * 20


class IntakeOutcome(StrEnum):
    ACCEPTED = "accepted"  # new: stored with a new event id
    REPLAY = "replay"  # the attester sent this engagement before: nothing stored, its event id and state
    CONFLICT = "conflict"  # the attester's id names another engagement: nothing stored, the stored one's event id
    INVALID = "invalid"  # refused, with a reason code: nothing stored, no event id used


class IntakeProblem(StrEnum):
    """Why one engagement was not accepted; stable codes, like ``LedgerError.code``."""

    INVALID_ATTESTER_REF = "invalid_attester_ref"
    INVALID_ADDRESS = "invalid_address"
    ZERO_ADDRESS = "zero_address"
    INVALID_ACTION = "invalid_action"
    INVALID_TIME = "invalid_time"
    TIME_IN_FUTURE = "time_in_future"
    BEFORE_CAMPAIGN_START = "before_campaign_start"
    AFTER_CAMPAIGN_END = "after_campaign_end"
    INVALID_EVIDENCE_HASH = "invalid_evidence_hash"
    CONFLICT = "engagement_conflict"


@dataclass(frozen=True)
class EngagementIn:
    """One engagement as an attester reports it. ``attester_ref`` is the attester's own id for it (1 to 128
    printable characters, compared exactly): sending it again is a replay, never a second engagement."""

    consumer: str  # the consumer's wallet, 0x-hex (any case; mixed case must be a valid checksum)
    action: Action
    occurred_at: int  # unix seconds
    evidence_hash: str  # 0x + 64 hex digits (or 32 bytes): the attester's hash of its evidence
    attester_ref: str


@dataclass(frozen=True)
class IntakeResult:
    """The answer for one engagement of an intake call. ``state`` is the stored engagement (for accepted, replay
    and conflict); ``code`` and ``message`` say what is wrong (conflict and invalid)."""

    outcome: IntakeOutcome
    attester_ref: str
    event_id: int | None = None
    state: EngagementState | None = None
    code: IntakeProblem | None = None
    message: str | None = None


@dataclass(frozen=True)
class _Valid:
    ref: str
    consumer: str
    action: Action
    occurred_at: int
    evidence_hash: str

    @property
    def content(self) -> tuple[str, Action, int, str]:
        return (self.consumer, self.action, self.occurred_at, self.evidence_hash)


@dataclass(frozen=True)
class _Campaign:
    chain_id: int
    escrow: str
    campaign_id: int
    starts_at: int
    ends_at: int


def accept_engagements(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    attester: str,
    engagements: Iterable[EngagementIn],
    now: int,
) -> list[IntakeResult]:
    """Validates and stores ``engagements`` reported by ``attester`` for one campaign; one result per engagement,
    in input order (see the module doc). ``now`` is unix seconds.

    Raises CampaignNotIndexed (no such campaign in the index), CampaignNotOpen (closed), TooManyEngagements
    (more than MAX_PER_CALL) or EventIdsExhausted, storing nothing; ValueError for a malformed ``escrow`` or
    ``attester`` (the server's values, not the attester's input). Invalid engagements never stop valid ones; an
    invalid one is reported invalid even if its attester_ref is stored (it is validated before it is looked up).
    Flushes within the caller's transaction (begun here with SQLite's write lock when none is open); the caller
    commits.
    """
    items = list(engagements)
    if len(items) > MAX_PER_CALL:
        raise TooManyEngagements(f"{len(items)} engagements in one call; at most {MAX_PER_CALL}")
    escrow, attester = normalize_address(escrow), normalize_address(attester)
    if attester == _ZERO_ADDRESS:
        raise ValueError("the attester cannot be the zero address")
    checked = [_validate(item, now) for item in items]  # before the write lock: every writer waits for it
    if not session.in_transaction():
        session.connection(execution_options={SQLITE_IMMEDIATE: OUTBOX})  # lookups and inserts under one write lock
    campaign = _open_campaign(session, chain_id, escrow, campaign_id)
    results: list[IntakeResult | None] = [None] * len(items)
    valid: list[tuple[int, _Valid]] = []
    for index, item in enumerate(checked):
        if isinstance(item, _Valid):
            item = _within_campaign(item, campaign)
        if isinstance(item, _Valid):
            valid.append((index, item))
        else:
            results[index] = item
    if valid:
        next_id = _lock_counter(session, campaign)
        accepted_at = datetime.fromtimestamp(now, UTC)
        for attempt in range(_INSERT_ATTEMPTS):
            planned, new_rows = _plan(session, campaign, attester, valid, next_id, accepted_at, look_up=attempt > 0)
            if next_id + len(new_rows) - 1 > MAX_EVENT_ID:
                if attempt == 0:
                    continue  # some may be replays, which take no id
                top = next_id + len(new_rows) - 1
                raise EventIdsExhausted(f"campaign {campaign_id} would need event id {top}, past 2**48 - 1")
            if _insert_all(session, new_rows):
                break
        else:  # only a writer that ignores the counter lock can get here, again and again
            raise RuntimeError(f"engagement intake for campaign {campaign_id} kept losing races for its attester ids")
        if new_rows:
            session.execute(
                update(OutboxCounter).where(*_counter_key(campaign)).values(next_event_id=next_id + len(new_rows))
            )
        for index, result in planned:
            results[index] = result
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


@dataclass(frozen=True, slots=True)
class QueuedEngagement:
    """A queued outbox row as the batcher uses it, as plain values: it reads the queue every cycle, and loading
    ORM objects cost more than the rest of its pre-checks."""

    id: int
    consumer: str
    action: Action
    event_id: int
    occurred_at: int
    evidence_hash: str
    accepted_at: datetime

    def engagement(self) -> Engagement:
        """The row as ``ledger.settlement.batch`` packs it into settle()."""
        return Engagement(
            consumer=self.consumer,
            action=self.action,
            event_id=self.event_id,
            time=self.occurred_at,
            evidence=bytes.fromhex(self.evidence_hash[2:]),
        )


def next_queued(
    session: Session,
    *,
    chain_id: int,
    escrow: str,
    campaign_id: int,
    limit: int,
    attester: str | None = None,
    until: int | None = None,
) -> list[QueuedEngagement]:
    """The campaign's oldest queued engagements (first accepted, first out), at most ``limit``, in settle() order:
    by consumer, then time, then event id, as the escrow wants each consumer's engagements in time order (a
    daily-capped action from a day before the consumer's latest is StaleDay). ``attester`` keeps only its
    engagements (a batch is reported by one attester); ``until`` (the chain's latest block time) holds back
    engagements stamped later, which the escrow would reject as TimeInFuture."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    query = select(*(getattr(OutboxEngagement, field.name) for field in fields(QueuedEngagement))).where(
        OutboxEngagement.status == EngagementStatus.QUEUED,
        OutboxEngagement.chain_id == chain_id,
        OutboxEngagement.escrow == normalize_address(escrow),
        OutboxEngagement.campaign_id == campaign_id,
    )
    if attester is not None:
        query = query.where(OutboxEngagement.attester == normalize_address(attester))
    if until is not None:
        query = query.where(OutboxEngagement.occurred_at <= until)
    rows = [QueuedEngagement(*row) for row in session.execute(query.order_by(OutboxEngagement.id).limit(limit))]
    return sorted(rows, key=lambda row: (row.consumer, row.occurred_at, row.event_id))


# -- intake -------------------------------------------------------------------------------------------------------


def _open_campaign(session: Session, chain_id: int, escrow: str, campaign_id: int) -> _Campaign:
    if not (is_uint(chain_id, 2**63 - 1) and is_uint(campaign_id, MAX_CAMPAIGN_ID)):
        raise CampaignNotIndexed(chain_id, escrow, campaign_id)
    found = session.execute(
        select(Campaign.starts_at, Campaign.ends_at, Campaign.status).where(
            Campaign.chain_id == chain_id, Campaign.escrow == escrow, Campaign.campaign_id == campaign_id
        )
    ).one_or_none()
    if found is None:
        raise CampaignNotIndexed(chain_id, escrow, campaign_id)
    starts_at, ends_at, status = found
    if status not in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):  # paused: queued until the marketer unpauses
        raise CampaignNotOpen(campaign_id, CampaignStatus(status).name.lower())
    return _Campaign(chain_id, escrow, campaign_id, starts_at, ends_at)


def _validate(item: EngagementIn, now: int) -> _Valid | IntakeResult:
    """The engagement in canonical form, or the invalid result naming its first problem; the campaign's dates are
    checked next, by ``_within_campaign``."""
    ref = item.attester_ref
    if not isinstance(ref, str) or not 0 < len(ref) <= ATTESTER_REF_MAX or not ref.isprintable():
        return _invalid(
            ref,
            IntakeProblem.INVALID_ATTESTER_REF,
            f"attester_ref {ref!r} must be 1 to {ATTESTER_REF_MAX} printable characters",
        )
    try:
        consumer = normalize_address(item.consumer)
    except ValueError as exc:
        return _invalid(ref, IntakeProblem.INVALID_ADDRESS, f"consumer: {exc}")
    if consumer == _ZERO_ADDRESS:
        return _invalid(ref, IntakeProblem.ZERO_ADDRESS, "the consumer cannot be the zero address")
    try:
        if isinstance(item.action, bool) or not isinstance(item.action, int):
            raise ValueError
        action = Action(item.action)
    except ValueError:
        valid = ", ".join(f"{a.value} ({a.name.lower()})" for a in Action)
        return _invalid(ref, IntakeProblem.INVALID_ACTION, f"action {item.action!r} is not one of {valid}")
    when = item.occurred_at
    if isinstance(when, bool) or not isinstance(when, int) or not 0 <= when <= MAX_TIME:
        return _invalid(ref, IntakeProblem.INVALID_TIME, f"occurred_at {when!r} is not unix seconds in [0, 2**40 - 1]")
    if when > now + CLOCK_SKEW_SECONDS:
        return _invalid(
            ref,
            IntakeProblem.TIME_IN_FUTURE,
            f"occurred_at {when} is {when - now} s in the future (at most {CLOCK_SKEW_SECONDS} s of clock skew)",
        )
    try:
        evidence = normalize_bytes32(item.evidence_hash)
    except ValueError as exc:
        return _invalid(ref, IntakeProblem.INVALID_EVIDENCE_HASH, f"evidence_hash: {exc}")
    return _Valid(ref, consumer, action, when, evidence)


def _within_campaign(item: _Valid, campaign: _Campaign) -> _Valid | IntakeResult:
    """``item``, or the invalid result when it happened outside the campaign's dates."""
    when = item.occurred_at
    if when < campaign.starts_at:
        message = f"occurred_at {when} is before the campaign starts ({campaign.starts_at})"
        return _invalid(item.ref, IntakeProblem.BEFORE_CAMPAIGN_START, message)
    if when > campaign.ends_at:
        message = f"occurred_at {when} is after the campaign ends ({campaign.ends_at})"
        return _invalid(item.ref, IntakeProblem.AFTER_CAMPAIGN_END, message)
    return item


def _invalid(ref: Any, code: IntakeProblem, message: str) -> IntakeResult:
    """The result of an engagement refused before it was stored."""
    return IntakeResult(IntakeOutcome.INVALID, ref, code=code, message=message)


def _lock_counter(session: Session, campaign: _Campaign) -> int:
    """The campaign's next event id, its counter row locked until the transaction ends (created at 0 if new)."""
    query = select(OutboxCounter.next_event_id).where(*_counter_key(campaign)).with_for_update()
    next_id = session.scalar(query)
    if next_id is None:
        # two first intakes race here: on PostgreSQL the second insert waits for the first to commit, then skips
        row = {"chain_id": campaign.chain_id, "escrow": campaign.escrow, "campaign_id": campaign.campaign_id}
        insert_ignoring_duplicates(
            session, OutboxCounter, [row | {"next_event_id": 0}], conflict_columns=("chain_id", "escrow", "campaign_id")
        )
        next_id = session.scalar(query)
        assert next_id is not None
    return next_id


def _counter_key(campaign: _Campaign) -> tuple[Any, ...]:
    return (
        OutboxCounter.chain_id == campaign.chain_id,
        OutboxCounter.escrow == campaign.escrow,
        OutboxCounter.campaign_id == campaign.campaign_id,
    )


def _plan(
    session: Session,
    campaign: _Campaign,
    attester: str,
    valid: list[tuple[int, _Valid]],
    next_id: int,
    accepted_at: datetime,
    *,
    look_up: bool,
) -> tuple[list[tuple[int, IntakeResult]], list[dict[str, Any]]]:
    """Each valid engagement's result, and the rows to insert for the new ones: against what is stored now with
    ``look_up``, else taking every one for new (see the module doc).

    Which refs are stored is asked first on the unique key alone: the state query (joined with the chain's rows)
    costs a PostgreSQL round trip of ~12 ms per 100 refs."""
    mine = (
        OutboxEngagement.chain_id == campaign.chain_id,
        OutboxEngagement.escrow == campaign.escrow,
        OutboxEngagement.campaign_id == campaign.campaign_id,
        OutboxEngagement.attester == attester,
    )
    known: set[str] = set()
    if look_up:
        refs = {item.ref for _, item in valid}
        stored_refs = select(OutboxEngagement.attester_ref).where(*mine, OutboxEngagement.attester_ref.in_(refs))
        known = set(session.scalars(stored_refs))
    stored = (
        {
            row.attester_ref: row
            for row in session.execute(state_query().where(*mine, OutboxEngagement.attester_ref.in_(known)))
        }
        if known
        else {}
    )
    states = states_of(session, list(stored.values()))
    earlier = {ref: states[row.event_id] for ref, row in stored.items()}
    planned: list[tuple[int, IntakeResult]] = []
    new_rows: list[dict[str, Any]] = []
    for index, item in valid:
        state = earlier.get(item.ref)
        if state is None:
            event_id = next_id + len(new_rows)
            state = EngagementState(
                chain_id=campaign.chain_id,
                escrow=campaign.escrow,
                campaign_id=campaign.campaign_id,
                event_id=event_id,
                attester=attester,
                attester_ref=item.ref,
                consumer=item.consumer,
                action=item.action,
                occurred_at=item.occurred_at,
                evidence_hash=item.evidence_hash,
                status=EngagementStatus.QUEUED,
                accepted_at=accepted_at,
            )
            earlier[item.ref] = state  # a repeat later in this call is a replay of this one
            new_rows.append(_row(state))
            planned.append((index, IntakeResult(IntakeOutcome.ACCEPTED, item.ref, event_id, state)))
        elif _content(state) == item.content:
            planned.append((index, IntakeResult(IntakeOutcome.REPLAY, item.ref, state.event_id, state)))
        else:
            message = (
                f"attester_ref {item.ref!r} is already event {state.event_id} with another "
                f"{', '.join(_differences(state, item))}: not changed"
            )
            result = IntakeResult(
                IntakeOutcome.CONFLICT, item.ref, state.event_id, state, IntakeProblem.CONFLICT, message
            )
            planned.append((index, result))
    return planned, new_rows


def _insert_all(session: Session, rows: Sequence[dict[str, Any]]) -> bool:
    """Inserts every row, or none when a concurrent writer stored one of their attester ids first."""
    if not rows:
        return True
    savepoint = session.begin_nested()
    columns = list(rows[0])
    bound = bind_rows(OutboxEngagement, columns, [[row[name] for name in columns] for row in rows],
                      session.get_bind().dialect)  # fmt: skip
    inserted = insert_bound_rows_ignoring_duplicates(session, OutboxEngagement, columns, bound, _REF_KEY)
    if inserted == len(rows):
        savepoint.commit()
        return True
    savepoint.rollback()
    return False


def _row(state: EngagementState) -> dict[str, Any]:
    return {
        "chain_id": state.chain_id,
        "escrow": state.escrow,
        "campaign_id": state.campaign_id,
        "attester": state.attester,
        "attester_ref": state.attester_ref,
        "event_id": state.event_id,
        "consumer": state.consumer,
        "action": int(state.action),
        "occurred_at": state.occurred_at,
        "evidence_hash": state.evidence_hash,
        "status": EngagementStatus.QUEUED,
        "accepted_at": state.accepted_at,
        "updated_at": state.accepted_at,
    }


def _content(state: EngagementState) -> tuple[str, Action, int, str]:
    return (state.consumer, state.action, state.occurred_at, state.evidence_hash)


def _differences(state: EngagementState, item: _Valid) -> list[str]:
    names = ("consumer", "action", "occurred_at", "evidence_hash")
    return [name for name, old, new in zip(names, _content(state), item.content, strict=True) if old != new]
