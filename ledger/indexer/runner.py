"""The indexer loop: reorg check, then log pages from the checkpoint to the confirmed head, one transaction each.

Each page's rows, the hashes of its blocks and the moved cursor commit together (BEGIN IMMEDIATE on SQLite, the
checkpoint row locked on PostgreSQL), so a process killed anywhere resumes from the last committed page with
nothing lost and, since every row is keyed by (chain id, tx hash, log index) and inserted ignoring duplicates,
nothing doubled. A page commits only onto the cursor it was read after: if another indexer moved it meanwhile,
the page is dropped and the run starts again from the stored cursor. Current state (campaigns, consents) is
folded from the event rows (see ``folds``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.chain import Chain
from ledger.crm.links import lock_wallet_links
from ledger.crm.models import WalletLink
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
from ledger.db import (
    MAIN,
    SQLITE_IMMEDIATE,
    bind_rows,
    insert_bound_rows_ignoring_duplicates,
    insert_ignoring_duplicates,
)
from ledger.errors import ChainError, ConfigurationError
from ledger.indexer import checkpoint, reorg
from ledger.indexer.checkpoint import DEFAULT_WINDOW, Cursor
from ledger.indexer.decode import TOUCHPOINT_COLUMNS, DecodedLog
from ledger.indexer.folds import fold_campaigns_forward, refold_consents
from ledger.indexer.mapping import MappedLogs, map_logs
from ledger.indexer.source import BlockRef, LogSource, Page
from ledger.indexer.writer import PageWriter
from ledger.model import Action
from ledger.suite import Deployment, Suite

#: (last block indexed, target block, logs indexed so far): what a progress bar needs, and nothing rich-specific.
Progress = Callable[[int, int, int], None]

# A reorg racing a page read is rare and each retry starts with a rollback; three in a row means a chain (or a
# second indexer) that will not hold still, which deserves a loud error rather than a spin.
_MOVED_RETRIES = 3
# The longest pause between attempts while following a node that does not answer.
FOLLOW_MAX_PAUSE = 60.0
_log = logging.getLogger(__name__)
# Wallets looked up per query when linking a page's consumers to customers (well below SQLite's 32,766 limit).
_LINK_LOOKUP_CHUNK = 5_000
_TOUCHPOINT_INSERT_COLUMNS = (*TOUCHPOINT_COLUMNS, "customer_id")
_CUSTOMER_KEY = (TOUCHPOINT_COLUMNS.index("campaign_id"), TOUCHPOINT_COLUMNS.index("consumer"))
_BLOCK_KEY = (TOUCHPOINT_COLUMNS.index("block_number"), TOUCHPOINT_COLUMNS.index("block_hash"))


class _Moved(Exception):
    """The chain reorganised while a page was read, or another indexer moved the cursor: the page is discarded
    and the run starts over from the stored cursor."""


@dataclass(frozen=True)
class _PreparedPage:
    """A page mapped and checked, waiting for its write: it commits only onto the cursor ``after``."""

    page: Page
    raws: list[dict[str, Any]]  # the page's logs inside its block range
    mapped: MappedLogs
    touchpoints: list[tuple[Any, ...]]  # bound for the database, customer_id (last) not yet set
    pairs: set[tuple[int, str]]  # (campaign id, consumer) of the page's touchpoints, rejections and claims
    blocks: list[BlockRef]
    after: Cursor | None
    cursor: Cursor


@dataclass
class IndexStats:
    """Counters of one Indexer's life (all runs)."""

    logs: int = 0  # suite logs decoded and written (re-served ones included: the database ignores them)
    skipped: int = 0  # logs of foreign contracts, unknown events, malformed, or outside the requested range
    duplicates: int = 0  # the same log served twice within a page
    pages: int = 0
    reorgs: int = 0
    last_block: int | None = None


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
        self.key = checkpoint.contract_set_key(self.addresses)
        self.source = source or LogSource(chain, self.addresses)
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise ConfigurationError("the Indexer needs a sessionmaker bound to an engine (ledger.db.session_factory)")
        self._dialect = bind.dialect
        self.stats = IndexStats()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so it never fails halfway on a busy lock), committed
        only if the block exits normally.

        On PostgreSQL the commit does not wait for the WAL flush (``synchronous_commit = off``, this transaction
        only): a server crash can lose the last commits, never corrupt them, and since a page's rows and the
        cursor vouching for them are one transaction, a lost page is simply indexed again from the chain.
        """
        with self.sessions() as session:
            connection = session.connection(execution_options={SQLITE_IMMEDIATE: MAIN})
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
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
            except _Moved:
                continue  # nothing of the page was stored; the reorg check at the top sorts it out
        raise ChainError(
            "the chain kept reorganising while pages were read, or another indexer is writing the same "
            "database; run the indexer again"
        )

    def _catch_up(self) -> None:
        cursor = self.check_reorg()
        start = self.deployment.deploy_block if cursor is None else cursor.number + 1
        head = self.source.head()
        target = head - self.confirmations
        with PageWriter(self._write_page) as writer:
            for page in self.source.pages(start, target, anchor_from=head - self.window):
                prepared = self._prepare_page(page, head, cursor)
                writer.submit(prepared)
                cursor = prepared.cursor
                if self.progress is not None:
                    self.progress(page.last, target, self.stats.logs + len(prepared.raws))

    def follow(self, poll_seconds: float, stop_event: threading.Event) -> IndexStats:
        """Indexes new heads until ``stop_event`` is set, checking for a reorg before every catch-up.

        A node that stops answering (ChainError, after the client's own retries) is waited for with a doubling
        pause up to ``FOLLOW_MAX_PAUSE`` and logged, not fatal: the checkpoint says where to resume. Anything
        else (a reorg deeper than the window, a database error) stops the follower.
        """
        pause = poll_seconds
        while not stop_event.is_set():
            try:
                self.run_once()
            except ChainError as exc:
                pause = min(FOLLOW_MAX_PAUSE, pause * 2)
                _log.warning("indexer: %s; retrying in %.0f s from block %s", exc, pause, self.stats.last_block)
                stop_event.wait(pause)
                continue
            pause = poll_seconds
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

    def _prepare_page(self, page: Page, head: int, after: Cursor | None) -> _PreparedPage:
        """Maps a page, checks its blocks against the chain and binds its touchpoints: everything but the database
        write, done here so the writer thread holds the write lock only while it writes."""
        raws = [raw for raw in page.logs if page.first <= int(raw["blockNumber"], 16) <= page.last]
        mapped = map_logs(self.chain.chain_id, self.escrow, self.registry, raws)
        blocks = self._headers(page, mapped, head)
        if page.anchor is not None and blocks[-1].hash != page.anchor.hash:
            raise _Moved(page.last)  # the last block changed while the logs were read
        campaign_at, consumer_at = _CUSTOMER_KEY
        pairs = {(row[campaign_at], row[consumer_at]) for row in mapped.touchpoints}
        pairs.update((r["campaign_id"], r["consumer"]) for t in (Rejection, Claim) for r in mapped.rows[t])
        touchpoints = bind_rows(Touchpoint, _TOUCHPOINT_INSERT_COLUMNS, [(*row, None) for row in mapped.touchpoints],
                                self._dialect)  # fmt: skip
        cursor = Cursor(page.last, blocks[-1].hash)
        return _PreparedPage(page, raws, mapped, touchpoints, pairs, blocks, after, cursor)

    def _write_page(self, prepared: _PreparedPage) -> None:
        """Stores a prepared page in one transaction, on top of the cursor it was read after (else _Moved)."""
        chain_id, page, mapped = self.chain.chain_id, prepared.page, prepared.mapped
        with self._transaction() as session:
            if checkpoint.load_cursor(session, chain_id, self.key, lock=True) != prepared.after:
                raise _Moved(page.first)
            self._store(session, prepared)
            checkpoint.record_blocks(session, chain_id, prepared.blocks)
            checkpoint.save_cursor(session, chain_id, self.addresses, prepared.cursor)
            checkpoint.prune_blocks(session, chain_id, page.last, self.window)
        self.stats.logs += len(prepared.raws) - mapped.skipped - mapped.duplicates
        self.stats.skipped += mapped.skipped + len(page.logs) - len(prepared.raws)
        self.stats.duplicates += mapped.duplicates
        self.stats.pages += 1
        self.stats.last_block = page.last

    def _headers(self, page: Page, mapped: MappedLogs, head: int) -> list[BlockRef]:
        """Headers of the page's blocks inside the window (any may become the common ancestor), then its last.

        A log whose block hash disagrees with its header means the chain moved under the page: nothing of it is
        stored and the run starts over from the reorg check.
        """
        numbers = range(max(page.first, head - self.window), page.last)  # blocks a shallow reorg could fall to
        refs = [self.source.block(n) for n in [*numbers, page.last]]
        checked = {ref.number: ref.hash for ref in refs}
        number_at, hash_at = _BLOCK_KEY
        seen = {(row[number_at], row[hash_at]) for row in mapped.touchpoints}
        seen.update((row["block_number"], row["block_hash"]) for rows in mapped.rows.values() for row in rows)
        if any(number in checked and checked[number] != block_hash for number, block_hash in seen):
            raise _Moved(page.last)
        return refs

    def _store(self, session: Session, prepared: _PreparedPage) -> None:
        """Inserts a page's rows ignoring duplicates, links them to customers, and folds the state they touch."""
        chain_id, mapped = self.chain.chain_id, prepared.mapped
        rows = mapped.rows
        insert_ignoring_duplicates(session, Campaign, rows[Campaign])
        lock_wallet_links(session, exclusive=False)  # a link committing now would miss this page's rows
        customers = self._customers(session, prepared.pairs)
        touchpoints = prepared.touchpoints
        if customers:  # bound values of campaign_id and consumer are the decoded ones (ints, canonical hex)
            campaign_at, consumer_at = _CUSTOMER_KEY
            touchpoints = [
                (*row[:-1], customers.get((row[campaign_at], row[consumer_at]))) for row in prepared.touchpoints
            ]
        insert_bound_rows_ignoring_duplicates(session, Touchpoint, _TOUCHPOINT_INSERT_COLUMNS, touchpoints)
        for row in (*rows[Rejection], *rows[Claim]):
            row["customer_id"] = customers.get((row["campaign_id"], row["consumer"]))
        for table in (Rejection, Claim, ConsentEvent, CampaignEvent):
            keys = set().union(*rows[table])  # an executemany binds the first row's keys: give every row all of them
            insert_ignoring_duplicates(session, table, [{k: r.get(k) for k in keys} for r in rows[table]])
        self._store_actions(session, mapped.actions)
        fold_campaigns_forward(session, chain_id, mapped.fold_items)
        refold_consents(session, chain_id, mapped.pairs)

    def _customers(self, session: Session, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], int]:
        """(campaign id, consumer) -> customer id, where the consumer's wallet is linked to a customer of the
        campaign's brand; only pairs with a link appear."""
        if not pairs:
            return {}
        brands = {c: str(b) for c, b in self._campaigns_by_id(session, Campaign.brand, {c for c, _ in pairs})}
        wallets = sorted({consumer for _, consumer in pairs})
        links: dict[tuple[str, str], int] = {}
        for start in range(0, len(wallets), _LINK_LOOKUP_CHUNK):
            chunk = wallets[start : start + _LINK_LOOKUP_CHUNK]
            query = select(WalletLink.brand, WalletLink.wallet, WalletLink.customer_id).where(
                WalletLink.wallet.in_(chunk)
            )
            links.update({(str(b), str(w)): int(c) for b, w, c in session.execute(query)})
        if not links:
            return {}
        found = {(c, w): links.get((brands.get(c, ""), w)) for c, w in pairs}
        return {pair: customer for pair, customer in found.items() if customer is not None}

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
