"""ledger.errors and the revert decoder: every custom error of the suite arrives by name, with its arguments."""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils import function_signature_to_4byte_selector, is_checksum_address

from ledger import errors
from ledger.contracts import artifact, artifact_names, decode_revert

MOCKS = "contracts/mocks/"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
LOWERCASE_ADDRESS = "0x" + "ab" * 20
SAMPLE_VALUES: dict[str, Any] = {
    "uint256": 2**104 + 7,
    "address": LOWERCASE_ADDRESS,
    "bytes32": bytes(range(32)),
    "string": "adledger",
}


def _abi_errors() -> dict[str, dict[str, Any]]:
    """Every custom error in the artifacts' ABIs by name, except those only contracts/mocks/ define."""
    found: dict[str, dict[str, Any]] = {}
    for name in artifact_names():
        if artifact(name)["sourceName"].startswith(MOCKS):
            continue
        for item in artifact(name)["abi"]:
            if item["type"] == "error":
                assert found.setdefault(item["name"], item)["inputs"] == item["inputs"], item["name"]
    return found


ABI_ERRORS = _abi_errors()


def selector(item: dict[str, Any]) -> bytes:
    return function_signature_to_4byte_selector(f"{item['name']}({','.join(i['type'] for i in item['inputs'])})")


def revert_data(item: dict[str, Any], values: list[Any]) -> bytes:
    return selector(item) + encode([i["type"] for i in item["inputs"]], values)


def sample_args(item: dict[str, Any]) -> list[Any]:
    return [SAMPLE_VALUES[i["type"]] for i in item["inputs"]]


def all_ledger_errors() -> list[type[errors.LedgerError]]:
    found: list[type[errors.LedgerError]] = []
    pending: list[type[errors.LedgerError]] = [errors.LedgerError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class TestRevertClasses:
    def test_the_artifacts_define_the_suites_errors(self):
        # guards the parametrisations below against an empty or mis-filtered artifact directory
        assert {"ConsentInvalidPurposes", "EscrowBudgetTooLarge", "ERC20InsufficientBalance"} <= ABI_ERRORS.keys()

    @pytest.mark.parametrize("name", sorted(ABI_ERRORS))
    def test_every_abi_error_has_a_contract_revert_of_the_same_name_and_inputs(self, name):
        cls = errors.revert_classes().get(name)
        assert cls is not None, f"ledger.errors has no class {name}"
        assert issubclass(cls, errors.ContractRevert)
        assert cls.solidity_inputs == tuple(i["name"] for i in ABI_ERRORS[name]["inputs"])

    def test_every_contract_revert_is_an_error_of_some_artifact(self):
        # a class whose name matches no ABI error would never be decoded: a typo, or a stale error
        every_abi_error = {
            item["name"] for name in artifact_names() for item in artifact(name)["abi"] if item["type"] == "error"
        }
        assert set(errors.revert_classes()) - every_abi_error == set()

    def test_every_contract_revert_documents_when_it_is_raised(self):
        undocumented = [n for n, cls in errors.revert_classes().items() if not (cls.__doc__ or "").startswith("Raised")]
        assert undocumented == []


class TestDecodeRevert:
    @pytest.mark.parametrize("name", sorted(ABI_ERRORS))
    def test_decode_revert_gives_the_named_class_with_snake_case_attributes(self, name):
        item = ABI_ERRORS[name]
        decoded = decode_revert(revert_data(item, sample_args(item)))
        assert type(decoded) is errors.revert_classes()[name]
        assert isinstance(decoded, errors.ContractRevert)
        for field, kind in ((i["name"], i["type"]) for i in item["inputs"]):
            value = getattr(decoded, errors._snake(field))
            if kind == "address":
                assert is_checksum_address(value) and value.lower() == LOWERCASE_ADDRESS
            else:
                assert value == SAMPLE_VALUES[kind]
        assert str(decoded).startswith(f"{name}(")

    def test_budget_too_large_reads_campaign_id_total_and_max(self):
        data = revert_data(ABI_ERRORS["EscrowBudgetTooLarge"], [7, 2**104, 2**104 - 1])
        decoded = decode_revert(data)
        assert isinstance(decoded, errors.EscrowBudgetTooLarge)
        assert (decoded.campaign_id, decoded.total, decoded.max) == (7, 2**104, 2**104 - 1)
        assert decoded.fields == {"campaign_id": 7, "total": 2**104, "max": 2**104 - 1}
        assert decoded.code == "budget_too_large"
        assert str(decoded) == f"EscrowBudgetTooLarge(campaign_id=7, total={2**104}, max={2**104 - 1})"

    def test_trailing_underscores_and_camel_case_become_plain_snake_case(self):
        decoded = decode_revert(revert_data(ABI_ERRORS["EscrowCampaignNotEnded"], [3, 1_700_000_000, 1_700_000_001]))
        assert isinstance(decoded, errors.EscrowCampaignNotEnded)
        assert (decoded.campaign_id, decoded.ends_at, decoded.now) == (3, 1_700_000_000, 1_700_000_001)
        nonce = decode_revert(revert_data(ABI_ERRORS["InvalidAccountNonce"], [LOWERCASE_ADDRESS, 4]))
        assert isinstance(nonce, errors.InvalidAccountNonce) and nonce.current_nonce == 4

    def test_address_arguments_are_checksummed(self):
        decoded = decode_revert(revert_data(ABI_ERRORS["EscrowNotMarketer"], [1, LOWERCASE_ADDRESS]))
        assert isinstance(decoded, errors.EscrowNotMarketer)
        assert decoded.caller == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"

    def test_an_error_without_arguments_decodes_from_its_selector_alone(self):
        decoded = decode_revert(selector(ABI_ERRORS["EscrowZeroAmount"]))
        assert isinstance(decoded, errors.EscrowZeroAmount) and decoded.fields == {}

    def test_error_string_gives_unknown_revert_with_the_reason(self):
        data = bytes.fromhex("08c379a0") + encode(["string"], ["campaign closed"])
        decoded = decode_revert(data)
        assert type(decoded) is errors.UnknownRevert
        assert (decoded.reason, decoded.data, str(decoded)) == ("campaign closed", data, "campaign closed")

    def test_panic_gives_unknown_revert_with_the_panic_code(self):
        data = bytes.fromhex("4e487b71") + encode(["uint256"], [0x11])
        decoded = decode_revert(data)
        assert type(decoded) is errors.UnknownRevert
        assert decoded.reason == "panic 0x11" and decoded.data == data

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x12",
            bytes.fromhex("deadbeef") + encode(["uint256"], [1]),  # a selector no artifact defines
            bytes.fromhex("08c379a0") + b"\xff" * 7,  # Error(string) with a garbled payload
            bytes.fromhex("4e487b71"),  # Panic without its code
            bytes.fromhex("4e487b71") + b"\x01" * 31,  # Panic with a short code
        ],
        ids=["empty", "one-byte", "unknown-selector", "garbled-error-string", "bare-panic", "short-panic"],
    )
    def test_unknown_or_garbled_data_gives_unknown_revert_without_raising(self, data):
        decoded = decode_revert(data)
        assert type(decoded) is errors.UnknownRevert
        assert decoded.data == data and decoded.reason is None
        assert data.hex() in str(decoded)

    @pytest.mark.parametrize(
        "name", sorted(n for n, item in ABI_ERRORS.items() if item["inputs"]), ids=lambda n: f"{n}-truncated"
    )
    def test_a_known_selector_with_truncated_arguments_gives_unknown_revert(self, name):
        item = ABI_ERRORS[name]
        data = revert_data(item, sample_args(item))[:-1]
        decoded = decode_revert(data)
        assert type(decoded) is errors.UnknownRevert and decoded.data == data


