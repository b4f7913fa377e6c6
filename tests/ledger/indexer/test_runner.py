"""The indexer on a real anvil, on SQLite and PostgreSQL: the CRM equals the chain after catch-up, re-runs, reorgs
(live, while stopped, too deep) and a crash inside a page's transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import typed_data
from ledger.chain import Chain
from ledger.crm.links import link_wallet, lock_wallet_links
from ledger.crm.models import Customer, WalletLink
from ledger.crm.onchain import (
    Campaign,
    CampaignAction,
    CampaignEvent,
    Claim,
    Consent,
    ConsentEvent,
    IndexedBlock,
    Rejection,
    Touchpoint,
)
from ledger.crm.repository import upsert_customer
from ledger.db import SQLITE_IMMEDIATE
from ledger.errors import ChainError, ReorgTooDeep
from ledger.indexer import checkpoint, runner
from ledger.indexer.runner import Indexer
from ledger.indexer.source import BlockRef, LogSource
from ledger.model import CampaignStatus, Purpose
from ledger.settlement.records import RewardRecord
from ledger.suite import Suite
from scripts.demo import DemoResult, run_demo
from tests.ledger.databases import Database

pytestmark = pytest.mark.anvil

LOG_TABLES: tuple[type[Any], ...] = (Touchpoint, Rejection, Claim, ConsentEvent, CampaignEvent)


@pytest.fixture
def suite(deployed: tuple[Chain, Suite]) -> Iterator[Suite]:
    """The deployed suite with no campaign yet; whatever a test does to the chain is reverted afterwards."""
    chain, deployed_suite = deployed
    snapshot = chain.snapshot()
    yield deployed_suite
    chain.revert(snapshot)


def _indexer(suite: Suite, database: Database, **options: Any) -> Indexer:
    return Indexer(suite.chain, suite, database.sessions, **options)


def _rows(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every chain-derived row and current state, comparable across runs (no surrogate ids)."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in LOG_TABLES:
        columns = [c for c in table.__table__.columns if c.name != "id"]
        state[table.__tablename__] = sorted(tuple(r) for r in session.execute(select(*columns)))
    for table in (Campaign, Consent):
        columns = [c for c in table.__table__.columns if c.name != "id"]
        state[table.__tablename__] = sorted(tuple(r) for r in session.execute(select(*columns)))
    state["campaign_actions"] = sorted(
        (r.campaign_id, int(a.action), a.reward)
        for r, a in session.execute(select(Campaign, CampaignAction).join(CampaignAction))
    )
    return state


def _chain_keys(suite: Suite) -> set[tuple[str, int]]:
    """(tx hash, log index) of every log the suite's escrow and registry emitted since deployment."""
    logs = suite.chain.w3.eth.get_logs(
        {
            "fromBlock": suite.deployment.deploy_block,
            "toBlock": "latest",
            "address": [suite.escrow.address, suite.registry.address],
        }
    )
    return {("0x" + bytes(log["transactionHash"]).hex(), int(log["logIndex"])) for log in logs}


def _assert_db_equals_chain(session: Session, suite: Suite) -> None:
    """Every log has exactly one row, every touchpoint matches its Rewarded event, campaigns match the escrow."""
    stored: list[tuple[str, int]] = []
    for table in LOG_TABLES:
        stored += [(str(t), int(i)) for t, i in session.execute(select(table.tx_hash, table.log_index))]
    assert len(stored) == len(set(stored))
    assert set(stored) == _chain_keys(suite)
    rewarded = suite.escrow.events.Rewarded().get_logs(from_block=suite.deployment.deploy_block)
    expected = set()
    for event in rewarded:
        record = RewardRecord.unpack(int(event["args"]["record"]))
        tx = "0x" + bytes(event["transactionHash"]).hex()
        expected.add((tx, int(event["logIndex"]), record.campaign_id, record.event_id, record.amount))
    touchpoints = session.execute(
        select(Touchpoint.tx_hash, Touchpoint.log_index, Touchpoint.campaign_id, Touchpoint.event_id, Touchpoint.amount)
    ).all()
    assert {tuple(t) for t in touchpoints} == expected
    for campaign in session.execute(select(Campaign)).scalars():
        onchain = suite.campaign_state(campaign.campaign_id)
        assert (campaign.status, campaign.budget, campaign.owed) == (onchain.status, onchain.budget, onchain.owed)


