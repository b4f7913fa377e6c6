"""The auditor's cross-check: every chain-derived CRM row against the chain, differences listed (there should be none).

The suite's logs are read again from the deploy block up to the indexer's checkpoint (rows past it cannot exist
yet), mapped to rows by the indexer's own ``mapping.map_logs`` and compared, keyed by (tx hash, log index) within the
chain, with what the database holds for the same contracts: a row the chain has and the database lacks is
*missing*, one the database has and the chain lacks (left behind by a reorg, or forged) is *extra*, and a column
that disagrees is a *field* difference with both values. Derived state (each campaign's status, budget and owed,
each consumer's current consent, each campaign's per-action terms) is compared with the contracts' views at the
checkpoint block.

Not compared: surrogate ids, ``customer_id`` (wallet links live in the CRM, not on chain) and the campaign columns
folded from events (status, budget, owed, refunded, updated_block), which the views check instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ledger.chain import Chain
from ledger.contracts import bind, named_reverts
from ledger.crm.onchain import (
    Campaign,
    CampaignAction,
    CampaignEvent,
    Claim,
    Consent,
    ConsentEvent,
    Rejection,
    Touchpoint,
)
from ledger.errors import ContractRevert
from ledger.indexer import checkpoint
from ledger.indexer.checkpoint import Cursor
from ledger.indexer.mapping import map_logs
from ledger.indexer.source import LogSource
from ledger.model import CampaignStatus
from ledger.suite import Deployment

#: The tables with one row per log, in report order.
TABLES: tuple[type[Any], ...] = (Touchpoint, Rejection, Claim, ConsentEvent, CampaignEvent, Campaign)
_NOT_COMPARED = {"id", "customer_id", "chain_id", "tx_hash", "log_index"}
_FOLDED = {"status", "budget", "owed", "refunded", "updated_block"}  # campaigns: checked against campaignState

MISSING, EXTRA, FIELD, STATE = "missing", "extra", "field", "state"


@dataclass(frozen=True)
class Difference:
    """One disagreement: ``kind`` is missing, extra, field (a column of a log row) or state (a contract view)."""

    table: str
    kind: str
    key: str  # "tx_hash:log_index" for log rows; the campaign id or consumer/brand for state
    field: str | None = None
    db: Any = None
    chain: Any = None

    def describe(self) -> str:
        if self.kind == MISSING:
            return "on chain, not in the database"
        if self.kind == EXTRA:
            return "in the database, not on chain"
        return f"{self.field}: database {self.db!r}, chain {self.chain!r}"


@dataclass
class TableCount:
    chain: int = 0
    db: int = 0


@dataclass
class Report:
    """Counts per table (chain vs database) and every difference, up to ``block`` (the checkpoint)."""

    chain_id: int
    block: int | None  # the checkpoint block compared up to; None when nothing has been indexed
    counts: dict[str, TableCount] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _key(tx_hash: Any, log_index: Any) -> str:
    return f"{str(tx_hash).lower()}:{int(log_index)}"


def _compared_columns(table: type[Any]) -> list[str]:
    skip = _NOT_COMPARED | (_FOLDED if table is Campaign else set())
    return [c.name for c in table.__table__.columns if c.name not in skip]


def _same(db: Any, chain: Any) -> bool:
    if isinstance(db, str) and isinstance(chain, str):
        return db.lower() == chain.lower()
    return bool(db == chain)


def reconcile(chain: Chain, deployment: Deployment, session: Session) -> Report:
    """Compares the database's chain-derived rows of ``deployment`` with the chain up to the indexer's checkpoint.

    Page by page (the indexer's own pages), so an audit of a long history needs the memory of one page.
    """
    chain_id = chain.chain_id
    escrow, registry = deployment.escrow.lower(), deployment.registry.lower()
    cursor = checkpoint.load_cursor(session, chain_id, checkpoint.contract_set_key([escrow, registry]))
    report = Report(chain_id, None if cursor is None else cursor.number)
    last = deployment.deploy_block - 1 if cursor is None else cursor.number
    if cursor is not None:
        _check_cursor(chain, cursor, report)
    for table in TABLES:
        report.counts[table.__tablename__] = TableCount()
    pairs: set[tuple[str, str]] = set()
    if last >= deployment.deploy_block:
        for page in LogSource(chain, [escrow, registry]).pages(deployment.deploy_block, last):
            mapped = map_logs(chain_id, escrow, registry, page.logs)
            pairs.update((c, b) for r, c, b in mapped.pairs if r == registry)
            for table in TABLES:
                expected = mapped.touchpoint_dicts() if table is Touchpoint else mapped.rows[table]
                scope = _Scope(chain_id, escrow, registry, page.first, page.last)
                _compare_table(session, table, expected, scope, report)
    for table in TABLES:  # rows outside every page: below the deployment or above the checkpoint
        _report_outside(session, table, _Scope(chain_id, escrow, registry, deployment.deploy_block, last), report)
    if cursor is not None:
        _compare_campaigns(session, chain, deployment, chain_id, escrow, cursor.number, report)
        _compare_consents(session, chain, deployment, chain_id, registry, pairs, cursor.number, report)
    return report


@dataclass(frozen=True)
class _Scope:
    """The rows of one deployment on one chain within blocks [first, last]."""

    chain_id: int
    escrow: str
    registry: str
    first: int
    last: int

    def of(self, table: type[Any]) -> Any:
        deployment = table.registry_address == self.registry if table is ConsentEvent else table.escrow == self.escrow
        return and_(table.chain_id == self.chain_id, deployment)


def _report_outside(session: Session, table: type[Any], scope: _Scope, report: Report) -> None:
    name = table.__tablename__
    query = select(table.tx_hash, table.log_index).where(
        scope.of(table), or_(table.block_number < scope.first, table.block_number > scope.last)
    )
    for tx_hash, log_index in session.execute(query):
        report.counts[name].db += 1
        report.differences.append(Difference(name, EXTRA, _key(tx_hash, log_index)))


def _check_cursor(chain: Chain, cursor: Cursor, report: Report) -> None:
    """The checkpoint's block hash must still be the chain's (else a reorg happened that the indexer has not seen)."""
    block = LogSource(chain, []).block(cursor.number)
    if block.hash != cursor.hash.lower():
        report.differences.append(Difference("index_checkpoints", FIELD, str(cursor.number), "block_hash",
                                             cursor.hash, block.hash))  # fmt: skip


def _compare_table(
    session: Session, table: type[Any], expected_rows: Iterable[dict[str, Any]], scope: _Scope, report: Report
) -> None:
    name = table.__tablename__
    columns = _compared_columns(table)
    expected = {_key(r["tx_hash"], r["log_index"]): r for r in expected_rows}
    in_range = table.block_number.between(scope.first, scope.last)
    stored = {
        _key(row.tx_hash, row.log_index): row
        for row in session.execute(select(table).where(scope.of(table), in_range)).scalars()
    }
    count = report.counts[name]
    count.chain += len(expected)
    count.db += len(stored)
    for key in sorted(expected.keys() - stored.keys()):
        report.differences.append(Difference(name, MISSING, key))
    for key in sorted(stored.keys() - expected.keys()):
        report.differences.append(Difference(name, EXTRA, key))
    for key in sorted(expected.keys() & stored.keys()):
        want, row = expected[key], stored[key]
        for column in columns:
            db_value, chain_value = getattr(row, column), want.get(column)
            if not _same(db_value, chain_value):
                report.differences.append(Difference(name, FIELD, key, column, db_value, chain_value))


def _compare_campaigns(
    session: Session, chain: Chain, deployment: Deployment, chain_id: int, escrow: str, block: int, report: Report
) -> None:
    """Each stored campaign's status, budget and owed against ``campaignState`` at the checkpoint block."""
    contract = bind(chain, "CampaignEscrow", deployment.escrow)
    rows = session.execute(
        select(Campaign).where(Campaign.chain_id == chain_id, Campaign.escrow == escrow, Campaign.block_number <= block)
    ).scalars()
    for row in rows:
        key = f"campaign {row.campaign_id}"
        try:
            with named_reverts():
                _, status, budget, owed = contract.functions.campaignState(row.campaign_id).call(block_identifier=block)
        except ContractRevert:
            report.differences.append(Difference("campaigns", STATE, key, "exists", True, False))
            continue
        onchain = {"status": CampaignStatus(status), "budget": int(budget), "owed": int(owed)}
        for column, chain_value in onchain.items():
            if getattr(row, column) != chain_value:
                report.differences.append(Difference("campaigns", STATE, key, column, getattr(row, column),
                                                     chain_value))  # fmt: skip
        terms = contract.functions.terms(row.campaign_id).call(block_identifier=block)
        _compare_actions(session, row, terms, key, report)


def _compare_actions(session: Session, row: Campaign, terms: Any, key: str, report: Report) -> None:
    """The campaign's per-action terms (reward, purposes, caps) against the contract's ``terms`` arrays."""
    rewards, purposes, lifetime, daily = terms[4:8]
    onchain = {
        int(action): {"reward": int(rewards[action]), "purposes": int(purposes[action]),
                      "lifetime_cap": int(lifetime[action]), "daily_cap": int(daily[action])}
        for action in range(len(rewards))
    }  # fmt: skip
    stored = {
        int(action.action): action
        for action in session.execute(select(CampaignAction).where(CampaignAction.campaign_pk == row.id)).scalars()
    }
    for action in sorted(onchain.keys() | stored.keys()):
        where = f"{key} action {action}"
        if action not in stored or action not in onchain:
            report.differences.append(Difference("campaign_actions", STATE, where, "exists", action in stored,
                                                 action in onchain))  # fmt: skip
            continue
        for column, chain_value in onchain[action].items():
            if getattr(stored[action], column) != chain_value:
                report.differences.append(Difference("campaign_actions", STATE, where, column,
                                                     getattr(stored[action], column), chain_value))  # fmt: skip


def _compare_consents(
    session: Session,
    chain: Chain,
    deployment: Deployment,
    chain_id: int,
    registry: str,
    pairs: set[tuple[str, str]],
    block: int,
    report: Report,
) -> None:
    """Each current consent (stored, or implied by a consent log) against ``consentOf`` at the checkpoint block."""
    contract = bind(chain, "ConsentRegistry", deployment.registry)
    stored = {
        (row.consumer.lower(), row.brand.lower()): row
        for row in session.execute(
            select(Consent).where(Consent.chain_id == chain_id, Consent.registry_address == registry)
        ).scalars()
    }
    for consumer, brand in sorted(pairs | stored.keys()):
        purposes, expires_at, _ = contract.functions.consentOf(
            chain.w3.to_checksum_address(consumer), chain.w3.to_checksum_address(brand)
        ).call(block_identifier=block)
        key = f"{consumer}/{brand}"
        row = stored.get((consumer, brand))
        if row is None:
            report.differences.append(Difference("consents", STATE, key, "exists", False, True))
            continue
        onchain = {"purposes": int(purposes)}
        if purposes:  # a fully revoked record's expiry means nothing
            onchain["expires_at"] = int(expires_at)
        for column, chain_value in onchain.items():
            if getattr(row, column) != chain_value:
                report.differences.append(Difference("consents", STATE, key, column, getattr(row, column),
                                                     chain_value))  # fmt: skip
