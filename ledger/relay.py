"""Relaying transactions a wallet signed itself: decode, check who may send what, simulate, broadcast.

The service holds no marketer's key. A marketer's wallet signs an EIP-1559 transaction to the escrow (built from
``prepare_create``, or by the wallet itself) and hands over the raw bytes; the service decodes them, checks the
signer, the chain, the target, and that the calldata is one of the escrow functions the caller's role may use
(``MARKETER_CREATE`` / ``MARKETER_MANAGE``), replays it as an ``eth_call`` from the signer so a revert comes back as
its named ``ledger.errors`` class before anything is mined, then sends it unchanged with
``eth_sendRawTransaction``. The signer pays the gas; the outcome is read back by hash (``transaction_status``).

``createCampaignWithPermit`` must be sent by the marketer, so "one signed request" is one signed *transaction*:
the marketer signs the token's EIP-2612 Permit (typed data from ``prepare_create``) and then the transaction
that carries it, and only that transaction goes on chain. The wallet CLI and the API share this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from sqlalchemy.orm import Session
from web3.exceptions import TransactionNotFound
from web3.types import TxParams

from ledger import typed_data
from ledger.chain import DEVNET_TIP, GAS_HEADROOM, Chain
from ledger.contracts import artifact, bind, canonical_type, events, named_reverts
from ledger.crm.campaigns import require_marketer
from ledger.errors import (
    CampaignMismatch,
    FunctionNotAllowed,
    InvalidTransaction,
    RelayedTransactionNotFound,
    WrongSigner,
)
from ledger.suite import CampaignTerms, Deployment
from ledger.types import normalize_address

#: What a marketer may relay: creating a campaign (its own: the escrow makes msg.sender the marketer) ...
MARKETER_CREATE: tuple[str, ...] = ("createCampaign", "createCampaignWithPermit")
#: ... and managing one of its campaigns (the escrow checks msg.sender is that campaign's marketer, too).
MARKETER_MANAGE: tuple[str, ...] = ("topUp", "pause", "unpause", "addAttester", "removeAttester", "close")
EIP1559 = 2
MAX_RAW_BYTES = 64 * 1024  # far above any escrow call a marketer signs (terms + a few hundred attesters)
PERMIT_TTL = 3600  # seconds a prepared permit stays valid: long enough to review and sign, short if leaked


@dataclass(frozen=True)
class SignedCall:
    """A decoded signed transaction to the escrow. Addresses lowercase; ``args`` by the ABI's input names."""

    tx_hash: str
    raw: bytes
    sender: str
    chain_id: int
    nonce: int
    to: str
    data: bytes
    gas: int
    function: str
    args: dict[str, Any]


@cache
def _escrow_functions() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """Selector -> (name, input names, canonical input types) of every CampaignEscrow function."""
    table: dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]] = {}
    for item in artifact("CampaignEscrow")["abi"]:
        if item["type"] == "function":
            types = tuple(canonical_type(i) for i in item["inputs"])
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], tuple(i["name"] for i in item["inputs"]), types)
    return table


