"""``adledger``: the one console entry point (typer + rich). Later work adds its commands here.

Each command builds the settings once (``ADLEDGER_*``), passes them down, and turns a ``LedgerError`` into one
red line and exit code 1; an unexpected exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from ledger.chain import Chain, connect, serve_devnet
from ledger.errors import DeploymentNotFound, LedgerError
from ledger.settings import Settings
from ledger.settlement.batch import DEFAULT_BATCH_GAS
from ledger.suite import Suite
from wallet.cli import wallet_app

app = typer.Typer(
    help="adledger: consent-based incentive and ad-attribution ledger.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Benchmarks (figures, never timed tests).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

console = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(command: F) -> F:
    """Expected failures print one red line (and how to fix them) and exit 1, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except LedgerError as exc:
            err.print(f"[red]error[/red] [bold]{exc.code}[/bold]: {exc}")
            if exc.help:
                err.print(f"  {exc.help}")
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


DEVNET_PORT = 8545  # where wallets and tools look for a local node first
DEVNET_BATCH_WAIT = 2.0  # seconds the main job's batcher lets a batch fill before sending it

PortOption = typer.Option(DEVNET_PORT, "--port", min=0, max=65535, help="Loopback port for anvil (0: any free).")


def _settings(chain: str | None = None, **overrides: Any) -> Settings:
    if chain:
        overrides["chain"] = chain
    return Settings(**overrides)


def _ensure_suite(chain: Chain, settings: Settings, redeploy: bool = False) -> Suite:
    """The deployed suite from the manifest, or a fresh deployment (devnets) when there is none or it is stale."""
    if not redeploy:
        try:
            suite = Suite.load(chain, settings.deployment_file)
            if suite.is_current():
                return suite
            console.print("[yellow]contracts changed since the last deployment: redeploying[/yellow]")
        except DeploymentNotFound as exc:
            console.print(f"[dim]{exc}: deploying[/dim]")
    suite = Suite.deploy(chain)
    suite.deployment.save(settings.deployment_file)
    return suite


def _print_deployment(suite: Suite, settings: Settings) -> None:
    table = Table(title=f"adledger suite on chain {suite.chain.chain_id}", show_header=False)
    table.add_row("RewardToken", suite.token.address)
    table.add_row("ConsentRegistry", suite.registry.address)
    table.add_row("CampaignEscrow", suite.escrow.address)
    table.add_row("deploy block", str(suite.deployment.deploy_block))
    table.add_row("manifest", str(settings.deployment_file))
    console.print(table)


@app.command()
@reports_errors
def compile() -> None:  # noqa: A001 - the command is named for what it does
    """Compile contracts/ with solc-js into ledger/artifacts/ (pinned solc and EVM version)."""
    from scripts.compile import ROOT, compile_all

    with console.status("compiling contracts/ …"):
        written, warnings = compile_all()
    for warning in warnings:
        err.print(f"[yellow]{warning}[/yellow]")
    for path in written:
        console.print(f"[green]wrote[/green] {path.relative_to(ROOT)}")


@app.command()
@reports_errors
def devnet(port: int = PortOption) -> None:
    """Run the anvil devnet in the foreground (state persisted under the data dir) until Ctrl-C."""
    settings = _settings("anvil", anvil_port=port)

    def ready(url: str) -> None:
        console.print(f"[green]anvil[/green] listening on [bold]{url}[/bold] (chain id 31337); Ctrl-C stops it")
        from ledger.chain import DevAccounts

        for role, address in DevAccounts.from_mnemonic(settings.mnemonic).by_role().items():
            console.print(f"  {role:10} {address}")

    serve_devnet(settings, ready)


@app.command()
@reports_errors
def deploy(
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// JSON-RPC URL (default ADLEDGER_CHAIN)."),
    force: bool = typer.Option(False, "--force", help="Deploy anew even if the manifest's suite is live."),
) -> None:
    """Deploy RewardToken, ConsentRegistry and CampaignEscrow and write the deployment manifest."""
    settings = _settings(chain)
    with connect(settings) as connected:
        suite = _ensure_suite(connected, settings, redeploy=force)
        _print_deployment(suite, settings)


