"""The indexer under the failures a long-running process meets, on a real anvil, on SQLite and PostgreSQL.

SIGKILL again and again during a long catch-up (no gap, nothing applied twice, no half-written range ever
visible to a reader); a node that times out, drops the connection or rate-limits (retried with backoff; past the
retry budget a ChainError, and the next run resumes from the checkpoint); a block range served twice; a log of a
foreign contract and an unknown event (skipped and counted). Faults come from ``rpc_proxy.RpcProxy`` between the
indexer and anvil; the killed indexers are processes forked by ``index_child``; the database is compared with
anvil itself, through ``reconcile`` and raw eth_getLogs.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import multiprocessing.process
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.crypto import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import HTTPProvider
from web3.contract import Contract
from web3.types import RPCEndpoint

from ledger.chain import Chain, connect
from ledger.contracts import artifact
from ledger.crm.onchain import Campaign, CampaignEvent, Claim, ConsentEvent, Rejection, Touchpoint
from ledger.errors import ChainError
from ledger.indexer import checkpoint
from ledger.indexer.reconcile import reconcile
from ledger.indexer.rpc import RpcClient
from ledger.indexer.runner import Indexer
from ledger.indexer.source import LogSource
from ledger.settings import Settings
from ledger.settlement.batch import encode_batch
from ledger.suite import Suite
from scripts import bench
from scripts.demo import run_demo
from tests.ledger.databases import Database
from tests.ledger.indexer import index_child
from tests.ledger.indexer.rpc_proxy import (
    Delay,
    Drop,
    Fault,
    HttpError,
    Pass,
    Rewrite,
    RpcError,
    RpcProxy,
    proxy_chain,
    served_twice,
)

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[3]
LOG_TABLES: tuple[type[Any], ...] = (Touchpoint, Rejection, Claim, ConsentEvent, CampaignEvent)  # a row per log
ROW_TABLES: tuple[type[Any], ...] = (*LOG_TABLES, Campaign)  # every table whose rows carry their log's block
# seconds: the indexer's request timeout behind the proxy, far above a loaded machine's slowest answer (a timeout
# that is not a fault would add a pause); a Delay of 3x that is a node that hangs
TIMEOUT = 0.5
BACKOFF = 0.01  # seconds, the first retry's pause (doubled each retry); recorded, never slept
FOREIGN = "0x" + "ee" * 20


def _topic(contract: str, event: str) -> str:
    (abi,) = [item for item in artifact(contract)["abi"] if item["type"] == "event" and item["name"] == event]
    return "0x" + event_abi_to_log_topic(abi).hex()


REWARDED = _topic("CampaignEscrow", "Rewarded")


def _rpc(chain: Chain, method: str, *params: Any) -> Any:
    """A raw JSON-RPC result straight from anvil: never through the proxy, no web3 formatting (slow on many logs)."""
    return chain.w3.provider.make_request(RPCEndpoint(method), list(params))["result"]


def _raw_logs(suite: Suite, **query: Any) -> list[dict[str, Any]]:
    """The suite's raw logs since deployment."""
    query = {"fromBlock": hex(suite.deployment.deploy_block), "toBlock": "latest",
             "address": [suite.deployment.escrow, suite.deployment.registry]} | query  # fmt: skip
    return list(_rpc(suite.chain, "eth_getLogs", query))


def _key(log: dict[str, Any]) -> tuple[str, int]:
    return str(log["transactionHash"]).lower(), int(log["logIndex"], 16)


def _cursor(session: Session, suite: Suite) -> int | None:
    key = checkpoint.contract_set_key([suite.deployment.escrow, suite.deployment.registry])
    cursor = checkpoint.load_cursor(session, suite.chain.chain_id, key)
    return None if cursor is None else cursor.number


