"""``intake`` benchmark: engagements posted to the HTTP API until every one is settled on chain and indexed.

The service runs as it is deployed, in three processes on a fresh anvil (with ``adledger up``'s heartbeat: an
empty block each second without traffic, as a live chain has) and a SQLite file: ``adledger serve`` (the
API), ``adledger settle --follow`` (the batcher) and ``adledger index --follow`` (the indexer). Concurrent clients
post ``engagements`` in batches of ``INTAKE_BATCH`` with an attester's API key, on a schedule of ``INTAKE_RATE``
engagements a second (the load the latency target is stated at); each POST's latency is taken at the client, from
its scheduled time. The run ends when the database holds a Rewarded or Rejected row for every accepted engagement, i.e.
when each is settled on chain *and* indexed. The baseline, measured in the same run on the same chain: one web3
``settle`` transaction per engagement, sent and waited for (``ledger.contracts.transact``), not even indexed.

Wall-clock figures, printed, never snapshotted: ``adledger bench intake`` or
``python -m scripts.bench intake [ENGAGEMENTS [CLIENTS [RATE [sqlite|postgresql]]]]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

import httpx
import orjson
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from sqlalchemy import Engine, func, select

from ledger.auth.api_keys import issue_api_key
from ledger.chain import Chain, connect, free_port
from ledger.contracts import transact
from ledger.crm.onchain import Rejection, Touchpoint
from ledger.db import session_factory
from ledger.indexer.runner import Indexer
from ledger.model import Action, Purpose, RejectReason
from ledger.settings import Settings
from ledger.settlement.batch import Engagement, encode_batch
from ledger.suite import CampaignTerms, Suite
from scripts.bench import fresh_database, print_table, send_bulk, sign_in_order

Progress = Callable[[str], None]

INTAKE_ENGAGEMENTS = 50_000
INTAKE_BATCH = 100  # engagements per POST
INTAKE_CLIENTS = 4  # concurrent clients, each posting its next batch once answered and due
INTAKE_RATE = 3_000.0  # engagements/s the clients offer together: 1.5x the target, so the target is not the cap
INTAKE_CONSUMERS = 500  # wallets with consent; engagements are spread over them
INTAKE_BASELINE = 300  # engagements the baseline settles one transaction each
INTAKE_MIN_RATE = 2_000.0  # engagements/s settled and indexed, end to end
INTAKE_MIN_RATIO = 40.0  # over the baseline
INTAKE_MAX_P95_MS = 50.0  # POST /v1/engagements at that load
ACTIONS = (Action.AD_VIEW, Action.AD_CLICK, Action.DAILY_OPEN, Action.EMAIL_OPEN)
# ~570 engagements a settle(). Chosen when intake still shared SQLite's write lock with the indexer, whose page per
# block held it (15M, the batcher's default, made ~2,900-log pages: intake p95 143 ms at 3,000/s; 3M: 80 ms;
# 1.5M: 48 ms, but then the batcher's per-transaction cost capped the end-to-end rate at 1,614/s); not measured
# again since the outbox has its own file
INTAKE_BATCH_GAS = 3_000_000
# The batcher and the indexer run niced, as background workers beside a latency-bound API should: on two cores
# shared by five processes, intake p95 92 -> 57-80 ms and end to end 2,160 -> 2,322-2,478/s (a run or two each).
# The batcher at nice 0, now that it alone shares intake's write lock (the outbox's file): p95 35-38 against 27 ms.
WORKER_NICENESS = 10
REWARD = 10**15
BUDGET = 10**24
SETTLE_TIMEOUT = 600.0  # seconds the run waits for the last engagement to be indexed
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Posted:
    """What the clients saw: per-POST latencies (seconds), engagements accepted, and the posting window."""

    latencies: list[float]
    accepted: int
    started: float
    finished: float


def measure_intake(
    engagements: int = INTAKE_ENGAGEMENTS,
    clients: int = INTAKE_CLIENTS,
    rate: float = INTAKE_RATE,
    progress: Progress = lambda _: None,
    database: str = "sqlite",
) -> dict[str, float]:
    """The run: set-up, the service's three processes, the clients, the wait for the last indexed row, then the
    baseline on the same chain. Figures keyed ``intake.*`` and ``baseline.*``."""
    with tempfile.TemporaryDirectory(prefix="adledger-intake-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        engine = stack.enter_context(fresh_database(database, root))  # migrated
        settings = Settings(
            chain="anvil",
            data_dir=root / "data",
            anvil_state=False,
            anvil_port=0,
            database_url=engine.url.render_as_string(hide_password=False),
        )
        chain = stack.enter_context(connect(settings))
        progress("deploying, funding a campaign, granting consents …")
        suite = Suite.deploy(chain)
        suite.deployment.save(settings.deployment_file)
        consumers = [Account.from_key(keccak(text=f"adledger intake consumer {i}")) for i in range(INTAKE_CONSUMERS)]
        campaign_id, baseline_campaign = _campaign(suite), _campaign(suite)
        occurred = _grant_consents(suite, consumers)
        Indexer(chain, suite, session_factory(engine)).run_once()  # the campaign must be indexed to take reports
        key = _api_key(engine, suite, campaign_id)

        port = free_port()
        env = _service_env(settings, chain, port)
        logs = root / "logs"
        logs.mkdir()
        progress("starting the API, the batcher and the indexer …")
        for name, args in _service_commands(port).items():
            stack.enter_context(_process(name, args, env, logs))
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url)
        stop = threading.Event()
        stack.callback(stop.set)
        threading.Thread(target=chain.heartbeat, args=(stop,), name="heartbeat", daemon=True).start()

        progress(f"posting {engagements:,} engagements from {clients} clients at {rate:,.0f}/s …")
        batches = _batches(consumers, campaign_id, engagements, occurred)
        posted = asyncio.run(_post_all(base_url, key, batches, clients, rate))
        progress("waiting until every engagement is settled and indexed …")
        done, paid, rejected = _wait_indexed(engine, campaign_id, posted.accepted, posted.started, progress)
        reasons = _rejection_reasons(engine, campaign_id)

        progress(f"baseline: {INTAKE_BASELINE} engagements, one settle() transaction each …")
        baseline_seconds = _baseline(suite, baseline_campaign, consumers, INTAKE_BASELINE)
        pipelined_seconds = _baseline_pipelined(suite, baseline_campaign, consumers, INTAKE_BASELINE)
    latencies = sorted(posted.latencies)
    return {
        "intake.postgresql": float(database == "postgresql"),
        "intake.engagements": float(engagements),
        "intake.clients": float(clients),
        "intake.offered_per_s": rate,
        "intake.accepted": float(posted.accepted),
        "intake.post_seconds": posted.finished - posted.started,
        "intake.accepted_per_s": posted.accepted / (posted.finished - posted.started),
        "intake.p50_ms": 1000 * _percentile(latencies, 0.50),
        "intake.p95_ms": 1000 * _percentile(latencies, 0.95),
        "intake.p99_ms": 1000 * _percentile(latencies, 0.99),
        "intake.max_ms": 1000 * latencies[-1],
        "intake.end_to_end_seconds": done - posted.started,
        "intake.settled_per_s": posted.accepted / (done - posted.started),
        "intake.paid": float(paid),
        "intake.rejected": float(rejected),
        **{f"intake.rejected.{reason}": float(count) for reason, count in reasons.items()},
        "baseline.engagements": float(INTAKE_BASELINE),
        "baseline.seconds": baseline_seconds,
        "baseline.per_s": INTAKE_BASELINE / baseline_seconds,
        "pipelined.seconds": pipelined_seconds,
        "pipelined.per_s": INTAKE_BASELINE / pipelined_seconds,
    }


def _campaign(suite: Suite) -> int:
    """A campaign offering ``ACTIONS`` without caps, started an hour ago, the devnet attester registered."""
    accounts = suite.chain.accounts
    if suite.balance(accounts.marketer.address) < BUDGET:
        suite.transfer(accounts.deployer, accounts.marketer.address, 2 * BUDGET)
    now = suite.chain.latest_timestamp()
    terms = CampaignTerms(
        token=suite.token.address,
        brand=accounts.marketer.address,
        starts_at=now - 3600,
        ends_at=now + 30 * 86_400,
        rewards={action: REWARD for action in ACTIONS},
        purposes={action: int(Purpose.ADS) for action in ACTIONS},
        lifetime_caps={},
        daily_caps={},
    )
    campaign_id, _ = suite.create_campaign(accounts.marketer, terms, BUDGET, [accounts.attester.address])
    return campaign_id


def _grant_consents(suite: Suite, consumers: Sequence[LocalAccount]) -> int:
    """Each consumer's ADS consent to the brand, signed by the consumer and sent in bulk by the relayer. Returns
    a time for the engagements: a consent covers only what happened after it was granted, and the API refuses
    times in the future, so it is the second after the last grant, once the wall clock has passed it."""
    chain = suite.chain
    brand = chain.accounts.marketer.address
    expires = chain.latest_timestamp() + 90 * 86_400
    deadline = chain.latest_timestamp() + 3600
    calls = [
        suite.registry.functions.grantBySig(consumer.address, brand, int(Purpose.ADS), expires, deadline,
                                            suite.sign_grant(consumer, brand, int(Purpose.ADS), expires, deadline))
        for consumer in consumers
    ]  # fmt: skip
    send_bulk(chain, chain.accounts.relayer, calls)
    occurred = chain.latest_timestamp() + 1
    while time.time() < occurred + 1:
        time.sleep(0.1)
    return occurred


def _api_key(engine: Engine, suite: Suite, campaign_id: int) -> str:
    """An API key for the devnet attester, issued by the campaign's marketer (as POST .../api-keys does)."""
    with session_factory(engine).begin() as session:
        issued = issue_api_key(
            session,
            chain_id=suite.chain.chain_id,
            escrow=suite.deployment.escrow,
            campaign_id=campaign_id,
            marketer=suite.chain.accounts.marketer.address,
            attester=suite.chain.accounts.attester.address,
        )
        return issued.key