@app.command()
@reports_errors
def demo(
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// devnet URL (default ADLEDGER_CHAIN)."),
) -> None:
    """Run the demo campaign once: consent, settlement with rejections, gasless claim, close and refund."""
    settings = _settings(chain)
    with connect(settings) as connected:
        _run_demo(_ensure_suite(connected, settings), settings)


@app.command()
@reports_errors
def up(
    serve: bool = typer.Option(True, help="Keep the devnet running after seeding (--no-serve exits)."),
    port: int = PortOption,
    api_port: int = typer.Option(8000, "--api-port", min=1, max=65535, help="TCP port of the HTTP API."),
) -> None:
    """The main job: anvil devnet, the suite deployed, the demo campaign seeded and indexed into the CRM database;
    then it keeps serving until Ctrl-C: the indexer following new blocks, the settlement batcher draining the
    engagement outbox, and the HTTP API on 127.0.0.1:<api-port>; the devnet mines an empty block each second
    without traffic, so its clock moves like a live chain's."""
    import threading

    from ledger.db import session_factory
    from ledger.settlement.batcher import Batcher, BatcherOptions
    from scripts.demo import ensure_open_campaign

    settings = _settings("anvil", anvil_port=port)
    if "api_domain" not in settings.model_fields_set:  # sign-in messages name the host and port clients use
        settings = settings.model_copy(update={"api_domain": f"localhost:{api_port}"})
    with connect(settings) as connected:
        suite = _ensure_suite(connected, settings)
        _print_deployment(suite, settings)
        _run_demo(suite, settings, real_time=True)
        open_id, created = ensure_open_campaign(suite)
        console.print(
            f"campaign {open_id} is {'open' if created else 'still open'} for the API's attester "
            f"({connected.accounts.attester.address}): POST /v1/engagements"
        )
        indexer, engine = _indexer(connected, settings, suite)
        try:
            indexer.run_once()
            _print_index_summary(indexer, settings)
            if not serve:
                return
            stop = threading.Event()
            _log_warnings_to(err)
            # a devnet user watches one engagement at a time: a batch goes within seconds, not when 30 s have passed
            options = BatcherOptions(max_wait_seconds=DEVNET_BATCH_WAIT, confirmations=settings.confirmations)
            batcher = Batcher(connected, suite, session_factory(engine), connected.accounts.attester, options)
            workers = [
                threading.Thread(target=indexer.follow, args=(1.0, stop), name="indexer", daemon=True),
                threading.Thread(target=batcher.follow, args=(2.0, stop), name="batcher", daemon=True),
                threading.Thread(target=connected.heartbeat, args=(stop,), name="heartbeat", daemon=True),
            ]
            api = _api_server(settings, api_port)
            workers.append(threading.Thread(target=api.run, name="api", daemon=True))
            for worker in workers:
                worker.start()
            url = connected.w3.provider.endpoint_uri  # type: ignore[attr-defined]
            console.print(
                f"\n[green]devnet running[/green] at [bold]{url}[/bold]; API at [bold]http://127.0.0.1:{api_port}"
                "[/bold] (OpenAPI at /docs); indexer and batcher following. Ctrl-C stops all (state is kept)"
            )
            try:
                with _sigterm_as_ctrl_c():
                    _wait_forever()
            except KeyboardInterrupt:
                console.print("stopping the API, the batcher, the indexer and the devnet …")
                stop.set()
                api.should_exit = True
                for worker in workers:
                    worker.join(timeout=10)
        finally:
            engine.dispose()


def _api_server(settings: Settings, port: int) -> Any:
    """A uvicorn server for the API, run in a thread by ``up`` (signals stay with the main thread)."""
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    return uvicorn.Server(config)


