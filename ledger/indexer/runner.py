"""The indexer loop: reorg check, then log pages from the checkpoint to the confirmed head, one transaction each.

Each page's rows, the hashes of its blocks and the moved cursor commit together (BEGIN IMMEDIATE on SQLite), so a
process killed anywhere resumes from the last committed page with nothing lost and, since every row is keyed by
(chain id, tx hash, log index) and inserted ignoring duplicates, nothing doubled. Current state (campaigns,
consents) is re-folded from the event rows a page touched, never patched by deltas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.chain import Chain
from ledger.crm.models import WalletLink
from ledger.crm.onchain import (
    Campaign,
    CampaignAction,
    CampaignEvent,
    CampaignEventKind,
    Claim,
    Consent,
    ConsentChange,
    ConsentEvent,
    Rejection,
    Touchpoint,
)
from ledger.db import SQLITE_IMMEDIATE, insert_ignoring_duplicates
from ledger.errors import ChainError
from ledger.indexer import checkpoint, reorg
from ledger.indexer.checkpoint import DEFAULT_WINDOW, Cursor
from ledger.indexer.decode import DecodedLog, decode_logs
from ledger.indexer.source import BlockRef, LogSource
from ledger.model import Action, CampaignStatus, RejectReason
from ledger.suite import Deployment, Suite

#: (last block indexed, target block, logs indexed so far): what a progress bar needs, and nothing rich-specific.
Progress = Callable[[int, int, int], None]

_CAMPAIGN_KINDS = {
    "CampaignFunded": CampaignEventKind.FUNDED,
    "CampaignPaused": CampaignEventKind.PAUSED,
    "CampaignUnpaused": CampaignEventKind.UNPAUSED,
    "CampaignClosed": CampaignEventKind.CLOSED,
    "AttesterAdded": CampaignEventKind.ATTESTER_ADDED,
    "AttesterRemoved": CampaignEventKind.ATTESTER_REMOVED,
    "BatchSettled": CampaignEventKind.BATCH_SETTLED,
}


# A reorg racing a page read is rare and each retry starts with a rollback; three in a row means a chain that
# will not hold still, which deserves a loud error rather than a spin.
_MOVED_RETRIES = 3


class _ChainMoved(Exception):
    """The chain reorganised while a page was read; the page is discarded and the run starts over."""


@dataclass
class IndexStats:
    """Counters of one Indexer's life (all runs)."""

    logs: int = 0  # suite logs decoded and written (duplicates included: they are ignored by the database)
    skipped: int = 0  # logs of foreign contracts or unknown events
    pages: int = 0
    reorgs: int = 0
    last_block: int | None = None


@dataclass
class MappedLogs:
    """What a page of logs becomes: rows per table, created campaigns' terms, and the state keys they touch."""

    rows: dict[type[Any], list[dict[str, Any]]]
    actions: list[tuple[int, DecodedLog]]
    campaigns: set[tuple[str, int]]
    pairs: set[tuple[str, str, str]]


def map_logs(chain_id: int, escrow: str, registry: str, logs: list[DecodedLog]) -> MappedLogs:
    """Maps decoded suite logs to the rows the indexer stores (``customer_id`` aside: linking needs the database).

    ``escrow`` and ``registry`` are the lowercase addresses; every row carries its log's chain key and block.
    """
    rows: dict[type[Any], list[dict[str, Any]]] = {t: [] for t in reorg.LOG_TABLES}
    actions: list[tuple[int, DecodedLog]] = []
    campaigns: set[tuple[str, int]] = set()
    pairs: set[tuple[str, str, str]] = set()
    for log in logs:
        p = log.position
        base = {"chain_id": chain_id, "block_number": p.block_number, "block_hash": p.block_hash,
                "tx_hash": p.tx_hash, "log_index": p.log_index}  # fmt: skip
        f = log.fields
        address = escrow if log.contract == "CampaignEscrow" else registry
        if log.name == "Rewarded":
            r = log.reward
            campaigns.add((address, r.campaign_id))
            rows[Touchpoint].append(base | {
                "escrow": address, "campaign_id": r.campaign_id, "event_id": r.event_id, "action": r.action,
                "consumer": f["consumer"], "amount": r.amount, "evidence_hash": f["evidenceHash"],
                "occurred_at": r.time})  # fmt: skip
        elif log.name == "Rejected":
            rows[Rejection].append(base | {
                "escrow": address, "campaign_id": f["campaignId"], "event_id": f["eventId"],
                "consumer": f["consumer"], "reason": RejectReason(f["reason"])})  # fmt: skip
        elif log.name == "Claimed":
            campaigns.add((address, f["campaignId"]))
            rows[Claim].append(base | {
                "escrow": address, "campaign_id": f["campaignId"], "consumer": f["consumer"],
                "recipient": f["to"], "amount": f["amount"]})  # fmt: skip
        elif log.name in ("ConsentGranted", "ConsentRevoked"):
            grant = log.name == "ConsentGranted"
            pairs.add((address, f["consumer"], f["brand"]))
            rows[ConsentEvent].append(base | {
                "registry_address": address, "consumer": f["consumer"], "brand": f["brand"],
                "change": ConsentChange.GRANT if grant else ConsentChange.REVOKE, "purposes": f["purposes"],
                "all_purposes": f["allPurposes"], "expires_at": f.get("expiresAt")})  # fmt: skip
        elif log.name == "CampaignCreated":
            token, brand, starts, ends = f["terms"][:4]
            campaigns.add((address, f["campaignId"]))
            actions.append((f["campaignId"], log))
            rows[Campaign].append(base | {
                "escrow": address, "campaign_id": f["campaignId"], "marketer": f["marketer"],
                "token": f["token"], "brand": str(brand).lower(), "starts_at": starts, "ends_at": ends,
                "status": CampaignStatus.ACTIVE, "budget": f["budget"], "owed": 0, "refunded": 0,
                "updated_block": p.block_number})  # fmt: skip
            rows[CampaignEvent].append(base | {
                "escrow": address, "campaign_id": f["campaignId"], "kind": CampaignEventKind.CREATED,
                "account": f["marketer"], "budget": f["budget"]})  # fmt: skip
        elif log.name in _CAMPAIGN_KINDS:
            kind = _CAMPAIGN_KINDS[log.name]
            campaigns.add((address, f["campaignId"]))
            rows[CampaignEvent].append(base | {
                "escrow": address, "campaign_id": f["campaignId"], "kind": kind,
                "account": f.get("funder", f.get("attester")),
                "amount": f.get("amount", f.get("refund")), "budget": f.get("budget"), "owed": f.get("owed"),
                "paid_count": f.get("paid"), "rejected_count": f.get("rejected")})  # fmt: skip
    return MappedLogs(rows, actions, campaigns, pairs)