def _service_env(settings: Settings, chain: Chain, port: int) -> dict[str, str]:
    """The three processes' configuration: this run's chain, data dir and database; limits out of reach."""
    url = chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
    return os.environ | {
        "ADLEDGER_CHAIN": str(url),
        "ADLEDGER_DATA_DIR": str(settings.data_dir),
        "ADLEDGER_DATABASE_URL": settings.database_url,
        "ADLEDGER_API_DOMAIN": f"127.0.0.1:{port}",
        "ADLEDGER_RATE_ATTESTER": "1000000",
        "ADLEDGER_BURST_ATTESTER": "1000000",
    }


def _service_commands(port: int) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "scripts.cli"]
    return {
        "api": [*cli, "serve", "--port", str(port), "--no-access-log"],
        "batcher": [
            *cli,
            "settle",
            "--follow",
            "--poll",
            "0.2",
            "--max-wait",
            "0.5",
            "--max-batch-gas",
            str(INTAKE_BATCH_GAS),
        ],
        "indexer": [*cli, "index", "--follow", "--poll", "0.2"],
    }


@contextmanager
def _process(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One service process, its output in ``logs/<name>.log``, the workers niced (``WORKER_NICENESS``);
    interrupted (Ctrl-C) at the end, killed if stuck."""
    log: IO[bytes] = (logs / f"{name}.log").open("wb")
    niceness = 0 if name == "api" else WORKER_NICENESS
    process = subprocess.Popen(
        args, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(niceness)
    )
    try:
        yield process
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early ({process.returncode}): {(logs / f'{name}.log').read_text()}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API at {base_url} did not answer within {timeout:.0f}s")


def _batches(consumers: Sequence[LocalAccount], campaign_id: int, engagements: int, occurred: int) -> list[bytes]:
    """The POST bodies, encoded up front so the clients spend their time on the API, not on building JSON."""
    bodies = []
    for start in range(0, engagements, INTAKE_BATCH):
        items = [
            {
                "attester_ref": f"bench-{n}",
                "consumer": consumers[n % len(consumers)].address,
                "action": ACTIONS[n % len(ACTIONS)].name.lower(),
                "occurred_at": occurred,
                "evidence_hash": "0x" + keccak(text=f"evidence {n}").hex(),
            }
            for n in range(start, min(start + INTAKE_BATCH, engagements))
        ]
        bodies.append(orjson.dumps({"campaign_id": campaign_id, "engagements": items}))
    return bodies


async def _post_all(base_url: str, key: str, bodies: list[bytes], clients: int, rate: float) -> Posted:
    """``clients`` concurrent clients, each with its own connection, post the bodies on a schedule of ``rate``
    engagements a second in all (``INTAKE_BATCH`` per body). A POST's latency counts from its scheduled time, so a
    server falling behind the schedule shows in the figures instead of slowing the schedule down.

    Each client's first body warms the server up, untimed, before the schedule starts: a fresh process compiles
    its SQL statements, opens its database connections and starts its worker threads on its first requests
    (~0.4 s each), which would otherwise put the first second's backlog into the percentiles of a steady load.
    Those engagements count like the others; ``started`` is before them."""
    latencies: list[float] = []
    accepted = 0
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    interval = INTAKE_BATCH / rate
    began = time.perf_counter()
    warm_up, timed = bodies[:clients], bodies[clients:]
    pending = iter(enumerate(timed))
    started = 0.0

    async def post(http: httpx.AsyncClient, body: bytes) -> None:
        nonlocal accepted
        response = await http.post("/v1/engagements", content=body)
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/engagements answered {response.status_code}: {response.text}")
        answer = response.json()
        if answer["accepted"] != len(answer["results"]):
            raise RuntimeError(f"not all accepted: {answer['results'][0]}")
        accepted += int(answer["accepted"])

    async def client(http: httpx.AsyncClient) -> None:
        for index, body in pending:
            scheduled = started + index * interval
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            await post(http, body)
            latencies.append(time.perf_counter() - scheduled)

    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60))
            for _ in range(clients)
        ]
        await asyncio.gather(*(post(http, body) for http, body in zip(https, warm_up, strict=False)))
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for http in https))
    return Posted(latencies, accepted, began, time.perf_counter())


def _wait_indexed(
    engine: Engine, campaign_id: int, expected: int, started: float, progress: Progress
) -> tuple[float, int, int]:
    """When the database first held a Rewarded or Rejected row for each of ``expected`` engagements; the counts."""
    deadline = time.perf_counter() + SETTLE_TIMEOUT
    shown = -1
    with engine.connect() as connection:
        while True:
            paid = connection.scalar(select(func.count()).where(Touchpoint.campaign_id == campaign_id)) or 0
            rejected = connection.scalar(select(func.count()).where(Rejection.campaign_id == campaign_id)) or 0
            connection.rollback()  # a fresh snapshot next time
            now = time.perf_counter()
            if paid + rejected >= expected:
                return now, paid, rejected
            if now > deadline:
                raise RuntimeError(f"after {SETTLE_TIMEOUT:.0f}s only {paid + rejected:,} of {expected:,} indexed")
            if paid + rejected != shown:
                shown = paid + rejected
                progress(f"{shown:,} of {expected:,} settled and indexed after {now - started:.1f}s …")
            time.sleep(0.05)


def _rejection_reasons(engine: Engine, campaign_id: int) -> dict[str, int]:
    """Rejections by the chain's reason: a bench whose engagements are refused measures the wrong thing."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Rejection.reason, func.count())
            .where(Rejection.campaign_id == campaign_id)
            .group_by(Rejection.reason)
        )
        return {RejectReason(reason).name.lower(): int(count) for reason, count in rows}