def _wait_forever() -> None:
    import threading

    threading.Event().wait()


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (what ``kill``, systemd and ``docker stop`` send) stops the command as Ctrl-C does: workers told to
    stop, the devnet's state saved. Left to its default, it ended the process at once, anvil still running."""
    import signal

    def interrupt(_signal: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo(suite: Suite, settings: Settings, *, real_time: bool = False) -> None:
    from scripts.demo import run_demo, tokens

    table = Table(title="demo campaign")
    table.add_column("step")
    table.add_column("gas", justify="right")
    table.add_column("detail", overflow="fold")

    def report(step: Any) -> None:
        console.print(f"[green]✓[/green] {step.title}  [dim]{step.tx_hash}[/dim]  gas {step.gas:,}")

    result = run_demo(suite, report, real_time=real_time)
    for step in result.steps:
        table.add_row(step.title, f"{step.gas:,}", step.detail)
    console.print(table)
    console.print(
        f"campaign {result.campaign_id}: {len(result.paid)} paid, {len(result.rejected)} rejected, "
        f"claimed {tokens(result.claimed)}, refunded {tokens(result.refund)}"
    )


@bench_app.command("index")
@reports_errors
def bench_index(
    logs: int = typer.Option(100_000, min=1_000, help="Rewarded logs to generate and index."),
    postgres: bool = typer.Option(True, help="Also index into PostgreSQL (ADLEDGER_BENCH_POSTGRES_URL)."),
) -> None:
    """Index N Rewarded logs from anvil into SQLite and PostgreSQL, beside the web3 + ORM baseline."""
    from scripts.bench import check_index_targets, measure_index, print_index_table

    with console.status("generating logs on a fresh anvil …") as status:
        results = measure_index(logs, progress=lambda step: status.update(step), postgres=postgres)
    print_index_table(results)
    if check_index_targets(results):
        raise typer.Exit(code=1)


@bench_app.command("intake")
@reports_errors
def bench_intake(
    engagements: int = typer.Option(50_000, min=1_000, help="Engagements to post (batches of 100)."),
    clients: int = typer.Option(4, min=1, max=64, help="Concurrent clients, each waiting for its answer."),
    rate: float = typer.Option(3_000.0, min=100, help="Engagements/s the clients offer together, on a schedule."),
) -> None:
    """Post engagements to the API (serve, settle --follow and index --follow as three processes on a fresh anvil)
    until every one is settled and indexed, beside one settle() transaction per engagement."""
    from scripts.bench_intake import check_intake_targets, measure_intake, print_intake_table

    with console.status("setting up a fresh anvil …") as status:
        results = measure_intake(engagements, clients, rate, progress=lambda step: status.update(step))
    print_intake_table(results)
    if check_intake_targets(results):
        raise typer.Exit(code=1)


@bench_app.command("gas")
@reports_errors
def bench_gas(
    write: bool = typer.Option(True, help="Write snapshots/gas.json (the committed snapshot a test compares)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Measure gas per engagement and per operation on anvil, beside the naive baselines."""
    from scripts.bench import SNAPSHOT, check_targets, lean_key, measure_gas, naive_key, write_snapshot

    with console.status("measuring on a fresh anvil …") as status:
        figures = measure_gas(progress=lambda step: status.update(step))
    if as_json:
        console.print_json(json.dumps(figures))
    else:
        table = Table(title="gas per engagement, batches of 500 (receipt gas / engagements)")
        for column in ("consumers", "k", "lean", "naive batch", "naive / lean"):
            table.add_column(column, justify="right")
        for kind in ("returning", "new"):
            for k in (1, 5, 10):
                lean, naive = figures[lean_key(kind, k)], figures[naive_key(kind, k)]
                table.add_row(kind, str(k), f"{lean:,}", f"{naive:,}", f"{naive / lean:.1f}x")
        console.print(table)
        others = Table(title="other operations (gas)")
        others.add_column("operation")
        others.add_column("gas", justify="right")
        for key, value in figures.items():
            if not key.startswith(("settle 500", "naive batch")):
                others.add_row(key, f"{value:,}")
        console.print(others)
    if write:
        write_snapshot(figures)
        console.print(f"[green]wrote[/green] {SNAPSHOT}")
    misses = check_targets(figures)
    for miss in misses:
        err.print(f"[red]target missed[/red]: {miss}")
    if misses:
        raise typer.Exit(code=1)


@app.command()
@reports_errors
def index(
    follow: bool = typer.Option(False, "--follow", help="Keep polling new heads after catching up (Ctrl-C stops)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Drop this chain's indexed rows and start at deployment."),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="Seconds between head polls with --follow."),
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// JSON-RPC URL (default ADLEDGER_CHAIN)."),
) -> None:
    """Index the deployed suite's events into the CRM database (reorg-safe, resumable), then print a summary."""
    from rich.progress import BarColumn, Progress, TextColumn

    settings = _settings(chain)
    progress_columns = (TextColumn("indexing"), BarColumn(), TextColumn("{task.description}"))
    with connect(settings) as connected, Progress(*progress_columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def progress(block: int, target: int, logs: int) -> None:
            bar.update(task, total=target, completed=block, description=f"block {block:,}/{target:,}, {logs:,} logs")

        indexer, engine = _indexer(connected, settings, Suite.load(connected, settings.deployment_file), progress)
        try:
            if rebuild:
                indexer.rebuild()
                console.print(f"[yellow]dropped the indexed rows of chain {connected.chain_id}[/yellow]: rebuilding")
            _once_or_follow(indexer, follow, poll)
        finally:
            engine.dispose()
    _print_index_summary(indexer, settings)


@app.command()
@reports_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port to listen on."),
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// JSON-RPC URL (default ADLEDGER_CHAIN)."),
    access_log: bool = typer.Option(True, help="Log a line per request (--no-access-log under heavy load)."),
    settle: bool = typer.Option(
        False, "--settle", help="Also run the settlement batcher in this process (else: `adledger settle --follow`)."
    ),
    max_wait: float = typer.Option(
        30.0, "--max-wait", min=0, help="With --settle: a batch not full by gas goes once its oldest waited this long."
    ),
) -> None:
    """Serve the HTTP API (/v1; OpenAPI at /docs) with uvicorn until Ctrl-C. Sign-in messages must name
    ADLEDGER_API_DOMAIN (default localhost:8000): set it to the host and port clients use."""
    import threading

    import uvicorn

    from api.app import create_app

    settings = _settings(chain)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        if settle:
            _log_warnings_to(err)
            connected = stack.enter_context(connect(settings))
            batcher, engine = _batcher(connected, settings, max_wait)
            stack.callback(engine.dispose)
            worker = threading.Thread(target=batcher.follow, args=(1.0, stop), name="batcher", daemon=True)
            worker.start()
            stack.callback(worker.join, 30)
            stack.callback(stop.set)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=access_log)


@app.command("dev-login")
@reports_errors
def dev_login(
    account: str = typer.Argument(
        "marketer", help="A devnet account by role: marketer, attester, deployer, or consumer-0 .. consumer-6."
    ),
    api: str = typer.Option("http://127.0.0.1:8000", "--api", help="The API's base URL."),
) -> None:
    """Sign in to the API as a devnet account (EIP-4361, signed with the devnet mnemonic) and print the session
    token, for trying the API with curl. Devnets only: real wallets sign in with their own keys."""
    from datetime import UTC, datetime

    import httpx

    from ledger import siwe
    from ledger.chain import DevAccounts

    accounts = DevAccounts.from_mnemonic(_settings().mnemonic)
    by_role = {"marketer": accounts.marketer, "attester": accounts.attester, "deployer": accounts.deployer}
    by_role |= {f"consumer-{i}": consumer for i, consumer in enumerate(accounts.consumers)}
    if account not in by_role:
        err.print(f"[red]unknown account {account!r}[/red]: one of {', '.join(by_role)}")
        raise typer.Exit(code=2)
    signer = by_role[account]
    try:
        issued = httpx.post(f"{api}/v1/auth/nonce", timeout=10).raise_for_status().json()
        message = siwe.SiweMessage(
            domain=issued["domain"], address=signer.address, statement="Sign in to adledger (devnet).",
            uri=api, version=siwe.VERSION, chain_id=issued["chain_id"], nonce=issued["nonce"],
            issued_at=siwe.format_datetime(datetime.now(UTC)),
        )  # fmt: skip
        body = {"message": message.prepare(), "signature": "0x" + siwe.sign(signer, message).hex()}
        session = httpx.post(f"{api}/v1/auth/siwe", json=body, timeout=10).raise_for_status().json()
    except httpx.HTTPError as exc:
        err.print(f"[red]sign-in failed[/red]: {exc}")
        raise typer.Exit(code=1) from None
    console.print(session["token"])


def _once_or_follow(worker: Any, follow: bool, poll: float) -> None:
    """``worker.run_once()``, or with ``follow`` ``worker.follow(poll, stop)`` (outages logged, not fatal), until
    done or Ctrl-C (or SIGTERM); the worker's checkpoint or outbox says where the next run resumes."""
    import threading

    stop = threading.Event()
    try:
        with _sigterm_as_ctrl_c():
            if follow:
                _log_warnings_to(err)
                worker.follow(poll, stop)
            else:
                worker.run_once()
    except KeyboardInterrupt:
        stop.set()


def _log_warnings_to(console_: Console) -> None:
    """Routes the library's warnings (the indexer's retries while following) to ``console_``."""
    import logging

    from rich.logging import RichHandler

    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=console_)])


