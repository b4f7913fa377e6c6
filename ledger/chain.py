"""The one place that knows which chain adledger talks to: eth-tester, a spawned anvil, or any JSON-RPC URL.

Everything above this module gets a `Chain` (a `Web3`, the chain id and the dev accounts by role) and never
branches on the backend itself; the backend differences (error shapes, time travel, snapshots, bulk mining)
are absorbed here. See hardhat-free-devnet.md.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import logging
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Literal, cast

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed as EthTesterTransactionFailed
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint, TxParams, TxReceipt

from ledger.errors import ChainError, ChainStalled, ConfigurationError, DevnetRunning, TransactionFailed
from ledger.settings import Settings

_log = logging.getLogger(__name__)

Backend = Literal["eth-tester", "anvil", "rpc"]
BACKEND_CHOICES = ("eth-tester", "anvil", "http://...", "https://...")

HD_PATH_PREFIX = "m/44'/60'/0'/0"  # the path anvil, Hardhat and MetaMask use: account i is .../i
ANVIL_CHAIN_ID = 31337
BLOCK_GAS_LIMIT = 30_000_000  # anvil's default; eth-tester is set to the same so a 16.7M-gas batch fits
DEVNET_TIP = 10**9  # 1 gwei: devnets have no fee market, a fixed tip is enough
GAS_HEADROOM = 1.1  # estimates are exact for the state at estimation time; state may move before inclusion
RAW_BATCH_CHUNK = 200  # JSON-RPC batch size for eth_sendRawTransaction (TOOLCHAIN.md)
RECEIPT_BATCH_CHUNK = 500
ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
SEND_RAW = RPCEndpoint("eth_sendRawTransaction")
JSON = "application/json"


# --------------------------------------------------------------------------------------------------------
# Dev accounts
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevAccounts:
    """The devnet's accounts by role, derived from one mnemonic so every backend agrees on the addresses."""

    deployer: LocalAccount  # index 0; also the relayer that pays gas for gasless actions
    marketer: LocalAccount  # index 1
    attester: LocalAccount  # index 2
    consumers: tuple[LocalAccount, ...]  # indexes 3..9

    NUM_ACCOUNTS = 10

    @classmethod
    def from_mnemonic(cls, mnemonic: str) -> DevAccounts:
        """Derive m/44'/60'/0'/0/i (anvil's path), computing the BIP-39 seed once rather than ten times."""
        Account.enable_unaudited_hdwallet_features()
        seed = seed_from_mnemonic(mnemonic, "")
        keys = [key_from_seed(seed, f"{HD_PATH_PREFIX}/{i}") for i in range(cls.NUM_ACCOUNTS)]
        accounts: list[LocalAccount] = [Account.from_key(key) for key in keys]
        return cls(deployer=accounts[0], marketer=accounts[1], attester=accounts[2], consumers=tuple(accounts[3:]))

    @property
    def relayer(self) -> LocalAccount:
        """The account that pays gas for gasless (signed-message) actions: the deployer."""
        return self.deployer

    def all(self) -> list[LocalAccount]:
        """Every account in index order."""
        return [self.deployer, self.marketer, self.attester, *self.consumers]

    def by_role(self) -> dict[str, str]:
        """Role name -> checksum address, for printing (`consumer1`..`consumer7`)."""
        roles: dict[str, str] = {"deployer": self.deployer.address, "marketer": self.marketer.address}
        roles["attester"] = self.attester.address
        roles.update({f"consumer{i}": acct.address for i, acct in enumerate(self.consumers, start=1)})
        return roles


# --------------------------------------------------------------------------------------------------------
# Revert data
# --------------------------------------------------------------------------------------------------------

_ETH_TESTER_BYTES = re.compile(r"^execution reverted: (b'.*'|b\".*\")$", re.DOTALL)
_ETH_TESTER_REASON = re.compile(r"^execution reverted: (.*)$", re.DOTALL)


def _hex_to_bytes(value: object) -> bytes | None:
    if isinstance(value, str) and re.fullmatch(r"0x([0-9a-fA-F]{2})*", value):
        return bytes.fromhex(value[2:])
    return None