def _settle_second_campaign(suite: Suite) -> DemoResult:
    return run_demo(suite)


class TestCatchUp:
    def test_after_the_demo_every_event_becomes_its_row(self, suite: Suite, database: Database):
        demo = run_demo(suite)
        stats = _indexer(suite, database).run_once()
        chain = suite.chain
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            touchpoints = session.execute(select(Touchpoint)).scalars().all()
            assert len(touchpoints) == len(demo.paid) == 7
            assert sorted(t.amount for t in touchpoints) == sorted(RewardRecord.unpack(int(p["record"])).amount
                                                                   for p in demo.paid)  # fmt: skip
            assert all(t.customer_id is None for t in touchpoints)  # no wallet links in the demo
            rejections = session.execute(select(Rejection.event_id, Rejection.reason)).all()
            assert dict((int(e), r) for e, r in rejections) == demo.rejected
            assert session.execute(select(func.sum(Claim.amount))).scalar_one() == demo.claimed
            consents = {c.consumer: c.purposes for c in session.execute(select(Consent)).scalars()}
            alice, bob = (a.address.lower() for a in chain.accounts.consumers[:2])
            assert consents == {
                alice: int(Purpose.ANALYTICS | Purpose.LOCATION | Purpose.ADS | Purpose.EMAIL),
                bob: int(Purpose.ANALYTICS | Purpose.ADS),
            }
            campaign = session.execute(select(Campaign)).scalar_one()
            assert campaign.status == CampaignStatus.CLOSED
            assert (campaign.refunded, campaign.owed, campaign.budget) == (demo.refund, demo.owed_after_close, 0)
            assert session.execute(select(func.count()).select_from(CampaignAction)).scalar_one() == 8
        assert stats.logs == len(_chain_keys(suite)) and stats.skipped == 0 and stats.reorgs == 0

    def test_running_again_adds_nothing(self, suite: Suite, database: Database):
        run_demo(suite)
        indexer = _indexer(suite, database)
        indexer.run_once()
        with database.sessions() as session:
            before = _rows(session)
        indexer.run_once()
        _indexer(suite, database).run_once()  # a restarted process, too
        with database.sessions() as session:
            assert _rows(session) == before

    def test_touchpoints_of_a_linked_wallet_name_their_customer(self, suite: Suite, database: Database):
        alice, bob = (a.address.lower() for a in suite.chain.accounts.consumers[:2])
        brand = suite.chain.accounts.marketer.address.lower()
        with database.sessions() as session, session.begin():
            customer = Customer(display_name="Alice")
            session.add(customer)
            session.flush()
            session.add(WalletLink(customer_id=customer.id, brand=brand, wallet=alice, chain_id=suite.chain.chain_id,
                                   nonce=0, deadline=0, signature="0x"))  # fmt: skip
        run_demo(suite)
        _indexer(suite, database).run_once()
        with database.sessions() as session:
            linked = dict(session.execute(select(Touchpoint.consumer, Touchpoint.customer_id)).all())
        assert linked == {alice: customer.id, bob: None}

    def test_follow_indexes_new_heads_until_stopped(self, suite: Suite, database: Database):
        indexer = _indexer(suite, database)
        stop = threading.Event()
        follower = threading.Thread(target=indexer.follow, args=(0.05, stop))
        follower.start()
        try:
            run_demo(suite)
            deadline = time.monotonic() + 10
            while indexer.stats.logs < len(_chain_keys(suite)) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            follower.join(10)
        assert not follower.is_alive()
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)

    def test_follow_waits_out_a_node_that_stops_answering(self, suite: Suite, database: Database, monkeypatch):
        run_demo(suite)
        indexer = _indexer(suite, database)
        real, stop, pauses = indexer.run_once, threading.Event(), []
        outages = iter([ChainError("eth_blockNumber failed after 6 attempts"), ChainError("still down")])

        def flaky() -> Any:
            outage = next(outages, None)
            if outage is not None:
                raise outage
            stats = real()
            stop.set()
            return stats

        monkeypatch.setattr(indexer, "run_once", flaky)
        monkeypatch.setattr(stop, "wait", lambda seconds: pauses.append(seconds))
        indexer.follow(1.0, stop)
        assert pauses == [2.0, 4.0, 1.0]  # doubling while down, the poll interval again once it answers
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)