def _indexer(
    connected: Chain, settings: Settings, suite: Suite, progress: Callable[[int, int, int], None] | None = None
) -> tuple[Any, Any]:
    """An Indexer on the settings' database (migrated to head first) and the engine to dispose of afterwards."""
    from ledger.db import create_engine_for, session_factory, upgrade
    from ledger.indexer.rpc import RpcClient
    from ledger.indexer.runner import Indexer
    from ledger.indexer.source import LogSource

    engine = create_engine_for(settings)
    upgrade(engine)
    addresses = [suite.deployment.escrow.lower(), suite.deployment.registry.lower()]
    source = LogSource(connected, addresses, rpc=RpcClient(connected, timeout=settings.rpc_timeout))
    indexer = Indexer(
        connected, suite, session_factory(engine), settings.confirmations, progress=progress, source=source
    )
    return indexer, engine


def _print_index_summary(indexer: Any, settings: Settings) -> None:
    stats = indexer.stats
    last = "nothing new" if stats.last_block is None else f"up to block {stats.last_block:,}"
    console.print(
        f"[green]indexed[/green] {stats.logs:,} logs in {stats.pages:,} pages ({last}) into {settings.database_url}; "
        f"{stats.skipped:,} foreign or unknown skipped, {stats.duplicates:,} served twice, "
        f"{stats.reorgs} reorgs rolled back"
    )