def decode_signed_transaction(raw: bytes | str, *, chain_id: int, escrow: str) -> SignedCall:
    """The escrow call inside a signed EIP-1559 transaction, with its recovered sender.

    Raises InvalidTransaction when it is not one: undecodable, another type, another chain, another target, ether
    attached, or calldata that no escrow function decodes."""
    try:
        data = HexBytes(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidTransaction(f"not hex: {exc}") from None
    if not data or len(data) > MAX_RAW_BYTES:
        raise InvalidTransaction(f"a signed transaction is 1 to {MAX_RAW_BYTES} bytes, got {len(data)}")
    if data[0] != EIP1559:
        raise InvalidTransaction(f"transaction type {data[0]} is not EIP-1559 (type 2)")
    try:
        fields = TypedTransaction.from_bytes(data).as_dict()
        sender = normalize_address(Account.recover_transaction(data))
    except Exception as exc:  # noqa: BLE001 - any malformed RLP or signature is the caller's to fix
        raise InvalidTransaction(f"not a signed EIP-1559 transaction: {exc}") from None
    if int(fields["chainId"]) != chain_id:
        raise InvalidTransaction(f"signed for chain {fields['chainId']}, this service relays to chain {chain_id}")
    to = fields.get("to")
    if not to or normalize_address(bytes(to)) != normalize_address(escrow):
        raise InvalidTransaction(f"addressed to {HexBytes(to or b'').to_0x_hex()}, not to the escrow {escrow}")
    if int(fields["value"]):
        raise InvalidTransaction("the escrow takes no ether: value must be 0")
    calldata = bytes(fields["data"])
    function, args = _decode_call(calldata)
    return SignedCall(
        tx_hash="0x" + keccak(data).hex(),
        raw=bytes(data),
        sender=sender,
        chain_id=chain_id,
        nonce=int(fields["nonce"]),
        to=normalize_address(escrow),
        data=calldata,
        gas=int(fields["gas"]),
        function=function,
        args=args,
    )


def _decode_call(calldata: bytes) -> tuple[str, dict[str, Any]]:
    found = _escrow_functions().get(calldata[:4])
    if found is None:
        raise InvalidTransaction(f"calldata selector 0x{calldata[:4].hex()} is no CampaignEscrow function")
    name, names, types = found
    try:
        values = abi_decode(list(types), calldata[4:])
    except Exception as exc:  # noqa: BLE001 - truncated or padded-wrong arguments
        raise InvalidTransaction(f"{name} arguments do not decode: {exc}") from None
    return name, dict(zip(names, values, strict=True))


def require_signer(call: SignedCall, caller: str) -> None:
    """WrongSigner unless ``caller`` signed the transaction."""
    if call.sender != normalize_address(caller):
        raise WrongSigner(call.sender, normalize_address(caller))


def require_function(call: SignedCall, allowed: tuple[str, ...], campaign_id: int | None = None) -> None:
    """FunctionNotAllowed unless the call is one of ``allowed``; CampaignMismatch unless it acts on
    ``campaign_id`` (when given: every MARKETER_MANAGE function takes ``campaignId`` first)."""
    if call.function not in allowed:
        raise FunctionNotAllowed(call.function, allowed)
    if campaign_id is not None and int(call.args["campaignId"]) != campaign_id:
        raise CampaignMismatch(campaign_id, int(call.args["campaignId"]))


def simulate(chain: Chain, call: SignedCall) -> None:
    """Replays the call from its sender on the latest state: a revert raises its named ``ContractRevert``."""
    params = {"from": to_checksum_address(call.sender), "to": to_checksum_address(call.to), "data": call.data}
    with named_reverts():
        chain.w3.eth.call(cast(TxParams, params | {"gas": call.gas}), "latest")


def broadcast(chain: Chain, call: SignedCall) -> str:
    """Simulates, then sends the signed bytes unchanged; returns the transaction hash."""
    simulate(chain, call)
    with named_reverts():
        chain.w3.eth.send_raw_transaction(call.raw)
    return call.tx_hash


class TxState(StrEnum):
    PENDING = "pending"  # known to the node, not mined yet
    MINED = "mined"  # receipt status 1
    FAILED = "failed"  # receipt status 0 (the state moved between the simulation and inclusion)


@dataclass(frozen=True)
class TxStatus:
    tx_hash: str
    state: TxState
    block_number: int | None = None
    campaign_id: int | None = None  # from a CampaignCreated log in the receipt


def transaction_status(chain: Chain, deployment: Deployment, tx_hash: str) -> TxStatus:
    """Where a relayed transaction is; the id of the campaign it created, once mined.
    RelayedTransactionNotFound when the node knows no such transaction."""
    try:
        receipt = chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
    except TransactionNotFound:
        try:
            chain.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            raise RelayedTransactionNotFound(tx_hash) from None
        return TxStatus(tx_hash, TxState.PENDING)
    if receipt["status"] != 1:
        return TxStatus(tx_hash, TxState.FAILED, int(receipt["blockNumber"]))
    created = events(bind(chain, "CampaignEscrow", deployment.escrow), "CampaignCreated", receipt)
    campaign_id = int(created[0]["campaignId"]) if created else None
    return TxStatus(tx_hash, TxState.MINED, int(receipt["blockNumber"]), campaign_id)


# -- a marketer's relays ------------------------------------------------------------------------------------


def relay_create(chain: Chain, deployment: Deployment, caller: str, raw: bytes | str) -> str:
    """Relays a campaign creation signed by ``caller`` (who becomes its marketer); returns the tx hash."""
    call = decode_signed_transaction(raw, chain_id=deployment.chain_id, escrow=deployment.escrow)
    require_signer(call, caller)
    require_function(call, MARKETER_CREATE)
    return broadcast(chain, call)


def relay_manage(
    session: Session, chain: Chain, deployment: Deployment, campaign_id: int, caller: str, raw: bytes | str
) -> str:
    """Relays a top-up, pause, unpause, attester change or close of ``campaign_id``, signed by ``caller``, who
    must be its marketer as indexed; returns the tx hash."""
    require_marketer(
        session, chain_id=deployment.chain_id, escrow=deployment.escrow, campaign_id=campaign_id, marketer=caller
    )
    call = decode_signed_transaction(raw, chain_id=deployment.chain_id, escrow=deployment.escrow)
    require_signer(call, caller)
    require_function(call, MARKETER_MANAGE, campaign_id)
    return broadcast(chain, call)


# -- preparing a create --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedCreate:
    """What the marketer's wallet signs: the Permit (EIP-712, ``eth_signTypedData_v4`` shape) and, once its
    signature is known, the createCampaignWithPermit transaction (``data`` and ``gas`` are None before)."""

    permit: dict[str, Any]
    transaction: dict[str, Any]


def prepare_create(
    chain: Chain,
    deployment: Deployment,
    marketer: str,
    terms: CampaignTerms,
    attesters: list[str],
    budget: int,
    deadline: int | None = None,
    permit_signature: bytes | None = None,
) -> PreparedCreate:
    """The Permit for ``budget`` (spender: the escrow, the token's next nonce for ``marketer``) and the unsigned
    transaction fields. With ``permit_signature`` (65 bytes over that Permit, same deadline) the calldata is
    encoded and the gas estimated from the marketer, so a revert (bad terms, bad signature) is named now."""
    token = bind(chain, "RewardToken", terms.token)
    escrow = bind(chain, "CampaignEscrow", deployment.escrow)
    owner = to_checksum_address(marketer)
    deadline = deadline or chain.latest_timestamp() + PERMIT_TTL
    with named_reverts():
        nonce = int(token.functions.nonces(owner).call())
        domain = typed_data.Domain(str(token.functions.name().call()), chain.chain_id, token.address)
    message = typed_data.permit_message(owner, escrow.address, budget, nonce, deadline)
    permit = {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "Permit": typed_data.PERMIT},
        "primaryType": "Permit",
        "domain": domain.as_dict(),
        "message": {**message, "value": str(budget), "nonce": str(nonce), "deadline": str(deadline)},
    }
    base_fee = int(chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tip = DEVNET_TIP if chain.backend != "rpc" else int(chain.w3.eth.max_priority_fee)  # as Chain.prepare
    transaction: dict[str, Any] = {
        "type": EIP1559,
        "chainId": chain.chain_id,
        "from": owner,
        "to": escrow.address,
        "value": 0,
        "nonce": int(chain.w3.eth.get_transaction_count(owner, "pending")),
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": 2 * base_fee + tip,
        "gas": None,
        "data": None,
    }
    if permit_signature is not None:
        v, r, s = typed_data.split_signature(permit_signature)
        call = escrow.functions.createCampaignWithPermit(
            terms.as_abi(), [to_checksum_address(a) for a in attesters], budget, deadline, v, r, s
        )
        transaction["data"] = "0x" + bytes(HexBytes(call._encode_transaction_data())).hex()
        params = {"from": owner, "to": escrow.address, "data": transaction["data"]}
        with named_reverts():
            transaction["gas"] = int(chain.w3.eth.estimate_gas(cast(TxParams, params)) * GAS_HEADROOM)
    return PreparedCreate(permit=permit, transaction=transaction)


_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