def _assert_db_equals_chain(suite: Suite, database: Database) -> None:
    """Every log of the suite up to the head has exactly one row, and every row and every campaign's and consent's
    state agrees with the chain (``reconcile``: campaigns' budget and owed against ``campaignState``)."""
    head = suite.chain.w3.eth.block_number
    with database.sessions() as session:
        report = reconcile(suite.chain, suite.deployment, session)
        assert report.ok, [(d.table, d.kind, d.key, d.describe()) for d in report.differences[:10]]
        assert report.block == _cursor(session, suite) == head  # nothing left unindexed
        stored = [(str(t).lower(), int(i)) for table in LOG_TABLES
                  for t, i in session.execute(select(table.tx_hash, table.log_index))]  # fmt: skip
    assert len(stored) == len(set(stored))  # nothing twice
    assert set(stored) == {_key(log) for log in _raw_logs(suite)}  # nothing missing, nothing foreign


# -- a demo campaign behind a misbehaving node -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(deployed: tuple[Chain, Suite]) -> Iterator[Suite]:
    """The demo campaign (consents, a settlement, rejections, a claim, a close) run once on the module's anvil:
    the tests only read the chain."""
    chain, suite = deployed
    snapshot = chain.snapshot()
    run_demo(suite)
    yield suite
    chain.revert(snapshot)


@pytest.fixture
def proxy(deployed: tuple[Chain, Suite]) -> Iterator[RpcProxy]:
    chain, _ = deployed
    with RpcProxy(str(cast(HTTPProvider, chain.w3.provider).endpoint_uri)) as running:
        yield running


def _source(chain: Chain, suite: Suite, pauses: list[float] | None = None, retries: int = 5,
            **options: Any) -> LogSource:  # fmt: skip
    """The indexer's reader for ``chain``: TIMEOUT per request, ``retries`` retries whose backoff pauses are
    recorded in ``pauses`` instead of slept. (The one place that knows LogSource's constructor.)"""
    sleep = pauses.append if pauses is not None else (lambda _: None)
    rpc = RpcClient(chain, retries=retries, backoff=BACKOFF, timeout=TIMEOUT, sleep=sleep)
    addresses = [suite.deployment.escrow.lower(), suite.deployment.registry.lower()]
    return LogSource(chain, addresses, rpc=rpc, **options)


def _indexer(suite: Suite, proxy: RpcProxy, database: Database, pauses: list[float] | None = None,
             **options: Any) -> Indexer:  # fmt: skip
    """An Indexer of ``suite`` reading through ``proxy`` (see ``_source``), as a restarted process would."""
    chain = proxy_chain(proxy, suite.chain.accounts, TIMEOUT)
    return Indexer(chain, suite.deployment, database.sessions, source=_source(chain, suite, pauses, **options))


def _backoffs(*failures: int) -> list[float]:
    """The pauses of requests that failed ``failures`` times each before succeeding: BACKOFF, 2x, 4x, ..."""
    return sorted(BACKOFF * 2**attempt for count in failures for attempt in range(count))


class TestTransientFailures:
    def test_timeouts_dropped_connections_and_busy_answers_are_retried_with_backoff(
        self, demo: Suite, proxy: RpcProxy, database: Database
    ):
        proxy.fault("eth_blockNumber", Delay(3 * TIMEOUT))
        proxy.fault("eth_getLogs", Drop(), HttpError(429), HttpError(503, "Service Unavailable"))
        proxy.fault("eth_getBlockByNumber", Drop())  # one dropped header read
        pauses: list[float] = []
        _indexer(demo, proxy, database, pauses).run_once()
        assert proxy.pending() == 0  # every fault was met
        assert sorted(pauses) == _backoffs(1, 3, 1)  # the three eth_getLogs failures in a row: 1x, 2x, 4x
        _assert_db_equals_chain(demo, database)

    @pytest.mark.parametrize(
        "error",
        [
            pytest.param(RpcError(429, "Too Many Requests"), id="code-429"),
            pytest.param(RpcError(-32000, "too many requests, try again later"), id="try-again"),
            pytest.param(RpcError(-32005, "daily request count exceeded, request rate limited"), id="infura-32005"),
            pytest.param(RpcError(-32000, "rate limit exceeded"), id="rate-limit-exceeded"),
        ],
    )
    def test_a_json_rpc_rate_limit_answer_is_retried_with_backoff(
        self, demo: Suite, proxy: RpcProxy, database: Database, error: RpcError
    ):
        proxy.fault("eth_blockNumber", error, error)
        proxy.fault("eth_getBlockByNumber", error)
        pauses: list[float] = []
        _indexer(demo, proxy, database, pauses).run_once()
        assert proxy.pending() == 0
        assert sorted(pauses) == _backoffs(2, 1)
        _assert_db_equals_chain(demo, database)

    def test_the_indexer_as_adledger_index_builds_it_rides_out_a_drop_and_a_429(
        self, demo: Suite, proxy: RpcProxy, database: Database, tmp_path: Path
    ):
        """``connect(Settings(chain=url))`` and the Indexer's default source: real backoff pauses (0.2 s each)."""
        proxy.fault("eth_blockNumber", HttpError(429))
        proxy.fault("eth_getLogs", Drop())
        with connect(Settings(chain=proxy.url, data_dir=tmp_path)) as chain:
            Indexer(chain, demo.deployment, database.sessions).run_once()
        assert proxy.pending() == 0
        _assert_db_equals_chain(demo, database)


