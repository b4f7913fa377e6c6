"""One suite over both local backends: the rest of adledger relies on them behaving alike through `Chain`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from ledger.chain import (
    ANVIL_CHAIN_ID,
    AnvilProcess,
    Chain,
    ChainError,
    ChainStalled,
    DevAccounts,
    TransactionFailed,
    connect,
    revert_data,
)
from ledger.settings import DEV_MNEMONIC, Settings

ETH_TESTER_CHAIN_ID = 131277322940537
WELL_KNOWN = {  # anvil's documented default accounts for `test test ... junk`
    "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "marketer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "attester": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "consumer1": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "consumer2": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "consumer3": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "consumer4": "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "consumer5": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "consumer6": "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "consumer7": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
}
CUSTOM_ERROR = bytes.fromhex("6ff8027a")
REVERT_PAYLOADS = {
    "custom-error": CUSTOM_ERROR,
    "custom-error-with-args": CUSTOM_ERROR + encode(["uint256", "address"], [7, WELL_KNOWN["marketer"]]),
    "error-string": bytes.fromhex("08c379a0") + encode(["string"], ["campaign closed"]),
    "panic": bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]),
    "empty": b"",
}


def reverter_initcode(payload: bytes) -> bytes:
    """Init code of a contract whose every call reverts with `payload` (hand-assembled, no solc).

    runtime: PUSH2 len DUP1 PUSH1 12 PUSH1 0 CODECOPY PUSH1 0 REVERT <payload>
    init:    PUSH2 len DUP1 PUSH1 12 PUSH1 0 CODECOPY PUSH1 0 RETURN <runtime>
    """
    runtime = b"\x61" + len(payload).to_bytes(2, "big") + bytes.fromhex("80600c6000396000fd") + payload
    return b"\x61" + len(runtime).to_bytes(2, "big") + bytes.fromhex("80600c6000396000f3") + runtime


BACKENDS = ["eth-tester", pytest.param("anvil", marks=pytest.mark.anvil)]


@pytest.fixture(scope="module", params=BACKENDS)
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    settings = Settings(chain=request.param, data_dir=tmp_path_factory.mktemp(request.param), anvil_port=0)
    with connect(settings) as connected:
        yield connected


@pytest.fixture(scope="module")
def reverters(chain: Chain) -> dict[str, str]:
    deployer = chain.accounts.deployer
    addresses = {}
    for name, payload in REVERT_PAYLOADS.items():
        receipt = chain.send(deployer, {"data": reverter_initcode(payload)})
        addresses[name] = str(receipt["contractAddress"])
    return addresses


@pytest.fixture
def isolated(chain: Chain) -> Iterator[Chain]:
    """Undo whatever a test did to the shared module chain."""
    snapshot = chain.snapshot()
    yield chain
    chain.revert(snapshot)


def fresh_address() -> str:
    return str(Account.create().address)


# -- accounts ----------------------------------------------------------------------------------------------


def test_dev_accounts_are_anvils_well_known_addresses_by_role() -> None:
    accounts = DevAccounts.from_mnemonic(DEV_MNEMONIC)
    assert accounts.by_role() == WELL_KNOWN
    assert accounts.relayer is accounts.deployer
    assert len(accounts.consumers) == 7


def test_every_role_is_funded_on_the_chain(chain: Chain) -> None:
    for role, address in chain.accounts.by_role().items():
        assert chain.balance(address) >= 1_000 * 10**18, role


def test_chain_id_tells_the_backends_apart(chain: Chain) -> None:
    expected = {"eth-tester": ETH_TESTER_CHAIN_ID, "anvil": ANVIL_CHAIN_ID}[chain.backend]
    assert chain.chain_id == expected == chain.w3.eth.chain_id


def test_block_gas_limit_fits_a_large_batch(chain: Chain) -> None:
    assert chain.w3.eth.get_block("latest")["gasLimit"] >= 30_000_000


# -- sending -----------------------------------------------------------------------------------------------


def test_send_transfers_value_and_returns_a_successful_receipt(isolated: Chain) -> None:
    recipient = fresh_address()
    receipt = isolated.send(isolated.accounts.marketer, {"to": recipient, "value": 12345})
    assert receipt["status"] == 1
    assert receipt["type"] == 2  # EIP-1559
    assert isolated.balance(recipient) == 12345


def test_back_to_back_sends_use_consecutive_nonces_from_the_cache(isolated: Chain) -> None:
    sender = isolated.accounts.consumers[0]
    start = isolated.w3.eth.get_transaction_count(sender.address)
    for _ in range(3):
        isolated.send(sender, {"to": fresh_address(), "value": 1})
    assert isolated.w3.eth.get_transaction_count(sender.address) == start + 3


def test_a_send_after_a_nonce_clash_resyncs_and_succeeds(isolated: Chain) -> None:
    sender = isolated.accounts.consumers[1]
    isolated.send(sender, {"to": fresh_address(), "value": 1})  # seeds the cache
    # Someone else uses the next nonce behind the cache's back.
    outside = dict(isolated.prepare(sender, {"to": fresh_address(), "value": 1}))
    outside["nonce"] = isolated.w3.eth.get_transaction_count(sender.address)
    isolated.w3.eth.wait_for_transaction_receipt(
        isolated.w3.eth.send_raw_transaction(sender.sign_transaction(outside).raw_transaction)
    )
    with pytest.raises(Exception):  # noqa: B017 - "nonce too low" has a different type on each backend
        isolated.send(sender, {"to": fresh_address(), "value": 1})
    assert isolated.send(sender, {"to": fresh_address(), "value": 1})["status"] == 1


def test_a_mined_revert_raises_transaction_failed_with_receipt_and_revert_data(
    isolated: Chain, reverters: dict[str, str]
) -> None:
    with pytest.raises(TransactionFailed) as caught:
        # An explicit gas limit skips estimation, so the transaction is mined and fails on chain.
        isolated.send(isolated.accounts.deployer, {"to": reverters["custom-error"], "gas": 100_000})
    assert caught.value.receipt["status"] == 0
    assert revert_data(caught.value) == CUSTOM_ERROR


@pytest.mark.parametrize("payload", list(REVERT_PAYLOADS))
def test_revert_data_gives_the_same_bytes_on_every_backend(
    chain: Chain, reverters: dict[str, str], payload: str
) -> None:
    with pytest.raises(Exception) as caught:  # noqa: B017 - the exception type is the backend's own
        chain.send(chain.accounts.deployer, {"to": reverters[payload]})
    if chain.backend == "anvil":
        assert isinstance(caught.value, ContractLogicError)
    assert revert_data(caught.value) == REVERT_PAYLOADS[payload]


def test_revert_data_follows_a_wrapped_exception_and_ignores_unrelated_ones(
    chain: Chain, reverters: dict[str, str]
) -> None:
    try:
        try:
            chain.w3.eth.call({"to": reverters["custom-error"]})
        except Exception as exc:
            raise RuntimeError("campaign call failed") from exc
    except RuntimeError as wrapped:
        assert revert_data(wrapped) == CUSTOM_ERROR
    assert revert_data(ValueError("execution reverted: b'x'")) is None


# -- bulk --------------------------------------------------------------------------------------------------


def signed_transfers(chain: Chain, count: int, recipient: str) -> list[bytes]:
    sender = chain.accounts.consumers[2]
    template = chain.prepare(sender, {"to": recipient, "value": 1, "gas": 21_000})
    nonce = chain.w3.eth.get_transaction_count(sender.address, "pending")
    signed = [sender.sign_transaction({**template, "nonce": nonce + i}) for i in range(count)]
    return [bytes(tx.raw_transaction) for tx in signed]


def test_send_raw_batch_mines_every_transaction(isolated: Chain) -> None:
    recipient = fresh_address()
    raws = signed_transfers(isolated, 300, recipient)
    receipts = isolated.send_raw_batch(raws)
    assert len(receipts) == 300
    assert all(receipt["status"] == 1 for receipt in receipts)
    assert isolated.balance(recipient) == 300
    # The cache was dropped, so a normal send from the same account still gets the right nonce.
    assert isolated.send(isolated.accounts.consumers[2], {"to": recipient, "value": 1})["status"] == 1


@pytest.mark.anvil
@pytest.mark.parametrize("chain", ["anvil"], indirect=True)  # automine control exists only on anvil
def test_send_raw_batch_fails_fast_when_anvil_stops_mining(isolated: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isolated.backend == "anvil"
    real_rpc = isolated.rpc

    def stalled_rpc(method: str, params: Any = ()) -> Any:
        return None if method == "evm_mine" else real_rpc(method, params)

    monkeypatch.setattr(isolated, "rpc", stalled_rpc)
    with pytest.raises(ChainStalled, match="stalled"):
        isolated.send_raw_batch(signed_transfers(isolated, 3, fresh_address()), stall_timeout=0.3)
    monkeypatch.undo()
    assert real_rpc("anvil_getAutomine") is True  # restored despite the failure
    real_rpc("evm_mine")  # flush what the "stall" left in the pool


# -- time, blocks, snapshots -------------------------------------------------------------------------------


def test_increase_time_moves_the_latest_timestamp_forward(isolated: Chain) -> None:
    before = isolated.latest_timestamp()
    block = isolated.w3.eth.block_number
    after = isolated.increase_time(3600)
    assert after >= before + 3600
    assert after == isolated.latest_timestamp()
    assert isolated.w3.eth.block_number == block + 1
    isolated.send(isolated.accounts.marketer, {"to": fresh_address(), "value": 1})
    assert isolated.latest_timestamp() >= before + 3600  # later blocks stay in the future


def test_mine_adds_empty_blocks(isolated: Chain) -> None:
    block = isolated.w3.eth.block_number
    isolated.mine(3)
    assert isolated.w3.eth.block_number == block + 3


def test_revert_restores_balances_and_nonces_from_a_snapshot(chain: Chain) -> None:
    recipient = fresh_address()
    sender = chain.accounts.attester
    nonce = chain.w3.eth.get_transaction_count(sender.address)
    snapshot = chain.snapshot()
    chain.send(sender, {"to": recipient, "value": 10**18})
    assert chain.balance(recipient) == 10**18
    chain.revert(snapshot)
    assert chain.balance(recipient) == 0
    assert chain.w3.eth.get_transaction_count(sender.address) == nonce
    assert chain.send(sender, {"to": recipient, "value": 5})["status"] == 1  # the nonce cache resynced
    assert chain.balance(recipient) == 5


# -- connecting --------------------------------------------------------------------------------------------


def test_connect_rejects_an_unknown_backend_naming_the_choices(tmp_path: Path) -> None:
    settings = Settings(chain="hardhat", data_dir=tmp_path)
    with pytest.raises(ValueError, match="eth-tester, anvil"), connect(settings):
        pass


def test_anvil_process_asks_for_npm_ci_when_the_binary_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ChainError, match="npm ci"):
        AnvilProcess(Settings(data_dir=tmp_path, project_root=tmp_path)).start()


@pytest.mark.anvil
def test_a_url_connects_without_spawning_a_process(tmp_path: Path) -> None:
    with AnvilProcess(Settings(data_dir=tmp_path, anvil_state=False)) as anvil:
        with connect(Settings(chain=anvil.url, data_dir=tmp_path)) as chain:
            assert chain.backend == "rpc"
            assert chain.chain_id == ANVIL_CHAIN_ID
            recipient = fresh_address()
            receipts = chain.send_raw_batch(signed_transfers(chain, 5, recipient))
            assert [receipt["status"] for receipt in receipts] == [1] * 5
            assert chain.balance(recipient) == 5
        assert anvil.running


@pytest.mark.anvil
def test_anvil_state_survives_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    settings = Settings(chain="anvil", data_dir=tmp_path)
    recipient = fresh_address()
    with connect(settings) as chain:
        chain.send(chain.accounts.marketer, {"to": recipient, "value": 4242})
        block = chain.w3.eth.block_number
    assert (tmp_path / "anvil" / "state.json").is_file()
    with connect(settings) as chain:
        assert chain.balance(recipient) == 4242
        assert chain.w3.eth.block_number == block + 1  # the blocks, and one the restart mined (the clock's)
        # Nonces persisted too: the next send from the same account goes through.
        assert chain.send(chain.accounts.marketer, {"to": recipient, "value": 1})["status"] == 1


@pytest.mark.anvil
def test_serve_devnet_stops_anvil_and_saves_state_on_sigterm(tmp_path: Path) -> None:
    project_root = Path(__file__).resolve().parents[2]
    script = (
        "import sys\n"
        "from ledger.chain import serve_devnet\n"
        "from ledger.settings import Settings\n"
        "serve_devnet(Settings(data_dir=sys.argv[1]), lambda url: print(url, flush=True))\n"
        "print('stopped', flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project_root)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert Web3(HTTPProvider(url)).eth.chain_id == ANVIL_CHAIN_ID
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "anvil" / "state.json").is_file()


@pytest.mark.anvil
def test_a_second_connect_to_a_served_data_dir_joins_the_running_anvil(tmp_path: Path):
    settings = Settings(chain="anvil", data_dir=tmp_path)
    with connect(settings) as owner, connect(settings) as guest:
        assert guest.w3.provider.endpoint_uri == owner.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        before = guest.latest_timestamp()
        owner.mine()
        assert guest.latest_timestamp() >= before
    # the guest left the owner's anvil alone; the owner stopped it and released the directory
    with connect(settings) as again:
        assert again.chain_id == 31337


@pytest.mark.anvil
def test_a_devnet_restarted_after_a_pause_says_what_time_it_is(tmp_path: Path):
    """The saved head is as old as the downtime; a restart mines a block so the latest one is current again (the
    main job's demo dates its campaign from it: a second `make run` failed EscrowInvalidDates)."""
    settings = Settings(chain="anvil", data_dir=tmp_path)
    with connect(settings) as chain:
        assert chain.w3.eth.block_number == 0  # a new chain gets no block
        chain.mine()
        stopped = chain.latest_timestamp()
    time.sleep(3)
    with connect(settings) as chain:
        assert chain.latest_timestamp() >= max(stopped + 1, int(time.time()) - 1)


@pytest.mark.anvil
def test_a_restart_from_state_keeps_block_time_moving_forward(tmp_path: Path):
    settings = Settings(chain="anvil", data_dir=tmp_path)
    with connect(settings) as chain:
        ahead = chain.increase_time(7_200)
    with connect(settings) as chain:
        chain.mine()
        assert chain.latest_timestamp() > ahead


@pytest.mark.anvil
@pytest.mark.parametrize("chain", ["anvil"], indirect=True)  # the main job's devnet
def test_the_heartbeat_keeps_a_quiet_devnets_clock_moving_until_stopped(isolated: Chain) -> None:
    stop = threading.Event()
    beat = threading.Thread(target=isolated.heartbeat, args=(stop, 0.5))
    first, clock = isolated.w3.eth.block_number, isolated.latest_timestamp()
    beat.start()
    try:
        time.sleep(1.6)
        assert isolated.w3.eth.block_number >= first + 2  # empty blocks, no transaction sent
        assert isolated.latest_timestamp() >= clock + 1  # the chain's clock moved with them
    finally:
        stop.set()
        beat.join(timeout=5)
    assert not beat.is_alive()
    stopped = isolated.w3.eth.block_number
    time.sleep(1.1)
    assert isolated.w3.eth.block_number == stopped
