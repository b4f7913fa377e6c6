"""Benchmarks, never timed tests. ``gas``: what settlement and the signed actions cost on chain.

Gas per engagement is a settle() receipt's gasUsed (base and calldata included) divided by the engagements in
the batch, for batches of 500 with k engagements per consumer, for returning consumers (their account word in
the campaign is already nonzero) and new ones; beside two baselines measured in the same run: one ERC-20
transfer per engagement in its own transaction, and NaiveEscrow (contracts/mocks). Gas is deterministic: the
run pins the chain clock, keys and evidence, so the figures are committed in snapshots/gas.json and a test
compares a fresh run with them exactly.

``intake``: engagements through the API until settled and indexed (``scripts.bench_intake``).

``index`` (``python -m scripts.bench index [LOGS [PROFILE_DIR]]``): how fast ``Indexer.run_once`` stores Rewarded
logs into SQLite and PostgreSQL, with peak memory, beside a naive web3 + ORM baseline measured in the same run;
wall-clock figures, printed, never snapshotted (see ``measure_index``).
"""

from __future__ import annotations

import cProfile
import gc
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import psycopg
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import Engine, func, make_url, select
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.chain import Chain, connect
from ledger.contracts import deploy, events, transact
from ledger.crm.onchain import Touchpoint
from ledger.db import engine_from_url, session_factory, upgrade
from ledger.indexer.runner import Indexer
from ledger.model import Action, Purpose
from ledger.settings import Settings
from ledger.settlement.batch import Engagement, encode_batch
from ledger.settlement.records import RewardRecord
from ledger.suite import CampaignTerms, Suite

Progress = Callable[[str], None]

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "snapshots" / "gas.json"

BATCH = 500
KS = (1, 5, 10)
GENESIS_TIME = 1_800_000_000  # pinned so calldata (engagement times) is identical on every run
ENGAGEMENT_TIME = GENESIS_TIME + 10_000
REWARD = 10**15
BUDGET = 10**24
FAR_FUTURE = GENESIS_TIME + 10 * 365 * 86_400
BULK_GAS = 300_000  # a fixed gas limit for pre-signed bulk transactions (grants, transfers, claims)

# Targets from the foundation issue: gas per engagement, and the ratio to the naive batch.
TARGETS = {
    "settle 500: returning consumers, 5 each (gas/engagement)": 5_200,
    "settle 500: returning consumers, 1 each (gas/engagement)": 12_500,
    "settle 500: new consumers, 5 each (gas/engagement)": 8_800,
    "settle 500: returning consumers, 10 each (gas/engagement)": 4_400,
    "claim one campaign: returning consumer": 60_000,
}
MIN_NAIVE_RATIO = 6.0


def lean_key(kind: str, k: int) -> str:
    return f"settle 500: {kind} consumers, {k} each (gas/engagement)"


def naive_key(kind: str, k: int) -> str:
    return f"naive batch 500: {kind} consumers, {k} each (gas/engagement)"