class TestRetryBudget:
    @pytest.mark.parametrize(
        "fault",
        [Drop(), Delay(3 * TIMEOUT), HttpError(503, "Service Unavailable")],
        ids=["dropped", "timeout", "http-503"],
    )
    def test_a_node_failing_past_the_budget_raises_chain_error_and_the_next_run_resumes_from_the_checkpoint(
        self, demo: Suite, proxy: RpcProxy, database: Database, fault: Fault
    ):
        retries = 2
        # one block per page, so there is a checkpoint to resume from when the node gives out mid catch-up
        options: dict[str, Any] = {"retries": retries, "initial_range": 1, "max_range": 1}
        proxy.fault("eth_getLogs", *[Pass()] * 6, *[fault] * (retries + 1))
        with pytest.raises(ChainError, match="eth_getLogs") as raised:
            _indexer(demo, proxy, database, **options).run_once()
        assert raised.value.code == "chain_unavailable"
        assert proxy.pending() == 0
        with database.sessions() as session:
            cursor = _cursor(session, demo)
            report = reconcile(demo.chain, demo.deployment, session)
        assert cursor is not None and cursor < demo.chain.w3.eth.block_number  # stopped mid catch-up
        assert report.ok and report.block == cursor  # what was committed is whole and right
        assert sum(count.db for count in report.counts.values()) > 0

        resumed_from = len(proxy.calls("eth_getLogs"))
        _indexer(demo, proxy, database, **options).run_once()  # a restarted process, the node healthy again
        first_query = proxy.calls("eth_getLogs")[resumed_from][0]
        assert int(first_query["fromBlock"], 16) == cursor + 1
        _assert_db_equals_chain(demo, database)


class TestMisbehavingAnswers:
    def test_a_block_range_served_twice_in_one_answer_is_stored_once(
        self, demo: Suite, proxy: RpcProxy, database: Database
    ):
        doubled: list[int] = []

        def twice(result: Any, params: list[Any]) -> Any:
            doubled.append(len(result))
            return served_twice(result, params)

        proxy.always("eth_getLogs", Rewrite(twice))
        _indexer(demo, proxy, database).run_once()
        assert sum(doubled) >= len(_raw_logs(demo))  # every log was served twice at least once
        _assert_db_equals_chain(demo, database)  # campaign budget and owed included (reconcile's state check)

    def test_logs_served_again_with_the_next_range_are_stored_once(
        self, demo: Suite, proxy: RpcProxy, database: Database
    ):
        """A lagging replica: each answer also carries the logs of the previous non-empty answer."""
        previous: list[Any] = []

        def with_previous(result: Any, _: list[Any]) -> Any:
            stale = list(previous)
            if result:
                previous[:] = result
            return stale + result

        proxy.always("eth_getLogs", Rewrite(with_previous))
        _indexer(demo, proxy, database, initial_range=1, max_range=2).run_once()
        _assert_db_equals_chain(demo, database)

    def test_a_foreign_contract_log_and_an_unknown_event_are_skipped_and_counted(
        self, demo: Suite, proxy: RpcProxy, database: Database
    ):
        rewarded = _raw_logs(demo, topics=[REWARDED])[0]
        unknown_topic = "0x" + keccak(text="Unknown(uint256)").hex()

        def inject(result: Any, _: list[Any]) -> Any:
            """Into every answer holding the first Rewarded log: a copy from another contract, and one of the
            escrow's with a topic no ABI of the suite declares (log indexes no real log has, so a row stored for
            either would show up as extra)."""
            if not any(_key(log) == _key(rewarded) for log in result):
                return result
            foreign = rewarded | {"address": FOREIGN, "logIndex": hex(0x7FFE)}
            unknown = rewarded | {"topics": [unknown_topic, *rewarded["topics"][1:]], "logIndex": hex(0x7FFF)}
            return [*result, foreign, unknown]

        proxy.always("eth_getLogs", Rewrite(inject))
        stats = _indexer(demo, proxy, database).run_once()
        assert stats.skipped == 2
        _assert_db_equals_chain(demo, database)