class Indexer:
    """Indexes one deployed suite on one chain into the CRM database."""

    def __init__(
        self,
        chain: Chain,
        suite_or_deployment: Suite | Deployment,
        session_factory: sessionmaker[Session],
        confirmations: int = 0,
        window: int = DEFAULT_WINDOW,
        progress: Progress | None = None,
        source: LogSource | None = None,
    ) -> None:
        deployment = suite_or_deployment.deployment if isinstance(suite_or_deployment, Suite) else suite_or_deployment
        self.chain, self.deployment, self.sessions = chain, deployment, session_factory
        self.confirmations, self.window, self.progress = confirmations, window, progress
        self.escrow, self.registry = deployment.escrow.lower(), deployment.registry.lower()
        self.addresses = [self.escrow, self.registry]
        self.contracts = {self.escrow: "CampaignEscrow", self.registry: "ConsentRegistry"}
        self.key = checkpoint.contract_set_key(self.addresses)
        self.source = source or LogSource(chain, self.addresses)
        self.stats = IndexStats()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so it never fails halfway on a busy lock), committed
        only if the block exits normally."""
        with self.sessions() as session:
            session.connection(execution_options={SQLITE_IMMEDIATE: True})
            try:
                yield session
            except BaseException:
                session.rollback()
                raise
            session.commit()

    # -- public ---------------------------------------------------------------------------------------------

    def run_once(self) -> IndexStats:
        """Catches up to head - confirmations (after undoing any reorg) and returns the counters."""
        for _ in range(_MOVED_RETRIES):
            try:
                self._catch_up()
                return self.stats
            except _ChainMoved:
                continue  # nothing of the page was stored; the reorg check at the top sorts it out
        raise ChainError("the chain kept reorganising while pages were read; run the indexer again")

    def _catch_up(self) -> None:
        cursor = self.check_reorg()
        start = self.deployment.deploy_block if cursor is None else cursor.number + 1
        head = self.source.head()
        target = head - self.confirmations
        for first, last, raws in self.source.pages(start, target):
            self._index_page(first, last, raws, head)
            if self.progress is not None:
                self.progress(last, target, self.stats.logs)

    def follow(self, poll_seconds: float, stop_event: threading.Event) -> IndexStats:
        """Indexes new heads until ``stop_event`` is set, checking for a reorg before every catch-up."""
        while not stop_event.is_set():
            self.run_once()
            stop_event.wait(poll_seconds)
        return self.stats

    def check_reorg(self) -> Cursor | None:
        """Rolls back to the common ancestor when the cursor's block is gone; returns the (possibly new) cursor."""
        with self._transaction() as session:
            cursor = checkpoint.load_cursor(session, self.chain.chain_id, self.key)
            if cursor is None:
                return None
            ancestor = reorg.find_ancestor(session, self.source, self.chain.chain_id, cursor)
            if ancestor is None:
                return cursor
            reorg.roll_back(session, self.chain.chain_id, self.addresses, ancestor)
            self.stats.reorgs += 1
            return ancestor

    def rebuild(self) -> None:
        """Drops this chain's derived rows, block hashes and cursor, so the next run starts at the deploy block."""
        chain_id = self.chain.chain_id
        with self._transaction() as session:
            tables: tuple[type[Any], ...] = (*reorg.LOG_TABLES, Consent)
            for table in tables:
                session.execute(delete(table).where(table.chain_id == chain_id))
            checkpoint.delete_all_blocks(session, chain_id)
            checkpoint.delete_cursor(session, chain_id, self.key)

    # -- one page -------------------------------------------------------------------------------------------

    def _index_page(self, first: int, last: int, raws: list[dict[str, Any]], head: int) -> None:
        near_tip = last >= head - self.window
        if near_tip:  # read the logs again between two reads of the last header: equal hashes prove one chain
            before = self.source.block(last)
            raws = self.source.logs(first, last)
        logs, skipped = decode_logs(raws, self.contracts)
        blocks = self._headers(first, last, logs, head)
        if near_tip and blocks[-1].hash != before.hash:
            raise _ChainMoved(last)
        chain_id = self.chain.chain_id
        with self._transaction() as session:
            self._store(session, logs)
            checkpoint.record_blocks(session, chain_id, blocks)
            checkpoint.save_cursor(session, chain_id, self.addresses, Cursor(last, blocks[-1].hash))
            checkpoint.prune_blocks(session, chain_id, last, self.window)
        self.stats.logs += len(logs)
        self.stats.skipped += skipped
        self.stats.pages += 1
        self.stats.last_block = last

    def _headers(self, first: int, last: int, logs: list[DecodedLog], head: int) -> list[BlockRef]:
        """Headers of the page's blocks inside the window (any may become the common ancestor), then its last.

        A log whose block hash disagrees with its header means the chain moved under the page: nothing of it is
        stored and the run starts over from the reorg check.
        """
        hashes = {log.position.block_number: log.position.block_hash for log in logs}
        numbers = range(max(first, head - self.window), last)  # every block a shallow reorg could fall back to
        refs = [self.source.block(n) for n in [*numbers, last]]
        if any(ref.number in hashes and hashes[ref.number] != ref.hash for ref in refs):
            raise _ChainMoved(last)
        return refs

    def _store(self, session: Session, logs: list[DecodedLog]) -> None:
        """Maps a page's logs to rows, inserts them ignoring duplicates and re-folds the state they touch."""
        chain_id = self.chain.chain_id
        mapped = map_logs(chain_id, self.escrow, self.registry, logs)
        rows, actions, campaigns, pairs = mapped.rows, mapped.actions, mapped.campaigns, mapped.pairs
        insert_ignoring_duplicates(session, Campaign, rows[Campaign])
        self._link_customers(session, rows)
        for table in (Touchpoint, Rejection, Claim, ConsentEvent, CampaignEvent):
            keys = set().union(*rows[table])  # an executemany binds the first row's keys: give every row all of them
            insert_ignoring_duplicates(session, table, [{k: r.get(k) for k in keys} for r in rows[table]])
        self._store_actions(session, actions)
        reorg.refold_campaigns(session, chain_id, campaigns)
        reorg.refold_consents(session, chain_id, pairs)

    def _link_customers(self, session: Session, rows: dict[type[Any], list[dict[str, Any]]]) -> None:
        """Sets customer_id where the consumer's wallet is linked to a customer of the campaign's brand."""
        linked = [r for t in (Touchpoint, Rejection, Claim) for r in rows[t]]
        if not linked:
            return
        brands = {
            c: str(b) for c, b in self._campaigns_by_id(session, Campaign.brand, {r["campaign_id"] for r in linked})
        }
        wallets = {r["consumer"] for r in linked}
        links = {
            (str(b), str(w)): int(c)
            for b, w, c in session.execute(
                select(WalletLink.brand, WalletLink.wallet, WalletLink.customer_id).where(
                    WalletLink.wallet.in_(wallets)
                )
            )
        }
        for r in linked:
            r["customer_id"] = links.get((brands.get(r["campaign_id"], ""), r["consumer"]))

    def _campaigns_by_id(self, session: Session, column: Any, campaign_ids: set[int]) -> list[tuple[int, Any]]:
        """(campaign id, ``column``) of this deployment's indexed campaigns among ``campaign_ids``."""
        query = select(Campaign.campaign_id, column).where(
            Campaign.chain_id == self.chain.chain_id,
            Campaign.escrow == self.escrow,
            Campaign.campaign_id.in_(campaign_ids),
        )
        return [(int(c), value) for c, value in session.execute(query)]

    def _store_actions(self, session: Session, created: list[tuple[int, DecodedLog]]) -> None:
        """One campaign_actions row per action of each created campaign (the terms' four parallel arrays)."""
        if not created:
            return
        pks = {c: int(i) for c, i in self._campaigns_by_id(session, Campaign.id, {c for c, _ in created})}
        rows = []
        for campaign_id, log in created:
            rewards, purposes, lifetime, daily = log.fields["terms"][4:8]
            rows += [
                {"campaign_pk": pks[campaign_id], "action": Action(a), "reward": int(rewards[a]),
                 "purposes": int(purposes[a]), "lifetime_cap": int(lifetime[a]), "daily_cap": int(daily[a])}
                for a in range(len(rewards))
            ]  # fmt: skip
        insert_ignoring_duplicates(session, CampaignAction, rows, conflict_columns=("campaign_pk", "action"))
