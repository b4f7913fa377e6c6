"""decode.py reads every suite event by slicing, and agrees with web3's own decoder field for field."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.address import to_checksum_address
from web3.logs import DISCARD

from ledger.contracts import transact
from ledger.indexer.decode import (
    DecodedLog,
    decode_log,
    decode_logs,
    event_layouts,
    rewarded_row,
    rewarded_topic,
    topics_of,
)
from ledger.indexer.mapping import map_logs
from ledger.model import Action, Purpose
from ledger.suite import Suite
from tests.contracts import conftest as contract_fixtures
from tests.contracts.helpers import CampaignFactory

chain, deployed, suite = contract_fixtures.chain, contract_fixtures.deployed, contract_fixtures.suite


def _raw_logs(suite: Suite, from_block: int) -> list[dict[str, Any]]:
    """The logs since `from_block`. eth-tester only answers through web3's formatters (bytes, ints); decode.py
    takes those as well as a node's raw hex strings, which the anvil indexer tests feed it."""
    return [dict(log) for log in suite.chain.w3.eth.get_logs({"fromBlock": from_block, "toBlock": "latest"})]


def _contracts(suite: Suite) -> dict[str, str]:
    return {suite.escrow.address.lower(): "CampaignEscrow", suite.registry.address.lower(): "ConsentRegistry"}