@dataclass
class Bench:
    chain: Chain
    suite: Suite
    naive: Contract
    relayer: LocalAccount
    next_key: int = 0

    def consumers(self, count: int) -> list[LocalAccount]:
        """Fresh deterministic accounts (the same on every run)."""
        start, self.next_key = self.next_key, self.next_key + count
        return [Account.from_key(keccak(text=f"adledger bench consumer {i}")) for i in range(start, start + count)]

    def bulk(self, sender: LocalAccount, calls: Sequence[ContractFunction]) -> list[TxReceipt]:
        return send_bulk(self.chain, sender, calls)

    def grant_consent(self, consumers: Sequence[LocalAccount]) -> list[TxReceipt]:
        """Every consumer consents to ADS for the brand, by signature the relayer submits (gasless)."""
        brand = self.chain.accounts.marketer.address
        deadline = FAR_FUTURE
        calls = [
            self.suite.registry.functions.grantBySig(
                c.address,
                brand,
                int(Purpose.ADS),
                FAR_FUTURE,
                deadline,
                self.suite.sign_grant(c, brand, int(Purpose.ADS), FAR_FUTURE, deadline),
            )
            for c in consumers
        ]
        return self.bulk(self.relayer, calls)

    def campaign(self) -> int:
        return self.create_campaign()[0]

    def create_campaign(self) -> tuple[int, TxReceipt]:
        marketer = self.chain.accounts.marketer
        terms = CampaignTerms(
            token=self.suite.token.address,
            brand=marketer.address,
            starts_at=GENESIS_TIME,
            ends_at=FAR_FUTURE,
            rewards={Action.AD_VIEW: REWARD},
            purposes={Action.AD_VIEW: int(Purpose.ADS)},
            lifetime_caps={},
            daily_caps={},
        )
        # a pinned permit deadline keeps the calldata, and so the gas, identical on every run
        attesters = [self.chain.accounts.attester.address]
        return self.suite.create_campaign(marketer, terms, BUDGET, attesters, deadline=FAR_FUTURE)

    def engagements(self, consumers: Sequence[LocalAccount], k: int, first_id: int) -> list[Engagement]:
        out = []
        for i, consumer in enumerate(consumers):
            for j in range(k):
                event_id = first_id + i * k + j
                out.append(
                    Engagement(
                        consumer.address,
                        Action.AD_VIEW,
                        event_id,
                        ENGAGEMENT_TIME + j,
                        keccak(text=f"evidence {event_id}"),
                    )
                )
        return out

    def settle(self, campaign_id: int, engagements: list[Engagement]) -> TxReceipt:
        attester = self.chain.accounts.attester
        return transact(
            self.chain, attester, self.suite.escrow.functions.settle(campaign_id, encode_batch(engagements))
        )

    def naive_settle(self, campaign_id: int, engagements: list[Engagement]) -> TxReceipt:
        rows = [(e.consumer, int(e.action), e.event_id.to_bytes(32, "big"), e.time, e.evidence) for e in engagements]
        attester = self.chain.accounts.attester
        return transact(self.chain, attester, self.naive.functions.settle(campaign_id, rows))

    def naive_campaign(self) -> int:
        marketer = self.chain.accounts.marketer
        transact(self.chain, marketer, self.suite.token.functions.approve(self.naive.address, BUDGET))
        rewards = [REWARD if a == Action.AD_VIEW else 0 for a in Action]
        purposes = [int(Purpose.ADS) if a == Action.AD_VIEW else 0 for a in Action]
        call = self.naive.functions.createCampaign(
            self.suite.token.address, marketer.address, self.chain.accounts.attester.address, BUDGET, rewards, purposes
        )
        transact(self.chain, marketer, call)
        return int(self.naive.functions.campaignCount().call())


