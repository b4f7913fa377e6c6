"""Raw ``eth_getLogs`` entries of the suite decoded by slicing, without web3's per-log formatters.

Every event of CampaignEscrow and ConsentRegistry but one has a fixed layout (indexed static values in topics,
static values in 32-byte data words), so a decoder built once from the ABI reads each field by position: about
40x faster than ``eth_abi.decode`` per log and 100x faster than web3's event objects (TOOLCHAIN.md). The one
dynamic event, ``CampaignCreated`` (its terms are a tuple), is rare and goes through eth_abi.

Addresses come out lowercase (``0x`` + 40 hex digits): that is how the CRM stores and compares them; checksum
them for display. Logs from other contracts, or with a topic no ABI of the suite defines, decode to ``None``
so the caller can count and skip them rather than fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_abi_to_log_topic

from ledger.contracts import artifact, canonical_type
from ledger.model import Action
from ledger.settlement.records import (
    ACTION_SHIFT,
    AMOUNT_BITS,
    CAMPAIGN_SHIFT,
    EVENT_BITS,
    EVENT_SHIFT,
    TIME_BITS,
    TIME_SHIFT,
    RewardRecord,
)

INDEXED_CONTRACTS = ("CampaignEscrow", "ConsentRegistry")
WORD = 64  # hex digits in a 32-byte word


@dataclass(frozen=True)
class LogPosition:
    """Where a log sits in the chain: the key every chain-derived row is unique on is (chain, tx hash, index)."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int

    @property
    def order(self) -> tuple[int, int, int]:
        """Total order of logs on one chain: (block, transaction, log)."""
        return (self.block_number, self.tx_index, self.log_index)


@dataclass(frozen=True)
class DecodedLog:
    """One suite event: its name, the contract that emitted it, its fields by ABI name, and its position."""

    name: str
    contract: str
    fields: dict[str, Any]
    position: LogPosition

    @property
    def reward(self) -> RewardRecord:
        """A Rewarded log's packed record, unpacked (campaign, event id, action, time, amount)."""
        return RewardRecord.unpack(int(self.fields["record"]))


@dataclass(frozen=True)
class _EventLayout:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (field, type) from topics[1:]
    data: tuple[tuple[str, str], ...]  # (field, type) from the data words, in order
    dynamic_types: tuple[str, ...] | None  # set when the data must go through eth_abi


@cache
def event_layouts() -> dict[str, _EventLayout]:
    """topic0 (0x-hex) -> how to decode that event, for every event the indexed contracts declare."""
    layouts: dict[str, _EventLayout] = {}
    for contract in INDEXED_CONTRACTS:
        for item in artifact(contract)["abi"]:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            inputs = item["inputs"]
            data_types = [canonical_type(i) for i in inputs if not i["indexed"]]
            static = all(t in ("uint256", "uint8", "address", "bytes32", "bool") for t in data_types)
            topic = "0x" + event_abi_to_log_topic(item).hex()
            layouts[topic] = _EventLayout(
                name=item["name"],
                indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
                data=tuple((i["name"], canonical_type(i)) for i in inputs if not i["indexed"]),
                dynamic_types=None if static else tuple(data_types),
            )
    return layouts


@cache
def declared_events(contract: str) -> frozenset[str]:
    """The names of the events ``contract`` declares (a log of one contract with another's topic is foreign)."""
    return frozenset(item["name"] for item in artifact(contract)["abi"] if item["type"] == "event")


def topics_of(*names: str) -> list[str]:
    """The topic0 of each named event (for an eth_getLogs topic filter)."""
    by_name = {layout.name: topic for topic, layout in event_layouts().items()}
    return [by_name[name] for name in names]


def _word(kind: str, hex_word: str) -> Any:
    """One 32-byte word (64 hex digits, no prefix) as the Python value of its static ABI type."""
    if kind == "address":
        return "0x" + hex_word[-40:].lower()
    if kind == "bytes32":
        return "0x" + hex_word.lower()
    if kind == "bool":
        return int(hex_word, 16) != 0
    return int(hex_word, 16)


def _hex(value: Any) -> str:
    """A JSON-RPC hex string as lowercase without prefix (raw responses are strings; web3 gives HexBytes)."""
    return value.hex() if isinstance(value, bytes) else str(value)[2:].lower()


def quantity(value: Any) -> int:
    """A JSON-RPC quantity as an int: 0x-hex as the node sends it, or an int as web3 gives it."""
    return value if isinstance(value, int) else int(str(value), 16)