class TestWalletLinks:
    def test_a_link_made_while_the_indexer_writes_attaches_every_row_of_the_page(
        self, suite: Suite, database: Database
    ):
        """The indexer and linking exclude each other (on PostgreSQL by an advisory lock; SQLite's write lock
        does it there), so a link committed during a page's write cannot miss that page's rows."""
        run_demo(suite)
        alice, brand = suite.chain.accounts.consumers[0], suite.chain.accounts.marketer.address
        with database.sessions() as session:
            customer, _ = upsert_customer(session, email="alice@example.com")
            session.commit()
        linker = database.sessions()
        linker.connection(execution_options={SQLITE_IMMEDIATE: True})  # the writer lock first, as the API will
        lock_wallet_links(linker, exclusive=True)
        indexing = threading.Thread(target=_indexer(suite, database).run_once)
        indexing.start()
        indexing.join(0.5)
        assert indexing.is_alive()  # waiting for the link's transaction
        deadline = int(time.time()) + 600
        message = typed_data.link_message(alice.address, customer.id, brand, 1, deadline)
        signature = typed_data.sign(alice, suite.registry_domain, "Link", message)
        link_wallet(linker, customer_id=customer.id, brand=brand, wallet=alice.address, nonce=1, deadline=deadline,
                    signature=signature, domain=suite.registry_domain)  # fmt: skip
        linker.commit()
        linker.close()
        indexing.join(20)
        with database.sessions() as session:
            rows = session.execute(select(Touchpoint.customer_id).where(Touchpoint.consumer == alice.address.lower()))
            attached = [customer_id for (customer_id,) in rows]
        assert attached and set(attached) == {customer.id}