def sign_in_order(
    chain: Chain,
    sender: LocalAccount,
    calls: Sequence[ContractFunction],
    *,
    gas: int = BULK_GAS,
    nonce: int | None = None,
) -> list[bytes]:
    """``calls`` as transactions from ``sender`` with consecutive nonces from ``nonce`` (default its pending count),
    a fixed gas limit and fees, signed up front so sending them costs no signing time."""
    if nonce is None:
        nonce = chain.w3.eth.get_transaction_count(sender.address, "pending")
    fee = 2 * int(chain.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9
    raw = []
    for i, call in enumerate(calls):
        tx = {
            "to": call.address,
            "data": call._encode_transaction_data(),
            "nonce": nonce + i,
            "gas": gas,
            "maxFeePerGas": fee,
            "maxPriorityFeePerGas": 10**9,
            "chainId": chain.chain_id,
        }
        raw.append(bytes(sender.sign_transaction(tx).raw_transaction))
    return raw


def send_bulk(chain: Chain, sender: LocalAccount, calls: Sequence[ContractFunction]) -> list[TxReceipt]:
    """Pre-signed transactions from one sender, mined in bulk (anvil's stall-safe path); every one must succeed."""
    receipts = chain.send_raw_batch(sign_in_order(chain, sender, calls))
    failed = [r for r in receipts if r["status"] != 1]
    if failed:
        raise RuntimeError(f"{len(failed)} bulk transactions failed, first {failed[0]['transactionHash'].hex()}")
    return receipts


def per_engagement(receipt: TxReceipt, count: int) -> int:
    return round(int(receipt["gasUsed"]) / count)


def _measure_settlement(
    bench: Bench, cohorts: dict[tuple[str, int], list[LocalAccount]], results: dict[str, int], progress: Progress
) -> None:
    for (kind, k), consumers in cohorts.items():
        progress(f"settle 500: {kind} consumers, {k} each")
        lean, naive = bench.campaign(), bench.naive_campaign()
        next_id = 0
        if kind == "returning":
            warm = bench.engagements(consumers, 1, 0)
            bench.settle(lean, warm)
            bench.naive_settle(naive, warm)
            next_id = len(warm)
        batch = bench.engagements(consumers, k, next_id)
        receipt = bench.settle(lean, batch)
        paid = len(events(bench.suite.escrow, "Rewarded", receipt))
        if paid != BATCH:
            raise RuntimeError(f"expected {BATCH} paid engagements, got {paid}")
        results[lean_key(kind, k)] = per_engagement(receipt, BATCH)
        results[naive_key(kind, k)] = per_engagement(bench.naive_settle(naive, batch), BATCH)


def _measure_transfers(bench: Bench, results: dict[str, int], progress: Progress) -> None:
    progress("baseline: one ERC-20 transfer per engagement")
    payer = bench.chain.accounts.marketer
    consumers = bench.consumers(BATCH)
    token = bench.suite.token.functions
    first = bench.bulk(payer, [token.transfer(c.address, REWARD) for c in consumers])
    again = bench.bulk(payer, [token.transfer(c.address, REWARD) for c in consumers])
    results["ERC-20 transfer per engagement, own transaction: new consumer"] = round(
        sum(int(r["gasUsed"]) for r in first) / len(first)
    )
    results["ERC-20 transfer per engagement, own transaction: returning consumer"] = round(
        sum(int(r["gasUsed"]) for r in again) / len(again)
    )


def _measure_operations(bench: Bench, consumer: LocalAccount, results: dict[str, int], progress: Progress) -> None:
    progress("claims and campaign creation")
    chain, suite = bench.chain, bench.suite
    # gas money for the direct claims; the relayed one shows the consumer needs none
    chain.send(chain.accounts.deployer, {"to": consumer.address, "value": 10**18})
    campaign_id, created = bench.create_campaign()
    results["createCampaignWithPermit"] = int(created["gasUsed"])
    first_id = 0
    for label in ("claim one campaign: first claim", "claim one campaign: returning consumer"):
        bench.settle(campaign_id, bench.engagements([consumer], 1, first_id))
        first_id += 1
        receipt = transact(chain, consumer, suite.escrow.functions.claim([campaign_id], consumer.address))
        results[label] = int(receipt["gasUsed"])
    bench.settle(campaign_id, bench.engagements([consumer], 1, first_id))
    deadline = FAR_FUTURE
    signature = suite.sign_claim(consumer, [campaign_id], consumer.address, deadline)
    call = suite.escrow.functions.claimBySig(consumer.address, [campaign_id], consumer.address, deadline, signature)
    results["claimBySig one campaign: returning consumer, relayed"] = int(
        transact(chain, bench.relayer, call)["gasUsed"]
    )


def measure_gas(progress: Progress = lambda _: None) -> dict[str, int]:
    """Runs the gas benchmark on a fresh anvil with a pinned clock; returns the figures by readable name."""
    with tempfile.TemporaryDirectory(prefix="adledger-bench-") as data_dir:
        settings = Settings(chain="anvil", data_dir=Path(data_dir), anvil_state=False)
        with connect(settings) as chain:
            chain.rpc("evm_setNextBlockTimestamp", [GENESIS_TIME])
            chain.mine()
            suite = Suite.deploy(chain)
            naive, _ = deploy(chain, chain.accounts.deployer, "NaiveEscrow", suite.registry.address)
            suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, 100 * BUDGET)
            bench = Bench(chain, suite, naive, relayer=chain.accounts.deployer)

            # Every consent is granted before the engagements' pinned time, then the clock moves past it.
            progress("consent by signature for every consumer")
            cohorts = {(kind, k): bench.consumers(BATCH // k) for k in KS for kind in ("returning", "new")}
            (claimer,) = bench.consumers(1)
            grants = bench.grant_consent([*[c for group in cohorts.values() for c in group], claimer])
            results = {"grantBySig: first consent to a brand, relayed": int(grants[-1]["gasUsed"])}
            chain.increase_time(ENGAGEMENT_TIME + 100 - chain.latest_timestamp())

            _measure_settlement(bench, cohorts, results, progress)
            _measure_transfers(bench, results, progress)
            _measure_operations(bench, claimer, results, progress)
    return dict(sorted(results.items()))


def check_targets(results: dict[str, int]) -> list[str]:
    """Every target the figures miss, as a sentence; empty when all hold."""
    misses = [f"{key}: {results[key]:,} > {target:,}" for key, target in TARGETS.items() if results[key] > target]
    ratio = results[naive_key("returning", 5)] / results[lean_key("returning", 5)]
    if ratio < MIN_NAIVE_RATIO:
        misses.append(f"naive/lean at returning k=5 is {ratio:.1f}x < {MIN_NAIVE_RATIO}x")
    return misses


def write_snapshot(results: dict[str, int], path: Path = SNAPSHOT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def read_snapshot(path: Path = SNAPSHOT) -> dict[str, int]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {key: int(value) for key, value in data.items()}


# -- index: how fast the indexer turns Rewarded logs into rows -------------------------------------------------
#
# A benchmark, not a test: wall-clock figures vary with the machine. One run builds a chain holding ``logs``
# Rewarded logs (one campaign, AD_VIEW uncapped, ~200 consenting consumers, settle batches of 1,000 sent
# pre-signed in bulk), then times Indexer.run_once() into a fresh SQLite file and a fresh PostgreSQL schema,
# beside the naive baseline (web3 get_logs + one ORM insert and commit per row) on a sample.

INDEX_LOGS = 100_000
INDEX_BATCH = 1_000  # engagements per settle transaction
INDEX_CONSUMERS = 200  # k = INDEX_BATCH / INDEX_CONSUMERS = 5 engagements per consumer per batch
INDEX_SETTLE_GAS = 12_000_000  # 1,000 engagements to new consumers ~ 8.8M; two settles fit a 30M block
INDEX_BASELINE_LOGS = 5_000
INDEX_SEND_CHUNK = 8  # settle transactions (~40 kB of calldata each) per bulk send
INDEX_MIN_RATE = 30_000.0  # Rewarded logs/s, into each database
INDEX_MIN_RATIO = 20.0  # over the naive baseline
INDEX_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE


class _PeakRss:
    """Samples the resident set every few milliseconds in a thread; ``peak_mb`` is the rise over the start.

    RSS, not tracemalloc (which slows Python several-fold): it also counts the database drivers' C allocations.
    Memory freed by an earlier run and reused by this one does not show as a rise, so runs to compare are done
    smallest first.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval, self.start, self.peak = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _PeakRss:
        gc.collect()
        self.start = self.peak = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def peak_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@dataclass
class IndexChain:
    """The generated chain: where the logs are, and the block after which ``quarter`` Rewarded logs exist."""

    bench: Bench
    campaign_id: int
    rewarded: int
    quarter: int
    quarter_block: int
    # (block number, Rewarded logs in that block) in chain order, for picking the baseline's sample range
    blocks: list[tuple[int, int]]


def _sign_settles(bench: Bench, campaign_id: int, batches: Sequence[list[Engagement]], nonce: int) -> list[bytes]:
    settle = bench.suite.escrow.functions.settle
    calls = [settle(campaign_id, encode_batch(batch)) for batch in batches]
    return sign_in_order(bench.chain, bench.chain.accounts.attester, calls, gas=INDEX_SETTLE_GAS, nonce=nonce)


def _generate_logs(chain: Chain, logs: int, progress: Progress) -> IndexChain:
    """Deploys the suite and settles batches until ``logs`` Rewarded logs exist (a multiple of INDEX_BATCH)."""
    chain.rpc("evm_setNextBlockTimestamp", [GENESIS_TIME])
    chain.mine()
    suite = Suite.deploy(chain)
    suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, 100 * BUDGET)
    bench = Bench(chain, suite, cast(Contract, None), relayer=chain.accounts.deployer)
    consumers = bench.consumers(INDEX_CONSUMERS)
    bench.grant_consent(consumers)
    campaign_id = bench.campaign()  # AD_VIEW only, uncapped; REWARD * logs is far below BUDGET
    chain.increase_time(ENGAGEMENT_TIME + 100 - chain.latest_timestamp())

    k = INDEX_BATCH // INDEX_CONSUMERS
    batches = -(-logs // INDEX_BATCH)
    quarter_batches = max(1, batches // 4)
    blocks: dict[int, int] = {}
    quarter_block, rewarded = 0, 0
    nonce = chain.w3.eth.get_transaction_count(chain.accounts.attester.address, "pending")
    # Two bulk sends: the first ends exactly at the quarter, so a run can stop there (confirmations).
    for first, last in ((0, quarter_batches), (quarter_batches, batches)):
        if first == last:
            continue
        progress(f"settling batches {first + 1}-{last} of {batches} ({INDEX_BATCH:,} engagements each)")
        work = [bench.engagements(consumers, k, b * INDEX_BATCH) for b in range(first, last)]
        raw = _sign_settles(bench, campaign_id, work, nonce + first)
        receipts = []
        for start in range(0, len(raw), INDEX_SEND_CHUNK):  # anvil refuses a JSON-RPC body of many MB
            receipts += chain.send_raw_batch(raw[start : start + INDEX_SEND_CHUNK])
        failed = [r for r in receipts if r["status"] != 1]
        if failed:
            raise RuntimeError(f"{len(failed)} settle transactions failed")
        for receipt in receipts:
            paid = len(events(suite.escrow, "Rewarded", receipt))
            if paid != INDEX_BATCH:
                raise RuntimeError(f"expected {INDEX_BATCH} Rewarded logs per settle, got {paid}")
            number = int(receipt["blockNumber"])
            blocks[number] = blocks.get(number, 0) + paid
            rewarded += paid
        if first == 0:
            quarter_block = max(blocks)
    return IndexChain(bench, campaign_id, rewarded, quarter_batches * INDEX_BATCH, quarter_block,
                      sorted(blocks.items()))  # fmt: skip


@contextmanager
def fresh_database(kind: str, root: Path) -> Iterator[Engine]:
    """A fresh migrated database: a SQLite file under root, or a uniquely named PostgreSQL schema dropped after."""
    if kind == "sqlite":
        engine = engine_from_url(f"sqlite:///{root / f'index-{secrets.token_hex(4)}.db'}")
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"adledger_bench_{secrets.token_hex(6)}"
    url = make_url(os.environ.get("ADLEDGER_BENCH_POSTGRES_URL", INDEX_POSTGRES_URL))
    admin_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    engine = engine_from_url(url.update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _count_touchpoints(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Touchpoint)).scalar_one())


def _run_indexer(generated: IndexChain, kind: str, root: Path, upto: int | None, profile: Path | None = None
                 ) -> dict[str, float]:  # fmt: skip
    """One Indexer.run_once() from the deploy block into a fresh database; up to block ``upto`` (else head)."""
    chain = generated.bench.chain
    with fresh_database(kind, root) as engine:
        confirmations = 0 if upto is None else chain.w3.eth.block_number - upto
        indexer = Indexer(chain, generated.bench.suite, session_factory(engine), confirmations=confirmations)
        profiler = cProfile.Profile() if profile is not None else None
        with _PeakRss() as memory:
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            stats = indexer.run_once()
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
        if profiler is not None and profile is not None:
            profiler.dump_stats(str(profile))
        rewarded = _count_touchpoints(engine)
    return {"rewarded": rewarded, "logs": stats.logs, "pages": stats.pages, "seconds": seconds,
            "rate": rewarded / seconds, "peak_mb": memory.peak_mb}  # fmt: skip


def _run_baseline(generated: IndexChain, root: Path, sample: int) -> dict[str, float]:
    """The naive way: web3's ``contract.events.Rewarded().get_logs()`` over the blocks holding the first
    ``sample`` Rewarded logs, then for each event one ORM ``Touchpoint`` added and committed on its own."""
    chain, suite = generated.bench.chain, generated.bench.suite
    first, last, count = generated.blocks[0][0], generated.blocks[0][0], 0
    for number, paid in generated.blocks:
        last, count = number, count + paid
        if count >= sample:
            break
    escrow = suite.escrow.address.lower()
    with fresh_database("sqlite", root) as engine, _PeakRss() as memory:
        sessions = session_factory(engine)
        started = time.perf_counter()
        entries = suite.escrow.events.Rewarded().get_logs(from_block=first, to_block=last)
        fetched = time.perf_counter()
        with sessions() as session:
            for entry in entries:
                record = RewardRecord.unpack(int(entry["args"]["record"]))
                session.add(Touchpoint(
                    chain_id=chain.chain_id, block_number=int(entry["blockNumber"]),
                    block_hash="0x" + bytes(entry["blockHash"]).hex(),
                    tx_hash="0x" + bytes(entry["transactionHash"]).hex(),
                    log_index=int(entry["logIndex"]), escrow=escrow, campaign_id=record.campaign_id,
                    event_id=record.event_id, action=record.action, consumer=str(entry["args"]["consumer"]).lower(),
                    amount=record.amount, evidence_hash="0x" + bytes(entry["args"]["evidenceHash"]).hex(),
                    occurred_at=record.time))  # fmt: skip
                session.commit()
        seconds = time.perf_counter() - started
        stored = _count_touchpoints(engine)
    if stored != len(entries) or stored < sample:
        raise RuntimeError(f"baseline stored {stored} of {len(entries)} logs (wanted {sample})")
    return {"rewarded": stored, "seconds": seconds, "rate": stored / seconds, "peak_mb": memory.peak_mb,
            "get_logs_seconds": fetched - started, "insert_seconds": seconds - (fetched - started)}  # fmt: skip


def measure_index(
    logs: int = INDEX_LOGS,
    progress: Progress = lambda _: None,
    baseline_logs: int = INDEX_BASELINE_LOGS,
    postgres: bool = True,
    profile_dir: Path | None = None,
) -> dict[str, float]:
    """Runs the index benchmark on a fresh anvil; returns flat figures by name (see ``print_index_table``).

    Runs, in this order (smallest first, so RSS peaks are not hidden by memory a larger run freed):
    baseline sample -> SQLite up to logs/4 -> SQLite all -> PostgreSQL up to logs/4 -> PostgreSQL all.
    ``profile_dir`` set: the full-size runs are repeated under cProfile and their stats written there.
    """
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="adledger-bench-index-") as tmp:
        root = Path(tmp)
        settings = Settings(chain="anvil", data_dir=root / "data", anvil_state=False)
        with connect(settings) as chain:
            started = time.perf_counter()
            generated = _generate_logs(chain, logs, progress)
            results["generate.seconds"] = time.perf_counter() - started
            results["generate.rewarded"] = generated.rewarded
            results["generate.blocks"] = chain.w3.eth.block_number

            progress(f"baseline: web3 get_logs + one ORM insert/commit per row, {baseline_logs:,} logs, SQLite")
            for key, value in _run_baseline(generated, root, baseline_logs).items():
                results[f"baseline.{key}"] = value
            kinds = ("sqlite", "postgresql") if postgres else ("sqlite",)
            for kind in kinds:
                for label, upto in (("quarter", generated.quarter_block), ("full", None)):
                    progress(f"indexer into {kind}: {'up to the quarter' if upto else 'all'} logs")
                    for key, value in _run_indexer(generated, kind, root, upto).items():
                        results[f"{kind}.{label}.{key}"] = value
            if profile_dir is not None:
                profile_dir.mkdir(parents=True, exist_ok=True)
                for kind in kinds:
                    progress(f"indexer into {kind} under cProfile")
                    _run_indexer(generated, kind, root, None, profile=profile_dir / f"index-{kind}.prof")
    return results


def index_rows(results: dict[str, float]) -> list[tuple[str, str, str, str, str, str, str]]:
    """The table's rows: (run, Rewarded logs, seconds, logs/s, peak RSS rise MB, x baseline, target)."""
    base = results["baseline.rate"]
    rows = [(
        "baseline: web3 get_logs + ORM insert/commit per row (SQLite, sample)",
        f"{int(results['baseline.rewarded']):,}", f"{results['baseline.seconds']:.2f}", f"{base:,.0f}",
        f"{results['baseline.peak_mb']:.1f}", "1.0x", "-",
    )]  # fmt: skip
    for kind in ("sqlite", "postgresql"):
        for label in ("quarter", "full"):
            prefix = f"{kind}.{label}."
            if prefix + "rate" not in results:
                continue
            rate = results[prefix + "rate"]
            target = f">= {INDEX_MIN_RATE:,.0f}/s, >= {INDEX_MIN_RATIO:.0f}x"
            hit = rate >= INDEX_MIN_RATE and rate / base >= INDEX_MIN_RATIO
            verdict = f"{target} {'ok' if hit else 'MISSED'}" if label == "full" else "memory reference"
            rows.append((
                f"Indexer.run_once -> {kind} ({label})", f"{int(results[prefix + 'rewarded']):,}",
                f"{results[prefix + 'seconds']:.2f}", f"{rate:,.0f}", f"{results[prefix + 'peak_mb']:.1f}",
                f"{rate / base:.1f}x", verdict,
            ))  # fmt: skip
    return rows


def check_index_targets(results: dict[str, float]) -> list[str]:
    """Every index target the figures miss, as a sentence; empty when all hold."""
    misses = []
    base = results["baseline.rate"]
    for kind in ("sqlite", "postgresql"):
        full = f"{kind}.full."
        if full + "rate" not in results:
            continue
        rate = results[full + "rate"]
        if rate < INDEX_MIN_RATE:
            misses.append(f"{kind}: {rate:,.0f} logs/s < {INDEX_MIN_RATE:,.0f}")
        if rate / base < INDEX_MIN_RATIO:
            misses.append(f"{kind}: {rate / base:.1f}x the baseline < {INDEX_MIN_RATIO:.0f}x")
        quarter, whole = results[f"{kind}.quarter.peak_mb"], results[full + "peak_mb"]
        # "flat": four times the logs may not cost more than 1.5x the memory (plus 16 MB of noise)
        if whole > 1.5 * quarter + 16:
            misses.append(f"{kind}: peak memory grows with the logs ({quarter:.0f} MB at 1/4 -> {whole:.0f} MB)")
    return misses


def print_table(rows: Sequence[Sequence[str]], out: TextIO = sys.stdout) -> None:
    """Aligned columns under a ruled header: the first column left, the figures right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def print_index_table(results: dict[str, float], out: TextIO = sys.stdout) -> None:
    """The table, then how the figures were taken and which targets were missed."""
    header = ("run", "Rewarded logs", "seconds", "logs/s", "peak RSS +MB", "x baseline", "target")
    print_table([header, *index_rows(results)], out)
    print(
        f"\nChain: {int(results['generate.rewarded']):,} Rewarded logs in {int(results['generate.blocks'])} blocks "
        f"(settle batches of {INDEX_BATCH:,}, {INDEX_CONSUMERS} consumers, anvil), generated in "
        f"{results['generate.seconds']:.1f}s.\n"
        "logs/s = Rewarded logs stored / wall time of Indexer.run_once() from the deploy block (fetch, decode, "
        "write, commit;\nthe indexer also stores the BatchSettled, consent and campaign logs, not counted).\n"
        f"Baseline: web3 contract.events.Rewarded().get_logs() over the blocks of the first "
        f"{int(results['baseline.rewarded']):,} logs ({results['baseline.get_logs_seconds']:.2f}s), then per log "
        f"one ORM Touchpoint session.add + session.commit\n({results['baseline.insert_seconds']:.2f}s) into a "
        "fresh SQLite file; its rate is per log on that sample, and the ratio compares per-log rates.\n"
        "peak RSS +MB = highest resident set (sampled every 2 ms) minus the resident set at the start of the run; "
        "'quarter' indexes\nonly the first quarter of the logs (confirmations stop it there), to check memory is "
        "flat in the number of logs.",
        file=out,
    )
    for miss in check_index_targets(results):
        print("MISSED:", miss, file=out)


def _main(argv: Sequence[str]) -> None:
    if argv and argv[0] == "intake":
        from scripts.bench_intake import main

        raise SystemExit(main(argv[1:]))
    if argv and argv[0] == "index":
        logs = int(argv[1]) if len(argv) > 1 else INDEX_LOGS
        profile = Path(argv[2]) if len(argv) > 2 else None
        figures_ = measure_index(logs, progress=lambda step: print(step, file=sys.stderr), profile_dir=profile)
        print_index_table(figures_)
        return
    if argv and argv[0] != "gas":
        raise SystemExit(
            f"usage: python -m scripts.bench [gas | index [LOGS [PROFILE_DIR]] | intake [ENGAGEMENTS [CLIENTS]]], "
            f"not {argv[0]!r}"
        )
    figures = measure_gas(progress=lambda step: print(step, file=sys.stderr))
    write_snapshot(figures)
    print(json.dumps(figures, indent=2))
    for miss in check_targets(figures):
        print("MISSED:", miss, file=sys.stderr)


if __name__ == "__main__":
    _main(sys.argv[1:])