def decode_log(raw: Mapping[str, Any], contracts: Mapping[str, str]) -> DecodedLog | None:
    """Decodes one raw log of the suite; ``contracts`` maps lowercase address -> contract name.

    Returns None for a log of another contract or an event the suite does not declare.
    """
    address = "0x" + _hex(raw["address"])
    contract = contracts.get(address)
    topics = raw["topics"]
    if contract is None or not topics:
        return None
    layout = event_layouts().get("0x" + _hex(topics[0]))
    if layout is None or len(topics) != 1 + len(layout.indexed) or layout.name not in declared_events(contract):
        return None
    fields: dict[str, Any] = {}
    for (name, kind), topic in zip(layout.indexed, topics[1:], strict=True):
        fields[name] = _word(kind, _hex(topic))
    data = _hex(raw["data"])
    if layout.dynamic_types is not None:
        values = abi_decode(list(layout.dynamic_types), bytes.fromhex(data))
        fields.update({name: value for (name, _), value in zip(layout.data, values, strict=True)})
    else:
        if len(data) != WORD * len(layout.data):
            return None
        for i, (name, kind) in enumerate(layout.data):
            fields[name] = _word(kind, data[i * WORD : (i + 1) * WORD])
    position = LogPosition(
        block_number=quantity(raw["blockNumber"]),
        block_hash="0x" + _hex(raw["blockHash"]),
        tx_hash="0x" + _hex(raw["transactionHash"]),
        tx_index=quantity(raw["transactionIndex"]),
        log_index=quantity(raw["logIndex"]),
    )
    return DecodedLog(layout.name, contract, fields, position)


def decode_logs(raws: Iterable[Mapping[str, Any]], contracts: Mapping[str, str]) -> tuple[list[DecodedLog], int]:
    """Decodes a page of raw logs; returns the suite's events and how many logs were skipped as foreign."""
    decoded: list[DecodedLog] = []
    skipped = 0
    for raw in raws:
        log = decode_log(raw, contracts)
        if log is None:
            skipped += 1
        else:
            decoded.append(log)
    return decoded, skipped


# -- the Rewarded fast path ---------------------------------------------------------------------------------

#: The touchpoints columns ``rewarded_row`` fills, in its tuple's order (customer_id is the caller's).
TOUCHPOINT_COLUMNS = (
    "chain_id", "block_number", "block_hash", "tx_hash", "log_index", "escrow", "campaign_id", "event_id",
    "action", "consumer", "amount", "evidence_hash", "occurred_at",
)  # fmt: skip
_AMOUNT_MASK = (1 << AMOUNT_BITS) - 1
_TIME_MASK = (1 << TIME_BITS) - 1
_EVENT_MASK = (1 << EVENT_BITS) - 1
_ACTIONS = frozenset(int(action) for action in Action)
_HASH_LENGTH = 2 + WORD  # "0x" + 64 hex digits
_ADDRESS_TOPIC_PAD = "0x" + "0" * 24


@cache
def rewarded_topic() -> str:
    return topics_of("Rewarded")[0]


def rewarded_row(raw: Mapping[str, Any], chain_id: int, escrow: str) -> tuple[Any, ...] | None:
    """A raw ``Rewarded`` log of ``escrow`` straight to a touchpoints row (``TOUCHPOINT_COLUMNS``), or None.

    Nine of ten logs the indexer sees are Rewarded, so this skips the general decoder's objects: it checks the
    exact JSON-RPC shape (hex strings of the right lengths, a known action) and slices. Anything else, web3's
    HexBytes included, returns None and goes through ``decode_log``, which is checked field for field against
    web3's decoder; a test checks the two agree. Values come out canonical: lowercase hex, ints.
    """
    topics = raw["topics"]
    data = raw["data"]
    if (
        raw["address"].lower() != escrow
        or len(topics) != 2
        or topics[0] != rewarded_topic()
        or not isinstance(data, str)
        or len(data) != 2 + 2 * WORD
        or not topics[1].startswith(_ADDRESS_TOPIC_PAD)
        or len(topics[1]) != _HASH_LENGTH
    ):
        return None
    block_hash, tx_hash = raw["blockHash"].lower(), raw["transactionHash"].lower()
    if len(block_hash) != _HASH_LENGTH or len(tx_hash) != _HASH_LENGTH:
        return None
    record = int(data[2 : 2 + WORD], 16)
    action = (record >> ACTION_SHIFT) & 0xFF
    if action not in _ACTIONS:
        return None
    return (
        chain_id, int(raw["blockNumber"], 16), block_hash, tx_hash, int(raw["logIndex"], 16), escrow,
        record >> CAMPAIGN_SHIFT, (record >> EVENT_SHIFT) & _EVENT_MASK, action, "0x" + topics[1][26:].lower(),
        record & _AMOUNT_MASK, "0x" + data[2 + WORD :].lower(), (record >> TIME_SHIFT) & _TIME_MASK,
    )  # fmt: skip