@app.command("reconcile")
@reports_errors
def reconcile_command(
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// JSON-RPC URL (default ADLEDGER_CHAIN)."),
) -> None:
    """Compare every chain-derived CRM row with the chain up to the indexer's checkpoint; exit 1 on any difference."""
    from ledger.db import create_engine_for, session_factory, upgrade
    from ledger.indexer.reconcile import reconcile

    settings = _settings(chain)
    with connect(settings) as connected:
        suite = Suite.load(connected, settings.deployment_file)
        engine = create_engine_for(settings)
        try:
            upgrade(engine)
            with session_factory(engine)() as session:
                report = reconcile(connected, suite.deployment, session)
        finally:
            engine.dispose()
    block = "nothing indexed yet" if report.block is None else f"up to block {report.block:,}"
    counts = Table(title=f"reconcile: chain {report.chain_id}, {block}")
    for column in ("table", "chain", "database"):
        counts.add_column(column, justify="left" if column == "table" else "right")
    for name, count in report.counts.items():
        style = "" if count.chain == count.db else "red"
        counts.add_row(name, f"{count.chain:,}", f"{count.db:,}", style=style)
    console.print(counts)
    if report.ok:
        console.print("[green]no differences[/green]: the database matches the chain")
        return
    differences = Table(title=f"{len(report.differences)} differences")
    for column in ("table", "kind", "key", "detail"):
        differences.add_column(column, overflow="fold")
    for d in report.differences:
        differences.add_row(d.table, d.kind, d.key, d.describe())
    console.print(differences)
    raise typer.Exit(code=1)


def _batcher(
    connected: Chain, settings: Settings, max_wait: float, max_batch_gas: int = DEFAULT_BATCH_GAS
) -> tuple[Any, Any]:
    """A Batcher signing as the devnet's attester on the settings' database (migrated first), and its engine."""
    from ledger.db import create_engine_for, session_factory, upgrade
    from ledger.settlement.batcher import Batcher, BatcherOptions

    suite = Suite.load(connected, settings.deployment_file)
    engine = create_engine_for(settings)
    upgrade(engine)
    options = BatcherOptions(
        max_batch_gas=max_batch_gas, max_wait_seconds=max_wait, confirmations=settings.confirmations
    )
    return Batcher(connected, suite, session_factory(engine), connected.accounts.attester, options), engine