# The codes clients rely on (API problem types, CLI messages): a change must show up in review.
EXPECTED_CODES = {
    "LedgerError": "ledger_error",
    "ConfigurationError": "configuration_error",
    "DeploymentNotFound": "deployment_not_found",
    "ChainError": "chain_unavailable",
    "ChainStalled": "chain_stalled",
    "TransactionFailed": "transaction_failed",
    "ContractRevert": "contract_revert",
    "UnknownRevert": "contract_revert",
    "ConsentInvalidPurposes": "invalid_purposes",
    "ConsentInvalidExpiry": "invalid_expiry",
    "ConsentInvalidBrand": "invalid_brand",
    "ConsentExpiredSignature": "expired_signature",
    "ConsentInvalidSigner": "invalid_signature",
    "EscrowUnknownCampaign": "unknown_campaign",
    "EscrowNotMarketer": "not_marketer",
    "EscrowNotAttester": "not_attester",
    "EscrowCampaignPaused": "campaign_paused",
    "EscrowCampaignClosed": "campaign_closed",
    "EscrowCampaignNotPaused": "campaign_not_paused",
    "EscrowCampaignNotEnded": "campaign_not_ended",
    "EscrowInvalidToken": "invalid_token",
    "EscrowInvalidBrand": "invalid_brand",
    "EscrowInvalidDates": "invalid_dates",
    "EscrowInvalidPurposes": "invalid_purposes",
    "EscrowInvalidAttester": "invalid_attester",
    "EscrowAttesterAlreadyAdded": "attester_already_added",
    "EscrowAttesterNotFound": "attester_not_found",
    "EscrowZeroAmount": "zero_amount",
    "EscrowTransferShortfall": "transfer_shortfall",
    "EscrowBudgetTooLarge": "budget_too_large",
    "EscrowMalformedBatch": "malformed_batch",
    "EscrowInvalidAction": "invalid_action",
    "EscrowExpiredSignature": "expired_signature",
    "EscrowInvalidSigner": "invalid_signature",
    "EscrowInvalidRecipient": "invalid_recipient",
    "InvalidTransferRecipient": "invalid_recipient",
    "EscrowNothingToClaim": "nothing_to_claim",
    "ERC20InsufficientBalance": "insufficient_balance",
    "ERC20InsufficientAllowance": "insufficient_allowance",
    "ERC20InvalidReceiver": "invalid_receiver",
    "ERC20InvalidSender": "invalid_sender",
    "ERC20InvalidApprover": "invalid_approver",
    "ERC20InvalidSpender": "invalid_spender",
    "ERC2612ExpiredSignature": "expired_signature",
    "ERC2612InvalidSigner": "invalid_signature",
    "ECDSAInvalidSignature": "invalid_signature",
    "ECDSAInvalidSignatureLength": "invalid_signature",
    "ECDSAInvalidSignatureS": "invalid_signature",
    "InvalidAccountNonce": "invalid_nonce",
    "ReentrancyGuardReentrantCall": "reentrant_call",
    "SafeERC20FailedOperation": "token_transfer_failed",
    "InvalidShortString": "invalid_short_string",
    "StringTooLong": "string_too_long",
    "AccessDenied": "access_denied",
    "AmbiguousCustomer": "ambiguous_customer",
    "ContactInUse": "contact_in_use",
    "ApiKeyNotFound": "api_key_not_found",
    "InvalidTransaction": "invalid_transaction",
    "FunctionNotAllowed": "function_not_allowed",
    "WrongSigner": "wrong_signer",
    "CampaignMismatch": "campaign_mismatch",
    "RelayedTransactionNotFound": "transaction_not_found",
    "RateLimited": "rate_limited",
    "AttesterNotRegistered": "attester_not_registered",
    "CampaignNotIndexed": "campaign_not_indexed",
    "CampaignNotOpen": "campaign_not_open",
    "ConversionConflict": "conversion_conflict",
    "CredentialsRequired": "credentials_required",
    "CustomerNotFound": "customer_not_found",
    "DevnetRunning": "devnet_running",
    "EngagementNotFound": "engagement_not_found",
    "SettledEventNotFound": "settled_event_not_found",
    "EventIdsExhausted": "event_ids_exhausted",
    "InvalidAmount": "invalid_amount",
    "InvalidApiKey": "invalid_api_key",
    "InvalidContact": "invalid_contact",
    "InvalidConversion": "invalid_conversion",
    "InvalidConversionFile": "invalid_conversion_file",
    "InvalidLinkSignature": "invalid_signature",
    "InvalidSession": "invalid_session",
    "SignatureExpired": "expired_signature",
    "InvalidActionSignature": "invalid_signature",
    "InvalidCursor": "invalid_cursor",
    "LinkExpired": "expired_signature",
    "LinkNonceUsed": "nonce_used",
    "NotCampaignMarketer": "not_marketer",
    "ReorgTooDeep": "reorg_too_deep",
    "SiweChainMismatch": "siwe_chain_mismatch",
    "SiweDomainMismatch": "siwe_domain_mismatch",
    "SiweError": "siwe_error",
    "SiweExpired": "siwe_expired",
    "SiweInvalidSignature": "siwe_invalid_signature",
    "SiweIssuedInFuture": "siwe_issued_in_future",
    "SiweMalformed": "siwe_malformed",
    "SiweNonceUsed": "siwe_nonce_used",
    "SiweNotYetValid": "siwe_not_yet_valid",
    "SiweUriMismatch": "siwe_uri_mismatch",
    "TooManyEngagements": "too_many_engagements",
    "WalletLinkedElsewhere": "wallet_linked_elsewhere",
}


class TestCodes:
    @pytest.mark.parametrize("cls", all_ledger_errors(), ids=lambda cls: cls.__name__)
    def test_every_code_is_snake_case(self, cls):
        assert SNAKE_CASE.fullmatch(cls.code), cls.code

    def test_codes_are_stable(self):
        current = {cls.__name__: cls.code for cls in all_ledger_errors()}
        # existing codes never change or vanish; a new error is added here, so its code is chosen on purpose
        assert current == EXPECTED_CODES

    def test_every_error_is_a_ledger_error(self):
        assert all(issubclass(cls, errors.LedgerError) for cls in errors.revert_classes().values())
        assert issubclass(errors.UnknownRevert, errors.LedgerError)