# -- SIGKILL during a long catch-up ------------------------------------------------------------------------------

SETTLES = 40  # settle transactions, one per block
CONSUMERS = 50
PER_CONSUMER = 5  # engagements per consumer per settle: 250 Rewarded logs in each of the 40 blocks
SETTLE_GAS = 4_000_000  # 250 engagements to new consumers use ~2.2M
PAGE_LOGS = 300  # the child's page size in logs (target and maximum): a page per dense block, ~40 commits
KILLS = 8
LEFT_TO_FINISH = 12  # dense blocks after the last kill point: ~0.2 s of indexing, far more than a kill's lag
LIFE_LIMIT = 60.0  # seconds: an indexer process that neither commits nor ends by then hangs
READER_PAUSE = 0.005  # seconds between the reader's looks, leaving the two cores to the indexer, anvil and the DB


@dataclass(frozen=True)
class LongCatchUp:
    suite: Suite
    url: str
    campaign_id: int
    rewarded: dict[tuple[str, int], int]  # (tx hash, log index) -> block, for every Rewarded log


def _settle_transactions(b: bench.Bench, campaign_id: int, consumers: list[Any]) -> list[bytes]:
    """SETTLES signed settle transactions of CONSUMERS x PER_CONSUMER new engagements each (bench's way)."""
    chain, attester = b.chain, b.chain.accounts.attester
    nonce = chain.w3.eth.get_transaction_count(attester.address, "pending")
    fee = 2 * int(chain.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9
    raw = []
    for i in range(SETTLES):
        batch = b.engagements(consumers, PER_CONSUMER, i * CONSUMERS * PER_CONSUMER)
        data = b.suite.escrow.functions.settle(campaign_id, encode_batch(batch))._encode_transaction_data()
        tx = {"to": b.suite.escrow.address, "data": data, "nonce": nonce + i, "gas": SETTLE_GAS,
              "maxFeePerGas": fee, "maxPriorityFeePerGas": 10**9, "chainId": chain.chain_id}  # fmt: skip
        raw.append(bytes(attester.sign_transaction(tx).raw_transaction))
    return raw


def _mine_one_by_one(chain: Chain, raws: list[bytes]) -> None:
    """Each transaction in a block of its own: sent with automine on, its receipt awaited before the next."""
    for raw in raws:
        tx_hash = _rpc(chain, "eth_sendRawTransaction", "0x" + raw.hex())
        deadline = time.monotonic() + 10
        while (receipt := _rpc(chain, "eth_getTransactionReceipt", tx_hash)) is None:
            assert time.monotonic() < deadline, f"{tx_hash} not mined: anvil stalled?"
            time.sleep(0.01)
        assert receipt["status"] == "0x1", receipt


@pytest.fixture(scope="module")
def long_catch_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LongCatchUp]:
    """An anvil of its own: 50 consents by signature, one campaign, then 40 blocks of 250 Rewarded logs each
    (scripts/bench.py's generator, scaled down)."""
    settings = Settings(chain="anvil", data_dir=tmp_path_factory.mktemp("anvil-long"), anvil_state=False)
    with connect(settings) as chain:
        chain.rpc("evm_setNextBlockTimestamp", [bench.GENESIS_TIME])  # the bench's campaign dates are pinned
        chain.mine()
        suite = Suite.deploy(chain)
        suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, 100 * bench.BUDGET)
        b = bench.Bench(chain, suite, cast(Contract, None), relayer=chain.accounts.deployer)
        consumers = b.consumers(CONSUMERS)
        b.grant_consent(consumers)
        campaign_id = b.campaign()
        chain.increase_time(bench.ENGAGEMENT_TIME + 100 - chain.latest_timestamp())
        _mine_one_by_one(chain, _settle_transactions(b, campaign_id, consumers))
        rewarded = {_key(log): int(log["blockNumber"], 16) for log in _raw_logs(suite, topics=[REWARDED])}
        assert len(rewarded) == SETTLES * CONSUMERS * PER_CONSUMER
        assert len(set(rewarded.values())) == SETTLES
        yield LongCatchUp(suite, str(cast(HTTPProvider, chain.w3.provider).endpoint_uri), campaign_id, rewarded)


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.ForkServerContext:
    """Processes forked from a server that imported the indexer once (a fresh interpreter takes ~2 s); started
    at once, so it imports while the long chain is generated. It is started from the repository root: Python
    3.11's forkserver ignores the parent's sys.path and imports from its working directory (under tests/, the
    test package ``tests/ledger`` would shadow the library ``ledger``)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(index_child.PRELOAD))
    working_directory = os.getcwd()
    os.chdir(ROOT)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.chdir(working_directory)
    return context


class _Reader:
    """What another process sees while the indexer runs: it must always be a prefix of the chain.

    One snapshot per look (PostgreSQL: REPEATABLE READ; SQLite's WAL read transactions are snapshots already): the
    cursor, the number of touchpoints in each block (``every_key`` adds every touchpoint's key: thorough, but too
    slow to look often while the indexer runs), the newest block of every table and the campaign's budget and owed.
    """

    def __init__(self, catch_up: LongCatchUp, database: Database) -> None:
        self.chain, self.database = catch_up, database
        self.per_block = Counter(catch_up.rewarded.values())
        self._state_at: dict[int, tuple[int, int]] = {}

    def cursor(self) -> int | None:
        """The stored cursor block, and nothing else: quick enough to catch the indexer at a given block."""
        with self.database.sessions() as session:
            return _cursor(session, self.chain.suite)

    def look(self, every_key: bool = False) -> int | None:
        """Asserts the prefix property once; returns the cursor block (None before the first commit)."""
        suite = self.chain.suite
        with self.database.sessions() as session:
            if self.database.kind == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            cursor = _cursor(session, suite)
            per_block = select(Touchpoint.block_number, func.count()).group_by(Touchpoint.block_number)
            counts = {int(block): int(n) for block, n in session.execute(per_block)}
            keys = session.execute(select(Touchpoint.tx_hash, Touchpoint.log_index)).all() if every_key else []
            newest = [session.execute(select(func.max(t.block_number))).scalar_one() for t in ROW_TABLES]
            campaign = session.execute(select(Campaign.budget, Campaign.owed)).one_or_none()
        upto = -1 if cursor is None else cursor
        assert counts == {b: n for b, n in self.per_block.items() if b <= upto}, f"not the prefix up to {cursor}"
        assert all(n is None or n <= upto for n in newest), f"a row above the cursor {cursor}"
        if every_key:
            stored = [(str(t).lower(), int(i)) for t, i in keys]
            assert len(stored) == len(set(stored)), "a touchpoint stored twice"
            assert set(stored) == {k for k, b in self.chain.rewarded.items() if b <= upto}
        if campaign is not None:
            assert (int(campaign.budget), int(campaign.owed)) == self._state(upto), f"campaign not at {cursor}"
        return cursor

    def _state(self, block: int) -> tuple[int, int]:
        """(budget, owed) of the campaign in the escrow at ``block``."""
        if block not in self._state_at:
            state = self.chain.suite.escrow.functions.campaignState(self.chain.campaign_id).call(block_identifier=block)
            self._state_at[block] = (int(state[2]), int(state[3]))
        return self._state_at[block]


def _reached(cursor: int | None, target: int, before: int | None) -> bool:
    """Whether this life has committed (the cursor moved since ``before``) and reached ``target``."""
    return cursor is not None and cursor >= target and cursor != before


class _Watching:
    """The reader looking again and again in a thread of its own while indexers live and die; ``check`` raises
    the first failed look in the test."""

    def __init__(self, reader: _Reader) -> None:
        self.reader, self.looks = reader, 0
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reader", daemon=True)

    def __enter__(self) -> _Watching:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set() and self.failure is None:
            try:
                self.reader.look()
            except BaseException as exc:  # noqa: BLE001 - raised in the test by check()
                self.failure = exc
            self.looks += 1
            time.sleep(READER_PAUSE)

    def check(self) -> None:
        if self.failure is not None:
            raise self.failure


class _Lives:
    """Indexer processes forked one after another from the forkserver; one still running at exit is killed."""

    def __init__(self, context: multiprocessing.context.ForkServerContext, args: tuple[Any, ...]) -> None:
        self.context, self.args = context, args
        self.current: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> _Lives:
        return self

    def __exit__(self, *_: object) -> None:
        if self.current is not None and self.current.is_alive():
            self.current.kill()
            self.current.join()

    def start(self) -> multiprocessing.process.BaseProcess:
        self.current = self.context.Process(target=index_child.run, args=self.args, daemon=True)
        self.current.start()
        return self.current


class TestSigkill:
    def test_killed_again_and_again_during_a_long_catch_up_it_ends_equal_to_the_chain(
        self, forkserver: multiprocessing.context.ForkServerContext, long_catch_up: LongCatchUp, database: Database
    ):
        suite = long_catch_up.suite
        head = suite.chain.w3.eth.block_number
        # a kill as the cursor reaches each of KILLS random dense blocks, 0-10 ms later (mid-page, often mid-commit);
        # the last dense blocks are left to the final life, so no life ends before its kill
        rng = random.Random(f"sigkill {database.kind}")  # seeded: the same kill points on every run
        dense = sorted(set(long_catch_up.rewarded.values()))
        targets = sorted(rng.sample(dense[:-LEFT_TO_FINISH], KILLS))
        reader = _Reader(long_catch_up, database)
        args = (long_catch_up.url, database.engine.url.render_as_string(hide_password=False),
                asdict(suite.deployment), PAGE_LOGS)  # fmt: skip
        left_behind: list[int] = []
        with _Watching(reader) as watching, _Lives(forkserver, args) as lives:
            for target in targets:
                before = reader.cursor()
                child = lives.start()
                deadline = time.monotonic() + LIFE_LIMIT
                while child.is_alive() and not _reached(reader.cursor(), target, before):
                    assert time.monotonic() < deadline, f"no commit up to block {target} in {LIFE_LIMIT} s"
                    time.sleep(0.001)
                time.sleep(rng.uniform(0.0, 0.01))
                assert child.is_alive(), f"the indexer ended (exit code {child.exitcode}) before it was killed"
                child.kill()
                child.join()
                assert child.exitcode == -signal.SIGKILL
                cursor = reader.look(every_key=True)  # what the dead process left behind
                assert cursor is not None and cursor < head
                left_behind.append(cursor)
                watching.check()
            assert left_behind == sorted(set(left_behind))  # every life committed something

            last = lives.start()
            last.join(LIFE_LIMIT)
            assert last.exitcode == 0, f"the last indexer {'hangs' if last.is_alive() else 'failed'}"
        watching.check()
        assert watching.looks >= KILLS  # the reader did look while indexers ran (typically hundreds of times)
        assert reader.look(every_key=True) == head
        _assert_db_equals_chain(suite, database)