class TestReorgs:
    def test_a_reorg_that_removes_rewarded_blocks_removes_their_touchpoints(self, suite: Suite, database: Database):
        run_demo(suite)
        indexer = _indexer(suite, database)
        indexer.run_once()
        with database.sessions() as session:
            first = _rows(session)
        snapshot = suite.chain.snapshot()
        run_demo(suite)  # a second campaign settled: 7 more touchpoints
        indexer.run_once()
        with database.sessions() as session:
            assert len(_rows(session)["touchpoints"]) == 14
        suite.chain.revert(snapshot)
        suite.chain.mine(20)  # a longer, different chain without the second campaign
        indexer.run_once()
        assert indexer.stats.reorgs == 1
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            assert _rows(session) == first
        run_demo(suite)  # and a replacement: the same campaign id settled in other blocks
        indexer.run_once()
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            assert len(_rows(session)["touchpoints"]) == 14

    def test_a_reorg_while_stopped_is_found_by_hash_at_the_same_height(self, suite: Suite, database: Database):
        run_demo(suite)
        snapshot = suite.chain.snapshot()
        run_demo(suite)
        _indexer(suite, database).run_once()
        height = suite.chain.w3.eth.block_number
        suite.chain.revert(snapshot)
        suite.chain.mine(height - suite.chain.w3.eth.block_number)
        assert suite.chain.w3.eth.block_number == height  # the same height: only the hash tells
        restarted = _indexer(suite, database)
        restarted.run_once()
        assert restarted.stats.reorgs == 1
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            assert len(_rows(session)["touchpoints"]) == 7

    def test_a_shallow_reorg_among_blocks_without_logs_finds_the_nearest_ancestor(
        self, suite: Suite, database: Database
    ):
        run_demo(suite)
        suite.chain.mine(8)
        snapshot = suite.chain.snapshot()
        ancestor = suite.chain.w3.eth.block_number
        suite.chain.mine(2)
        indexer = _indexer(suite, database, window=5)
        indexer.run_once()  # one page: its last block and every block of the window are kept
        suite.chain.revert(snapshot)
        suite.chain.increase_time(7)  # empty blocks at the same second would get the very same hashes
        suite.chain.mine(2)
        indexer.check_reorg()
        with database.sessions() as session:
            cursor = checkpoint.load_cursor(session, suite.chain.chain_id, indexer.key)
            assert cursor is not None and cursor.number == ancestor and indexer.stats.reorgs == 1
        indexer.run_once()
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)

    def test_a_reorg_deeper_than_the_window_stops_loudly_and_changes_nothing(self, suite: Suite, database: Database):
        snapshot = suite.chain.snapshot()
        run_demo(suite)
        indexer = _indexer(suite, database, window=2)
        indexer.run_once()
        with database.sessions() as session:
            before = _rows(session)
            blocks = session.execute(select(IndexedBlock.number, IndexedBlock.hash)).all()
        suite.chain.revert(snapshot)
        suite.chain.mine(30)
        with pytest.raises(ReorgTooDeep) as raised:
            indexer.run_once()
        assert raised.value.code == "reorg_too_deep" and "--rebuild" in str(raised.value.help)
        with database.sessions() as session:
            assert _rows(session) == before
            assert session.execute(select(IndexedBlock.number, IndexedBlock.hash)).all() == blocks
        indexer.rebuild()
        indexer.run_once()
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            assert _rows(session)["touchpoints"] == []

    def test_a_chain_that_moves_while_a_page_is_read_discards_the_page_and_reads_again(
        self, suite: Suite, database: Database, monkeypatch: pytest.MonkeyPatch
    ):
        run_demo(suite)
        indexer = _indexer(suite, database)
        real = indexer.source.block
        moved: list[int] = []

        def first_read_sees_another_chain(number: int) -> BlockRef:
            ref = real(number)
            if not moved:
                moved.append(number)
                return BlockRef(ref.number, "0x" + "ab" * 32, ref.parent_hash)
            return ref

        monkeypatch.setattr(indexer.source, "block", first_read_sees_another_chain)
        indexer.run_once()
        assert moved and indexer.stats.last_block == suite.chain.w3.eth.block_number
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)


class TestCrash:
    def test_a_failure_inside_a_page_leaves_nothing_of_that_page_and_the_next_run_completes(
        self, suite: Suite, database: Database, monkeypatch: pytest.MonkeyPatch
    ):
        run_demo(suite)
        addresses = [suite.deployment.escrow.lower(), suite.deployment.registry.lower()]
        indexer = _indexer(suite, database, source=LogSource(suite.chain, addresses, max_range=1))  # a block a page
        real = checkpoint.save_cursor
        crashed: list[int] = []

        def crash_once_touchpoints_are_written(session: Session, chain_id: int, addresses: Any, cursor: Any) -> None:
            written = session.execute(select(func.count()).select_from(Touchpoint)).scalar_one()
            if written and not crashed:
                crashed.append(cursor.number)
                raise RuntimeError("killed between the rows and the cursor")
            real(session, chain_id, addresses, cursor)

        monkeypatch.setattr(runner.checkpoint, "save_cursor", crash_once_touchpoints_are_written)
        with pytest.raises(RuntimeError):
            indexer.run_once()
        monkeypatch.undo()
        with database.sessions() as session:
            cursor = checkpoint.load_cursor(session, suite.chain.chain_id, indexer.key)
            assert cursor is not None and cursor.number < crashed[0]  # earlier pages committed, this one did not
            for table in (*LOG_TABLES, Campaign, Consent):
                newest = session.execute(select(func.max(table.block_number))).scalar_one()
                assert newest is None or newest <= cursor.number
            assert session.execute(select(func.count()).select_from(Touchpoint)).scalar_one() == 0
            assert session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 1
        _indexer(suite, database).run_once()
        with database.sessions() as session:
            _assert_db_equals_chain(session, suite)
            assert len(_rows(session)["touchpoints"]) == 7
