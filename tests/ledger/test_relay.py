"""ledger.relay's decoder and role checks: which signed transactions a marketer may have relayed (no chain)."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger import errors
from ledger.contracts import artifact
from ledger.relay import (
    MARKETER_CREATE,
    MARKETER_MANAGE,
    decode_signed_transaction,
    require_function,
    require_signer,
)

CHAIN_ID = 31337
ESCROW = "0x" + "e5" * 20
MARKETER: LocalAccount = Account.from_key("0x" + "11" * 32)
OTHER: LocalAccount = Account.from_key("0x" + "22" * 32)
_escrow = Web3().eth.contract(abi=artifact("CampaignEscrow")["abi"])
_token = Web3().eth.contract(abi=artifact("RewardToken")["abi"])


def signed(data: str, *, signer: LocalAccount = MARKETER, **fields: Any) -> bytes:
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 7,
        "to": Web3.to_checksum_address(ESCROW),
        "value": 0,
        "data": data,
        "gas": 200_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    return bytes(signer.sign_transaction(tx | fields).raw_transaction)


def decode(raw: bytes | str) -> Any:
    return decode_signed_transaction(raw, chain_id=CHAIN_ID, escrow=ESCROW)


class TestDecodeSignedTransaction:
    def test_a_pause_decodes_with_its_sender_and_arguments(self):
        raw = signed(_escrow.encode_abi("pause", args=[5]))
        call = decode("0x" + raw.hex())
        assert (call.sender, call.function, call.args, call.nonce) == (
            MARKETER.address.lower(),
            "pause",
            {"campaignId": 5},
            7,
        )
        assert call.to == ESCROW and call.raw == raw and call.tx_hash == "0x" + Web3.keccak(raw).hex()

    def test_an_attester_change_keeps_its_address_argument(self):
        call = decode(signed(_escrow.encode_abi("addAttester", args=[3, OTHER.address])))
        assert call.args == {"campaignId": 3, "attester": OTHER.address.lower()}

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"chainId": 1}, "chain 1"),
            ({"to": Web3.to_checksum_address("0x" + "ab" * 20)}, "not to the escrow"),
            ({"value": 1}, "no ether"),
        ],
    )
    def test_another_chain_target_or_ether_is_an_invalid_transaction(self, fields: dict[str, Any], message: str):
        with pytest.raises(errors.InvalidTransaction, match=message):
            decode(signed(_escrow.encode_abi("pause", args=[1]), **fields))

    def test_a_legacy_transaction_is_refused(self):
        legacy = {"chainId": CHAIN_ID, "nonce": 0, "to": Web3.to_checksum_address(ESCROW), "value": 0}
        raw = MARKETER.sign_transaction(legacy | {"data": "0x", "gas": 21_000, "gasPrice": 1}).raw_transaction
        with pytest.raises(errors.InvalidTransaction, match="not EIP-1559"):
            decode(bytes(raw))

    @pytest.mark.parametrize("raw", ["0x", "0x02", "0x02c0", "not hex"])
    def test_garbage_is_an_invalid_transaction(self, raw: str):
        with pytest.raises(errors.InvalidTransaction):
            decode(raw)

    def test_calldata_of_no_escrow_function_is_an_invalid_transaction(self):
        with pytest.raises(errors.InvalidTransaction, match="no CampaignEscrow function"):
            decode(signed(_token.encode_abi("transfer", args=[OTHER.address, 1])))

    def test_truncated_arguments_are_an_invalid_transaction(self):
        with pytest.raises(errors.InvalidTransaction, match="do not decode"):
            decode(signed(_escrow.encode_abi("pause", args=[1])[:-8]))


class TestRequireSignerAndFunction:
    def test_another_signer_is_refused_with_both_addresses(self):
        call = decode(signed(_escrow.encode_abi("pause", args=[1]), signer=OTHER))
        with pytest.raises(errors.WrongSigner) as caught:
            require_signer(call, MARKETER.address)
        assert (caught.value.signer, caught.value.caller) == (OTHER.address.lower(), MARKETER.address.lower())

    def test_every_manage_function_passes_for_its_campaign(self):
        for name, args in {
            "topUp": [4, 10],
            "pause": [4],
            "unpause": [4],
            "addAttester": [4, OTHER.address],
            "removeAttester": [4, OTHER.address],
            "close": [4],
        }.items():
            require_function(decode(signed(_escrow.encode_abi(name, args=args))), MARKETER_MANAGE, 4)

    def test_a_manage_function_for_another_campaign_is_a_mismatch(self):
        call = decode(signed(_escrow.encode_abi("close", args=[9])))
        with pytest.raises(errors.CampaignMismatch) as caught:
            require_function(call, MARKETER_MANAGE, 4)
        assert (caught.value.campaign_id, caught.value.calldata_campaign_id) == (4, 9)

    def test_a_claim_is_not_a_marketer_function(self):
        call = decode(signed(_escrow.encode_abi("claim", args=[[1], OTHER.address])))
        with pytest.raises(errors.FunctionNotAllowed) as caught:
            require_function(call, MARKETER_CREATE)
        assert caught.value.function == "claim"