def _baseline(suite: Suite, campaign_id: int, consumers: Sequence[LocalAccount], count: int) -> float:
    """Seconds to settle ``count`` engagements one ``settle`` transaction each, each waited for."""
    attester = suite.chain.accounts.attester
    occurred = suite.chain.latest_timestamp()
    began = time.perf_counter()
    for n in range(count):
        engagement = Engagement(consumers[n % len(consumers)].address, ACTIONS[n % len(ACTIONS)], n, occurred,
                                keccak(text=f"baseline evidence {n}"))  # fmt: skip
        transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, encode_batch([engagement])))
    return time.perf_counter() - began


def _baseline_pipelined(suite: Suite, campaign_id: int, consumers: Sequence[LocalAccount], count: int) -> float:
    """The baseline's floor: the same one-engagement settle() transactions signed up front and sent back to back
    without waiting, then the last receipt awaited (no receipt polling between them). Event ids follow
    ``_baseline``'s."""
    chain = suite.chain
    occurred = chain.latest_timestamp()
    calls = [
        suite.escrow.functions.settle(campaign_id, encode_batch([
            Engagement(consumers[n % len(consumers)].address, ACTIONS[n % len(ACTIONS)], n, occurred,
                       keccak(text=f"baseline evidence {n}"))
        ]))
        for n in range(count, 2 * count)
    ]  # fmt: skip
    raw = sign_in_order(chain, chain.accounts.attester, calls)
    began = time.perf_counter()
    hashes = [chain.w3.eth.send_raw_transaction(tx) for tx in raw]
    receipt = chain.w3.eth.wait_for_transaction_receipt(hashes[-1], timeout=120, poll_latency=0.005)
    if receipt["status"] != 1:
        raise RuntimeError("the pipelined baseline's last settle() reverted")
    return time.perf_counter() - began


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of sorted values."""
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def intake_rows(results: dict[str, float]) -> list[tuple[str, str, str]]:
    """(figure, value, target) rows."""
    ratio = results["intake.settled_per_s"] / results["baseline.per_s"]
    return [
        ("engagements posted (batches of 100)", f"{int(results['intake.engagements']):,}", ""),
        ("concurrent clients", f"{int(results['intake.clients'])}", ""),
        ("offered load, engagements/s", f"{results['intake.offered_per_s']:,.0f}", ""),
        ("accepted/s (POST window)", f"{results['intake.accepted_per_s']:,.0f}", ""),
        ("POST /v1/engagements p50 ms", f"{results['intake.p50_ms']:.1f}", ""),
        ("POST /v1/engagements p95 ms", f"{results['intake.p95_ms']:.1f}", f"< {INTAKE_MAX_P95_MS:.0f}"),
        ("POST /v1/engagements p99 / max ms", f"{results['intake.p99_ms']:.1f} / {results['intake.max_ms']:.1f}", ""),
        ("first POST -> last engagement indexed, s", f"{results['intake.end_to_end_seconds']:.1f}", ""),
        (
            "settled and indexed/s, end to end",
            f"{results['intake.settled_per_s']:,.0f}",
            f">= {INTAKE_MIN_RATE:,.0f}",
        ),  # fmt: skip
        ("  of which paid / rejected", f"{int(results['intake.paid']):,} / {int(results['intake.rejected']):,}", ""),
        *[
            (f"    rejected: {key.rsplit('.', 1)[1]}", f"{int(value):,}", "")
            for key, value in results.items()
            if key.startswith("intake.rejected.")
        ],  # fmt: skip
        ("baseline: one settle() tx per engagement, /s", f"{results['baseline.per_s']:,.1f}", ""),
        ("end to end vs baseline", f"{ratio:,.1f}x", f">= {INTAKE_MIN_RATIO:.0f}x"),
        ("the same txs pre-signed, sent back to back, /s", f"{results['pipelined.per_s']:,.1f}", ""),
        ("end to end vs that floor", f"{results['intake.settled_per_s'] / results['pipelined.per_s']:,.1f}x", ""),
    ]


def check_intake_targets(results: dict[str, float]) -> list[str]:
    misses = []
    if results["intake.settled_per_s"] < INTAKE_MIN_RATE:
        misses.append(f"{results['intake.settled_per_s']:,.0f} settled and indexed/s < {INTAKE_MIN_RATE:,.0f}")
    ratio = results["intake.settled_per_s"] / results["baseline.per_s"]
    if ratio < INTAKE_MIN_RATIO:
        misses.append(f"{ratio:.1f}x the baseline < {INTAKE_MIN_RATIO:.0f}x")
    if results["intake.p95_ms"] >= INTAKE_MAX_P95_MS:
        misses.append(f"p95 {results['intake.p95_ms']:.1f} ms >= {INTAKE_MAX_P95_MS:.0f} ms")
    if results["intake.paid"] + results["intake.rejected"] != results["intake.accepted"]:
        misses.append("not every accepted engagement was settled exactly once")
    return misses


def print_intake_table(results: dict[str, float], out: TextIO = sys.stdout) -> None:
    print_table([("figure", "value", "target"), *intake_rows(results)], out)
    store = "PostgreSQL schema" if results["intake.postgresql"] else "SQLite file"
    print(
        "\nService: `adledger serve`, `adledger settle --follow` and `adledger index --follow` (the two workers at "
        f"nice {WORKER_NICENESS}), three processes on a fresh anvil and one {store}.\nEnd to end = from the first "
        "POST until the database holds a Rewarded or Rejected row for every accepted engagement.\nBaseline: the "
        "same chain, one settle() transaction per engagement (ledger.contracts.transact: sign, send, wait for the "
        "receipt\nwith web3's defaults, which poll every 0.1 s), not indexed; its floor: the same transactions "
        "pre-signed and sent back to back.",
        file=out,
    )
    for miss in check_intake_targets(results):
        print("MISSED:", miss, file=out)


def main(argv: Sequence[str]) -> int:
    engagements = int(argv[0]) if argv else INTAKE_ENGAGEMENTS
    clients = int(argv[1]) if len(argv) > 1 else INTAKE_CLIENTS
    rate = float(argv[2]) if len(argv) > 2 else INTAKE_RATE
    database = argv[3] if len(argv) > 3 else "sqlite"
    results = measure_intake(engagements, clients, rate, lambda step: print(step, file=sys.stderr), database)
    print_intake_table(results)
    return 1 if check_intake_targets(results) else 0