def _revert_data_of(exc: BaseException) -> bytes | None:
    if isinstance(exc, TransactionFailed):
        return exc.revert
    if isinstance(exc, ContractLogicError):
        data = exc.data
        if isinstance(data, dict):  # some nodes nest it: {"message": ..., "data": "0x..."}
            return _hex_to_bytes(data.get("data"))
        return _hex_to_bytes(data)
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            return _hex_to_bytes(error.get("data"))
        return None
    if isinstance(exc, EthTesterTransactionFailed) and exc.args and isinstance(exc.args[0], str):
        # eth-tester prints the raw bytes (`execution reverted: b'o\xf8\x02z'`) but has already decoded an
        # Error(string) into its text: re-encode that so both backends give the same bytes.
        message = exc.args[0]
        if message == "execution reverted":
            return b""
        if match := _ETH_TESTER_BYTES.match(message):
            with contextlib.suppress(ValueError, SyntaxError):
                literal = ast.literal_eval(match.group(1))
                if isinstance(literal, bytes):
                    return literal
        if match := _ETH_TESTER_REASON.match(message):
            return ERROR_STRING_SELECTOR + abi_encode(["string"], [match.group(1)])
    return None


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes (selector + ABI args) behind an exception from either backend, else None.

    Follows `__cause__`/`__context__` so it also works on an exception a caller has wrapped.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _revert_data_of(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None


# --------------------------------------------------------------------------------------------------------
# Chain
# --------------------------------------------------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Chain:
    """A connected chain: `w3`, its id, the backend kind, the dev accounts, and backend-neutral helpers."""

    def __init__(self, w3: Web3, backend: Backend, accounts: DevAccounts, receipt_timeout: float = 120.0) -> None:
        self.w3 = w3
        self.backend: Backend = backend
        self.accounts = accounts
        self.chain_id: int = w3.eth.chain_id
        self.receipt_timeout = receipt_timeout
        self._nonces: dict[str, int] = {}
        self._nonce_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------------------------

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """A raw JSON-RPC call (anvil_*, evm_*, txpool_*); raises web3's Web3RPCError on an error answer."""
        return self.w3.manager.request_blocking(RPCEndpoint(method), list(params))

    @property
    def _tester(self) -> Any:
        provider = self.w3.provider
        if not isinstance(provider, EthereumTesterProvider):
            raise ChainError("not an eth-tester chain")
        return provider.ethereum_tester

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self.w3.eth.get_transaction_count(cast(Any, address), "pending")
        return self._nonces[address]

    def forget_nonces(self) -> None:
        """Drop the nonce cache (after a revert, a bulk send, anything that moved nonces behind our back)."""
        with self._nonce_lock:
            self._nonces.clear()

    def _tip(self) -> int:
        return DEVNET_TIP if self.backend != "rpc" else int(self.w3.eth.max_priority_fee)

    # -- sending --------------------------------------------------------------------------------------------

    def prepare(self, account: LocalAccount, tx: Mapping[str, Any]) -> dict[str, Any]:
        """Fill chainId, EIP-1559 fees and gas (not the nonce); estimation errors propagate for decoding."""
        filled = {key: value for key, value in tx.items() if key != "from"}
        filled.setdefault("chainId", self.chain_id)
        if "gasPrice" not in filled and "maxFeePerGas" not in filled:
            base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(filled.get("maxPriorityFeePerGas", self._tip()))
            filled["maxPriorityFeePerGas"] = tip
            filled["maxFeePerGas"] = 2 * base_fee + tip
        if "gas" not in filled:
            estimate = self.w3.eth.estimate_gas(cast(TxParams, {**filled, "from": account.address}))
            filled["gas"] = int(estimate * GAS_HEADROOM)
        return filled

    def send(self, account: LocalAccount, tx: Mapping[str, Any]) -> TxReceipt:
        """Sign locally, send raw, wait for the receipt; raise `TransactionFailed` if it reverted.

        Nonces come from a local per-address cache (seeded from the pending count) so back-to-back sends do
        not race the node; any error while sending drops the cached nonce so the next send resyncs.
        """
        filled = self.prepare(account, tx)
        with self._nonce_lock:
            try:
                if "nonce" not in filled:
                    filled["nonce"] = self._next_nonce(account.address)
                signed = account.sign_transaction(filled)
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except BaseException:
                self._nonces.pop(account.address, None)
                raise
            self._nonces[account.address] = int(filled["nonce"]) + 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout)
        if receipt["status"] != 1:
            raise TransactionFailed(receipt, self._replay_for_revert(account, filled, receipt))
        return receipt

    def _replay_for_revert(self, account: LocalAccount, tx: Mapping[str, Any], receipt: TxReceipt) -> bytes | None:
        """Re-run a failed transaction as a call on its parent block to recover the revert bytes."""
        call = {key: tx[key] for key in ("to", "data", "value", "gas") if key in tx}
        call["from"] = account.address
        try:
            self.w3.eth.call(cast(TxParams, call), max(int(receipt["blockNumber"]) - 1, 0))
        except Exception as exc:  # noqa: BLE001 - best effort: any failure just means "no data"
            return revert_data(exc)
        return None

    def send_raw_batch(self, raw_txs: Sequence[bytes], stall_timeout: float = 15.0) -> list[TxReceipt]:
        """Send already-signed transactions in bulk and return their receipts in order (benchmarks, seeding).

        On anvil this avoids the automine stall: automine off, JSON-RPC batches of 200, `evm_mine` until the
        pool is empty, receipts in batches; a watchdog raises `ChainStalled` if nothing mines for
        `stall_timeout` seconds. Elsewhere the transactions are sent one by one.
        """
        hashes = [HexBytes(keccak(bytes(raw))) for raw in raw_txs]
        try:
            if self.backend == "eth-tester":
                # Fetch each receipt while its block is the head: eth-tester finds a transaction by scanning
                # blocks backwards from the head, so a receipt looked up later costs time linear in depth.
                eth = self.w3.eth
                return [eth.get_transaction_receipt(eth.send_raw_transaction(raw)) for raw in raw_txs]
            if self.backend == "anvil":
                self._bulk_send_anvil(raw_txs, stall_timeout)
            else:
                for raw in raw_txs:
                    self.w3.eth.send_raw_transaction(raw)
        finally:
            self.forget_nonces()
        return self._receipts(hashes)

    def _bulk_send_anvil(self, raw_txs: Sequence[bytes], stall_timeout: float) -> None:
        was_automine = bool(self.rpc("anvil_getAutomine"))
        self.rpc("evm_setAutomine", [False])
        try:
            for chunk in _chunks(raw_txs, RAW_BATCH_CHUNK):
                requests = [(SEND_RAW, ["0x" + bytes(raw).hex()]) for raw in chunk]
                responses = cast(HTTPProvider, self.w3.provider).make_batch_request(requests)
                if not isinstance(responses, list):  # the whole batch was refused
                    raise ChainError(f"anvil refused a batch of raw transactions: {responses.get('error')}")
                errors = [response["error"] for response in responses if "error" in response]
                if errors:
                    raise ChainError(f"{len(errors)} of {len(chunk)} raw transactions rejected, e.g. {errors[0]}")
            self._mine_until_pool_empty(stall_timeout)
        finally:
            if was_automine:
                self.rpc("evm_setAutomine", [True])

    def _pool_counts(self) -> tuple[int, int]:
        status = self.rpc("txpool_status")
        return int(status["pending"], 16), int(status["queued"], 16)

    def _mine_until_pool_empty(self, stall_timeout: float) -> None:
        """`evm_mine` until nothing is pending; fail fast when mining neither adds blocks nor drains."""
        last_progress = time.monotonic()
        pending, queued = self._pool_counts()
        while pending:
            block_before = self.w3.eth.block_number
            self.rpc("evm_mine")
            now_pending, queued = self._pool_counts()
            if self.w3.eth.block_number > block_before and now_pending < pending:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > stall_timeout:
                raise ChainStalled(
                    f"{now_pending} transactions still pending and no block mined for {stall_timeout:.0f} s: "
                    "anvil looks stalled (foundry issue 10122); restart it (`adledger devnet`)"
                )
            else:
                time.sleep(0.05)
            pending = now_pending
        if queued:
            raise ChainError(f"{queued} transactions are queued behind a nonce gap and will never be mined")

    def _receipts(self, hashes: Sequence[HexBytes]) -> list[TxReceipt]:
        if self.backend != "anvil":
            return [
                self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.receipt_timeout) for tx_hash in hashes
            ]
        receipts: list[TxReceipt] = []
        try:
            for chunk in _chunks(hashes, RECEIPT_BATCH_CHUNK):
                with self.w3.batch_requests() as batch:
                    for tx_hash in chunk:
                        batch.add(self.w3.eth.get_transaction_receipt(tx_hash))
                    receipts.extend(cast(list[TxReceipt], batch.execute()))
        except TransactionNotFound as exc:
            raise ChainError(f"a bulk-sent transaction was dropped without being mined: {exc}") from exc
        return receipts

    # -- time, blocks, snapshots ----------------------------------------------------------------------------

    def latest_timestamp(self) -> int:
        """The timestamp of the latest block (what `block.timestamp` was for the last mined transaction)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def mine(self, blocks: int = 1) -> None:
        """Mine empty blocks."""
        if self.backend == "eth-tester":
            self._tester.mine_blocks(blocks)
        else:
            for _ in range(blocks):
                self.rpc("evm_mine")

    def heartbeat(self, stop: threading.Event, every: float = 1.0) -> None:
        """Until ``stop``: mine an empty block whenever the latest is ``every`` seconds old (devnets only).

        An automining devnet mines only when a transaction arrives, so its clock stands still between them; a live
        chain's moves every block. The settlement batcher sends an engagement once a block's time has reached it
        (the escrow refuses times after its block's), so on a quiet devnet an engagement reported now would wait
        for the next unrelated transaction. ``adledger up`` runs this beside the indexer and the batcher."""
        while not stop.is_set():
            try:
                if self.latest_timestamp() <= time.time() - every:
                    self.mine()
            except Exception as exc:  # the devnet stopping under us ends the heartbeat, not the process
                _log.debug("heartbeat: %s", exc)
            stop.wait(every / 2)

    def increase_time(self, seconds: int) -> int:
        """Move the clock forward and mine a block, so the latest timestamp is at least `seconds` later.

        Returns the new latest timestamp.
        """
        if seconds < 0:
            raise ValueError("time only moves forward")
        before = self.latest_timestamp()
        if self.backend == "eth-tester":
            tester = self._tester
            pending = int(tester.get_block_by_number("pending")["timestamp"])
            # eth-tester's time_travel(t) mines the block at t - 1 (py-evm adds the second back only later).
            tester.time_travel(max(before + seconds + 1, pending))
        else:
            self.rpc("evm_increaseTime", [seconds])
            self.rpc("evm_mine")
        return self.latest_timestamp()

    def snapshot(self) -> str:
        """Capture the chain state; pass the id to `revert` (on anvil an id can be reverted to only once)."""
        if self.backend == "eth-tester":
            return str(self._tester.take_snapshot())
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Go back to a snapshot; drops the nonce cache since nonces went back too."""
        try:
            if self.backend == "eth-tester":
                self._tester.revert_to_snapshot(int(snapshot_id))
            elif not self.rpc("evm_revert", [snapshot_id]):
                raise ChainError(f"unknown or already used snapshot {snapshot_id}")
        finally:
            self.forget_nonces()

    def balance(self, address: str) -> int:
        """Wei balance at the latest block."""
        return int(self.w3.eth.get_balance(cast(Any, address)))


# --------------------------------------------------------------------------------------------------------
# anvil process
# --------------------------------------------------------------------------------------------------------


def anvil_binary(settings: Settings) -> Path:
    """The native anvil from npm (not `.bin/anvil`, whose Node wrapper would be a second process)."""
    return settings.project_root / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def free_port() -> int:
    """A loopback TCP port free now (the OS picks it): for anvil, and for servers tests and benchmarks start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AnvilProcess:
    """A spawned anvil that persists its chain under `data_dir/anvil/` and is stopped so that it does."""

    def __init__(self, settings: Settings, startup_timeout: float = 15.0, stop_timeout: float = 30.0) -> None:
        self.settings = settings
        self.binary = anvil_binary(settings)
        self.dir = settings.data_dir / "anvil"
        self.state_file = self.dir / "state.json"
        self.log_file = self.dir / "anvil.log"
        self.port = settings.anvil_port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def command(self) -> list[str]:
        """The anvil command line: Prague to match the compiled bytecode and eth-tester, the dev mnemonic."""
        cmd = [str(self.binary), "--host", "127.0.0.1", "--port", str(self.port), "--hardfork", "prague"]
        cmd += ["--mnemonic", self.settings.mnemonic, "--chain-id", str(ANVIL_CHAIN_ID)]
        if self.settings.anvil_state:
            cmd += ["--state", str(self.state_file)]
        return cmd

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The end of anvil.log, for error messages."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> AnvilProcess:
        """Spawn anvil and wait until it answers eth_chainId."""
        if self.running:
            return self
        if not self.binary.is_file():
            raise ChainError(f"anvil binary not found at {self.binary}: run `npm ci` in {self.settings.project_root}")
        self.dir.mkdir(parents=True, exist_ok=True)
        self._claim_data_dir()
        with self.log_file.open("ab") as log:
            # Own session: a terminal Ctrl-C reaches only us, and anvil gets exactly one SIGTERM from stop(),
            # rather than a SIGINT and a SIGTERM racing its state dump.
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _claim_data_dir(self) -> None:
        """One anvil per data dir: two writing one --state file would lose a chain. The lock file holds the URL
        of the anvil that owns the directory, so a second caller can join it instead (DevnetRunning)."""
        lock = (self.dir / "devnet.lock").open("a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            url = lock.read().strip()
            lock.close()
            raise DevnetRunning(url) from None
        lock.seek(0)
        lock.truncate()
        lock.write(self.url)
        lock.flush()
        self._lock = lock

    def _release_data_dir(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def _wait_ready(self) -> None:
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ChainError(
                    f"anvil exited with code {self._proc.returncode} during start-up; {self.log_file}:\n"
                    f"{self.log_tail()}"
                )
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": JSON})
            with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=1) as response:
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise ChainError(
                    f"anvil did not answer on {self.url} within {self.startup_timeout:.0f} s; "
                    f"{self.log_file}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait for the exit: anvil writes its --state file on the way out. Kill if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            self._release_data_dir()
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self._release_data_dir()
            raise ChainError(
                f"anvil did not exit within {self.stop_timeout:.0f} s of SIGTERM and was killed; "
                f"its state file may be stale"
            ) from None
        self._release_data_dir()

    def wait(self) -> int:
        """Block until the process exits by itself; its exit code."""
        if self._proc is None:
            raise ChainError("anvil is not running")
        return self._proc.wait()

    def __enter__(self) -> AnvilProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_devnet(settings: Settings, on_ready: Callable[[str], None]) -> None:
    """Run anvil in the foreground (`adledger devnet`) until Ctrl-C or SIGTERM, then stop it cleanly."""

    def _terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    anvil = AnvilProcess(settings)
    try:
        anvil.start()
        on_ready(anvil.url)
        code = anvil.wait()
        raise ChainError(f"anvil exited unexpectedly with code {code}; {anvil.log_file}:\n{anvil.log_tail()}")
    except KeyboardInterrupt:
        pass
    finally:
        anvil.stop()
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------------------------------------
# connect
# --------------------------------------------------------------------------------------------------------


def eth_tester_web3(mnemonic: str) -> Web3:
    """An in-process py-evm chain (Prague, 30M gas blocks) with the mnemonic's ten accounts funded."""
    backend = PyEVMBackend.from_mnemonic(
        mnemonic,
        num_accounts=DevAccounts.NUM_ACCOUNTS,
        # eth-tester's default path is m/44'/60'/0'/i, which is NOT anvil's m/44'/60'/0'/0/i.
        hd_path=HD_PATH_PREFIX,
        genesis_parameters=PyEVMBackend.generate_genesis_params(overrides={"gas_limit": BLOCK_GAS_LIMIT}),
        # vm_configuration=None already means ((0, PragueVM),) in eth-tester 0.14.0b1 / py-evm 0.12.1b1.
    )
    return Web3(EthereumTesterProvider(EthereumTester(backend)))


def _resume_clock(chain: Chain) -> None:
    """Keep a devnet restarted from --state on time.

    anvil restores the blocks but not its clock offset: if the saved chain had moved ahead of the wall clock
    (evm_increaseTime), new blocks would be stamped earlier than the last saved one, and a campaign dated from
    the latest block would not have started yet. Moving the clock past the saved head fixes that, by two seconds:
    with one, a block mined right after a restart once carried the saved head's very timestamp (anvil's clock
    and this process's need not turn over the second together), and a head stamped this very second can be tied
    the same way. Then one empty block: the saved head is as old as the devnet's downtime, and whatever takes the
    latest block's time for "now" (the demo's campaign dates) would date things in the past.
    """
    if chain.w3.eth.block_number == 0:
        return  # a new chain: nothing saved to resume
    ahead = chain.latest_timestamp() - int(time.time())
    if ahead >= 0:
        chain.rpc("evm_increaseTime", [ahead + 2])
    chain.mine()


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Chain]:
    """Yield a `Chain` for `settings.chain`; an anvil it spawned is stopped (and its state saved) on exit."""
    accounts = DevAccounts.from_mnemonic(settings.mnemonic)
    choice = settings.chain.strip()
    if choice == "eth-tester":
        yield Chain(eth_tester_web3(settings.mnemonic), "eth-tester", accounts)
    elif choice == "anvil":
        anvil = AnvilProcess(settings)
        try:
            anvil.start()
        except DevnetRunning as running:
            # `adledger up` or `adledger devnet` already serves this data dir: join it, leave it running
            yield Chain(Web3(HTTPProvider(running.url)), "anvil", accounts)
            return
        try:
            chain = Chain(Web3(HTTPProvider(anvil.url)), "anvil", accounts)
            _resume_clock(chain)
            yield chain
        finally:
            anvil.stop()
    elif choice.startswith(("http://", "https://")):
        w3 = Web3(HTTPProvider(choice))
        if not w3.is_connected():
            raise ChainError(f"no JSON-RPC node answers at {choice}")
        yield Chain(w3, "rpc", accounts)
    else:
        raise ConfigurationError(f"ADLEDGER_CHAIN={settings.chain!r} is not one of: {', '.join(BACKEND_CHOICES)}")