@app.command("settle")
@reports_errors
def settle_command(
    follow: bool = typer.Option(False, "--follow", help="Keep settling what arrives after the drain (Ctrl-C stops)."),
    poll: float = typer.Option(2.0, "--poll", min=0.1, help="Seconds between cycles with --follow."),
    max_wait: float = typer.Option(
        30.0, "--max-wait", min=0, help="With --follow, a batch not full by gas goes once its oldest waited this long."
    ),
    max_batch_gas: int = typer.Option(
        DEFAULT_BATCH_GAS,
        "--max-batch-gas",
        min=500_000,
        max=DEFAULT_BATCH_GAS,
        help="Gas a batch may use: smaller batches are mined and indexed in smaller steps.",
    ),
    chain: str = typer.Option(None, help="eth-tester, anvil or an http(s):// JSON-RPC URL (default ADLEDGER_CHAIN)."),
) -> None:
    """Settle the engagement outbox: queued engagements in settle() batches, each marked settled or rejected from
    its receipt; transactions a previous run left in flight are followed up first. Signs as the devnet's attester
    (account 2 of ADLEDGER_MNEMONIC): production attester keys (keystore, remote signer) are a later concern."""
    settings = _settings(chain)
    _log_warnings_to(err)  # reverted, dropped, replaced and refused batches are logged as warnings
    with connect(settings) as connected:
        batcher, engine = _batcher(connected, settings, max_wait, max_batch_gas)
        try:
            _once_or_follow(batcher, follow, poll)
        finally:
            engine.dispose()
    stats = batcher.stats
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(stats.reasons.items()))
    console.print(
        f"[green]{stats.settled:,} settled[/green], {stats.rejected:,} rejected{f' ({reasons})' if reasons else ''}"
        f" in {stats.batches:,} new batches"
    )
    if stats.gas_per_engagement is not None:
        console.print(
            f"  gas per engagement {stats.gas_per_engagement:,} ({stats.gas_used:,} over {stats.gas_engagements:,})"
        )
    if stats.rebroadcast or stats.replaced or stats.requeued or stats.pending:
        console.print(
            f"  recovered: {stats.rebroadcast} rebroadcast, {stats.replaced} replaced, {stats.requeued} back in the"
            f" queue; {stats.pending} batches still awaiting a receipt"
        )
    if stats.held:
        held = ", ".join(f"{count:,} {reason}" for reason, count in sorted(stats.held.items()))
        console.print(f"  [yellow]held in the queue[/yellow]: {held}")
    for reverted in stats.reverted:
        err.print(
            f"  [red]batch {reverted.batch_id} reverted[/red] {reverted.tx_hash}: "
            f"{reverted.error.code}: {reverted.error}"
        )


conversions_app = typer.Typer(help="Purchases from shops and POS systems (conversions).", no_args_is_help=True)
app.add_typer(conversions_app, name="conversions")
app.add_typer(wallet_app, name="wallet")

ConversionsFile = typer.Argument(
    ..., exists=True, dir_okay=False, readable=True, metavar="FILE", help="CSV: a header row, one purchase per row."
)


@conversions_app.command("import")
@reports_errors
def conversions_import(
    file: Path = ConversionsFile,
    source: str = typer.Option(
        ..., "--source", help="The shop or POS the file comes from; with order_ref it makes a re-import change nothing."
    ),
) -> None:
    """Import purchases from a CSV file; each refused row is listed by its line. Exit 0 when every row was imported
    or already there, 1 when any row was refused or the file cannot be read as a whole (2: usage error)."""
    from ledger.crm.conversions import import_conversions_csv
    from ledger.db import create_engine_for, session_factory, upgrade

    settings = _settings()
    engine = create_engine_for(settings)
    try:
        upgrade(engine)
        report = import_conversions_csv(session_factory(engine), file, source)
    finally:
        engine.dispose()
    console.print(f"conversions from {source!r} in {file}", markup=False, highlight=False, soft_wrap=True)
    summary = Table(show_header=False)
    summary.add_column("outcome")
    summary.add_column("rows", justify="right")
    summary.add_row("rows read", f"{report.rows_read:,}")
    summary.add_row("imported", f"{report.imported:,}")
    summary.add_row("already imported", f"{report.already_imported:,}")
    summary.add_row("refused", f"{len(report.errors):,}", style="red" if report.errors else "")
    console.print(summary)
    for line, message in report.errors:  # the file's own text: printed as is, never as rich markup
        console.print(f"line {line}: {message}", markup=False, highlight=False, soft_wrap=True)
    if report.errors:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
