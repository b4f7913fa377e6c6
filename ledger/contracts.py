"""Contract bindings from the committed artifacts, and reverts turned into named ``ledger.errors``.

``transact`` and ``read`` are the only ways the rest of ledger touches a contract function, so every revert,
on eth-tester or over JSON-RPC, surfaces as the same ``ContractRevert`` subclass with its arguments.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger import errors
from ledger.chain import Chain, revert_data

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)


@cache
def artifact(name: str) -> dict[str, Any]:
    """The compiled artifact ``ledger/artifacts/<name>.json`` (abi, bytecode, sourceHash ...)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise errors.ConfigurationError(f"no artifact {path}; run `adledger compile`")
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def artifact_names() -> list[str]:
    return sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json"))


def canonical_type(item: Mapping[str, Any]) -> str:
    """The canonical ABI type of an input, with tuples expanded (for selectors, topics and eth_abi)."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(canonical_type(c) for c in item["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


@cache
def _error_table() -> dict[bytes, tuple[type[errors.ContractRevert], list[str]]]:
    """Selector -> (Python error class, ABI input types), over every artifact's custom errors."""
    classes = errors.revert_classes()
    table: dict[bytes, tuple[type[errors.ContractRevert], list[str]]] = {}
    for name in artifact_names():
        for item in artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = [canonical_type(i) for i in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            cls = classes.get(item["name"])
            if cls is not None:
                table[selector] = (cls, types)
    return table


def decode_revert(data: bytes) -> errors.LedgerError:
    """The named error behind raw revert data; ``UnknownRevert`` when no ABI of the suite defines it."""
    selector, payload = data[:4], data[4:]
    try:
        if selector == ERROR_STRING:
            return errors.UnknownRevert(data, reason=str(abi_decode(["string"], payload)[0]))
        if selector == PANIC:
            return errors.UnknownRevert(data, reason=f"panic 0x{abi_decode(['uint256'], payload)[0]:02x}")
        if selector in _error_table():
            cls, types = _error_table()[selector]
            values = [
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, abi_decode(types, payload), strict=True)
            ]
            return cls(*values)
    except Exception:  # noqa: BLE001 - malformed revert data is reported raw, never crashes the caller
        pass
    return errors.UnknownRevert(data)


@contextlib.contextmanager
def named_reverts() -> Iterator[None]:
    """Re-raises a revert from either backend as its named ``ledger.errors`` class."""
    try:
        yield
    except errors.TransactionFailed as exc:
        # mined with status 0 (sent with its own gas limit, or the state moved after estimation): the replayed
        # revert bytes still name the error
        if exc.revert:
            raise decode_revert(exc.revert) from exc
        raise
    except errors.LedgerError:
        raise
    except Exception as exc:
        data = revert_data(exc)
        if data is None:
            raise
        raise decode_revert(data) from exc


def transact(chain: Chain, account: LocalAccount, call: ContractFunction, **tx: Any) -> TxReceipt:
    """Signs and sends ``call`` from ``account``; a revert raises its named ``ContractRevert``."""
    # web3's build_transaction would also pick fees; Chain.prepare does that the same way on every backend.
    params = {"to": call.address, "data": call._encode_transaction_data(), **tx}
    with named_reverts():
        return chain.send(account, params)


def read(call: ContractFunction, **tx: Any) -> Any:
    """``call.call()``, with reverts raised by name."""
    with named_reverts():
        return call.call(cast(Any, tx) or None)


def bind(chain: Chain, name: str, address: str) -> Contract:
    """A web3 contract object for the artifact ``name`` at ``address``."""
    return chain.w3.eth.contract(address=to_checksum_address(address), abi=artifact(name)["abi"])


def deploy(chain: Chain, account: LocalAccount, name: str, *args: Any) -> tuple[Contract, TxReceipt]:
    """Deploys the artifact ``name`` with constructor ``args``; returns the bound contract and the receipt."""
    factory = chain.w3.eth.contract(abi=artifact(name)["abi"], bytecode=artifact(name)["bytecode"])
    data = factory.constructor(*args).data_in_transaction
    with named_reverts():
        receipt = chain.send(account, {"data": data})
    address = receipt["contractAddress"]
    if address is None:
        raise errors.TransactionFailed(receipt)
    return bind(chain, name, address), receipt


def events(contract: Contract, name: str, receipt: TxReceipt) -> list[dict[str, Any]]:
    """The decoded ``name`` events that ``contract`` emitted in ``receipt`` (other logs are skipped quietly)."""
    decoded = contract.events[name]().process_receipt(receipt, errors=DISCARD)
    return [dict(event["args"]) for event in decoded if event["address"] == contract.address]