def _web3_view(value: Any) -> Any:
    """web3's decoded values in decode.py's conventions (lowercase addresses, 0x-hex bytes)."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


@pytest.fixture
def activity(suite: Suite) -> tuple[Suite, int]:
    """A campaign with consent granted and revoked, a batch with paid and rejected engagements, a claim."""
    start = suite.chain.w3.eth.block_number + 1
    campaigns = CampaignFactory(suite)
    accounts = suite.chain.accounts
    campaign_id = campaigns.create()
    alice, bob = accounts.consumers[:2]
    campaigns.consent(alice)
    campaigns.consent(bob, purposes=int(Purpose.ADS | Purpose.EMAIL))
    transact(suite.chain, bob, suite.registry.functions.revoke(accounts.marketer.address, int(Purpose.EMAIL)))
    batch = [
        campaigns.engagement(campaign_id, alice.address, Action.INSTALL),
        campaigns.engagement(campaign_id, alice.address, Action.INSTALL),
        campaigns.engagement(campaign_id, bob.address, Action.AD_VIEW),
        campaigns.engagement(campaign_id, bob.address, Action.EMAIL_CLICK),
    ]
    campaigns.settle(campaign_id, batch)
    transact(suite.chain, alice, suite.escrow.functions.claim([campaign_id], alice.address))
    transact(suite.chain, accounts.marketer, suite.escrow.functions.pause(campaign_id))
    return suite, start


class TestDecodeLog:
    def test_every_suite_event_decodes_exactly_as_web3_does(self, activity: tuple[Suite, int]):
        suite, start = activity
        raws = _raw_logs(suite, start)
        decoded, skipped = decode_logs(raws, _contracts(suite))
        assert skipped > 0  # the token's Transfer and Approval logs are not ours
        names = {log.name for log in decoded}
        assert {"CampaignCreated", "AttesterAdded", "ConsentGranted", "ConsentRevoked", "Rewarded"} <= names
        assert {"Rejected", "BatchSettled", "Claimed", "CampaignPaused"} <= names
        for log in decoded:
            contract = suite.escrow if log.contract == "CampaignEscrow" else suite.registry
            receipt = suite.chain.w3.eth.get_transaction_receipt(log.position.tx_hash)  # type: ignore[arg-type]
            (reference,) = [
                e
                for e in contract.events[log.name]().process_receipt(receipt, errors=DISCARD)
                if e["logIndex"] == log.position.log_index
            ]
            expected = {k: _web3_view(v) for k, v in dict(reference["args"]).items() if k != "terms"}
            assert {k: v for k, v in log.fields.items() if k != "terms"} == expected, log.name
            assert log.position.block_hash == "0x" + bytes(reference["blockHash"]).hex()

    def test_a_rewarded_log_unpacks_to_its_engagement(self, activity: tuple[Suite, int]):
        suite, start = activity
        decoded, _ = decode_logs(_raw_logs(suite, start), _contracts(suite))
        rewards = [log for log in decoded if log.name == "Rewarded"]
        assert [(r.reward.event_id, r.reward.action) for r in rewards] == [(0, Action.INSTALL), (2, Action.AD_VIEW)]
        assert rewards[0].fields["consumer"] == suite.chain.accounts.consumers[0].address.lower()

    def test_campaign_created_carries_its_terms(self, activity: tuple[Suite, int]):
        suite, start = activity
        decoded, _ = decode_logs(_raw_logs(suite, start), _contracts(suite))
        (created,) = [log for log in decoded if log.name == "CampaignCreated"]
        token, brand, starts_at, ends_at, rewards, purposes, lifetime, daily = created.fields["terms"]
        assert to_checksum_address(token) == suite.token.address
        assert rewards[Action.INSTALL] == 10**18 and lifetime[Action.INSTALL] == 1 and daily[Action.DAILY_OPEN] == 1
        assert starts_at < ends_at and purposes[Action.AD_VIEW] == Purpose.ADS

    def test_logs_of_other_contracts_and_unknown_topics_are_skipped(self, activity: tuple[Suite, int]):
        suite, start = activity
        raws = _raw_logs(suite, start)
        token_logs = [r for r in raws if r["address"].lower() == suite.token.address.lower()]
        assert token_logs and all(decode_log(r, _contracts(suite)) is None for r in token_logs)
        ours = next(r for r in raws if r["address"].lower() == suite.escrow.address.lower())
        assert decode_log(ours, _contracts(suite)) is not None
        assert decode_log({**ours, "topics": [b"\xab" * 32]}, _contracts(suite)) is None
        assert decode_log({**ours, "topics": []}, _contracts(suite)) is None

    def test_a_log_whose_data_does_not_fit_its_event_is_skipped(self, activity: tuple[Suite, int]):
        suite, start = activity
        raws = _raw_logs(suite, start)
        rejected_topic = bytes.fromhex(topics_of("Rejected")[0][2:])
        rejected = next(r for r in raws if bytes(r["topics"][0]) == rejected_topic)
        assert decode_log(rejected, _contracts(suite)) is not None
        assert decode_log({**rejected, "data": bytes(rejected["data"]) + b"\x00" * 32}, _contracts(suite)) is None

    def test_raw_json_rpc_hex_strings_decode_like_formatted_values(self, activity: tuple[Suite, int]):
        suite, start = activity
        formatted = next(r for r in _raw_logs(suite, start) if r["address"].lower() == suite.escrow.address.lower())
        raw = _as_json_rpc(formatted)
        assert decode_log(raw, _contracts(suite)) == decode_log(formatted, _contracts(suite))

    def test_the_rewarded_fast_path_gives_the_general_decoders_row(self, activity: tuple[Suite, int]):
        suite, start = activity
        escrow = suite.escrow.address.lower()
        formatted = [r for r in _raw_logs(suite, start) if decode_log(r, _contracts(suite)) is not None]
        raws = [_as_json_rpc(r) for r in formatted]
        rewarded = [(f, r) for f, r in zip(formatted, raws, strict=True) if r["topics"][0] == rewarded_topic()]
        assert len(rewarded) == 2  # one of the four engagements is rejected
        for formatted_log, raw in rewarded:
            fast = rewarded_row(raw, suite.chain.chain_id, escrow)
            assert rewarded_row(formatted_log, suite.chain.chain_id, escrow) is None  # HexBytes: general path
            general = map_logs(suite.chain.chain_id, escrow, suite.registry.address.lower(), [formatted_log])
            assert fast is not None and [fast] == general.touchpoints
        one = rewarded[0][1]
        for broken in (
            {**one, "data": one["data"] + "00"},
            {**one, "address": suite.registry.address.lower()},
            {**one, "topics": [one["topics"][0], "0x" + "ff" * 32]},  # not an address topic
            {**one, "blockHash": one["blockHash"][:-2]},
        ):
            assert rewarded_row(broken, suite.chain.chain_id, escrow) is None

    def test_a_log_served_twice_maps_once(self, activity: tuple[Suite, int]):
        suite, start = activity
        raws = [_as_json_rpc(r) for r in _raw_logs(suite, start)]
        mapped = map_logs(suite.chain.chain_id, suite.escrow.address.lower(), suite.registry.address.lower(),
                          raws + raws)  # fmt: skip
        assert mapped.duplicates == len(raws) and len(mapped.touchpoints) == 2


def _as_json_rpc(formatted: dict[str, Any]) -> dict[str, Any]:
    """A web3-formatted log as a node's raw JSON-RPC answer has it (lowercase hex strings)."""
    return {
        "address": formatted["address"].lower(),
        "topics": ["0x" + bytes(t).hex() for t in formatted["topics"]],
        "data": "0x" + bytes(formatted["data"]).hex(),
        "blockNumber": hex(formatted["blockNumber"]),
        "blockHash": "0x" + bytes(formatted["blockHash"]).hex(),
        "transactionHash": "0x" + bytes(formatted["transactionHash"]).hex(),
        "transactionIndex": hex(formatted["transactionIndex"]),
        "logIndex": hex(formatted["logIndex"]),
    }


class TestLayouts:
    def test_every_declared_event_has_a_layout_and_a_topic(self):
        names = {layout.name for layout in event_layouts().values()}
        assert {"Rewarded", "Rejected", "BatchSettled", "Claimed", "ConsentGranted", "ConsentRevoked"} <= names
        assert len(topics_of("Rewarded", "Rejected")) == 2

    def test_only_campaign_created_needs_the_abi_decoder(self):
        dynamic = {layout.name for layout in event_layouts().values() if layout.dynamic_types is not None}
        assert dynamic == {"CampaignCreated"}


def test_positions_order_logs_by_block_transaction_and_index(activity: tuple[Suite, int]):
    suite, start = activity
    decoded: list[DecodedLog] = decode_logs(_raw_logs(suite, start), _contracts(suite))[0]
    orders = [log.position.order for log in decoded]
    assert orders == sorted(orders)
