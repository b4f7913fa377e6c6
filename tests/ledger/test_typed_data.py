"""ledger.typed_data against the deployed contracts: typehashes, domain separators, and signatures that verify."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

from ledger import typed_data
from ledger.contracts import transact
from ledger.suite import TOKEN_NAME, Suite
from tests.contracts import conftest as contract_fixtures

# The contract tests' fixtures (an eth-tester chain, the suite deployed once, each test in a snapshot), reused.
chain, deployed, suite = contract_fixtures.chain, contract_fixtures.deployed, contract_fixtures.suite

EIP712_DOMAIN = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
# ERC20Permit.sol's PERMIT_TYPEHASH (a private constant, so it is compared with OpenZeppelin's source string)
OPENZEPPELIN_PERMIT = "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
SIGNER: LocalAccount = Account.from_key(keccak(text="typed-data signer"))
BRAND = to_checksum_address("0x" + "b0" * 20)
SAMPLE_DOMAIN = typed_data.Domain(typed_data.REGISTRY_DOMAIN_NAME, 1, to_checksum_address("0x" + "12" * 20))


def domain_separator(domain: typed_data.Domain) -> bytes:
    """EIP-712's hashStruct(domain), written out by hand with eth_abi and eth_utils."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                keccak(text=EIP712_DOMAIN),
                keccak(text=domain.name),
                keccak(text=domain.version),
                domain.chain_id,
                domain.verifying_contract,
            ],
        )
    )


class TestTypehash:
    @pytest.mark.parametrize(
        ("primary", "contract", "constant"),
        [
            ("Grant", "registry", "GRANT_TYPEHASH"),
            ("Revoke", "registry", "REVOKE_TYPEHASH"),
            ("Settlement", "escrow", "SETTLEMENT_TYPEHASH"),
            ("Claim", "escrow", "CLAIM_TYPEHASH"),
        ],
    )
    def test_typehash_equals_the_deployed_contracts_constant(self, suite: Suite, primary, contract, constant):
        deployed_hash = bytes(getattr(getattr(suite, contract).functions, constant)().call())
        assert typed_data.typehash(primary) == deployed_hash
        assert keccak(text=typed_data.type_string(primary)) == deployed_hash

    def test_permit_typehash_is_openzeppelins(self):
        assert typed_data.type_string("Permit") == OPENZEPPELIN_PERMIT
        assert typed_data.typehash("Permit") == keccak(text=OPENZEPPELIN_PERMIT)

    def test_type_string_lists_fields_in_declaration_order(self):
        assert typed_data.type_string("Grant") == (
            "Grant(address consumer,address brand,uint256 purposes,uint256 expiresAt,uint256 nonce,uint256 deadline)"
        )
        assert typed_data.type_string("Claim") == (
            "Claim(address consumer,uint256[] campaignIds,address to,uint256 nonce,uint256 deadline)"
        )

    def test_link_type_string(self):
        # no contract verifies a Link (ledger.crm.links does, off chain), so there is no deployed typehash to compare
        assert typed_data.type_string("Link") == (
            "Link(address wallet,uint256 customerId,address brand,uint256 nonce,uint256 deadline)"
        )
        message = typed_data.link_message(SIGNER.address, 12, BRAND, 7, 1_900_000_000)
        assert typed_data.signable(SAMPLE_DOMAIN, "Link", message).body == keccak(
            typed_data.typehash("Link")
            + encode(
                ["address", "uint256", "address", "uint256", "uint256"], [SIGNER.address, 12, BRAND, 7, 1_900_000_000]
            )
        )

    def test_the_struct_hash_eth_account_signs_uses_the_same_typehash(self):
        # A disagreement between type_string and what eth_account hashes would make every signature invalid.
        message = typed_data.grant_message(SIGNER.address, BRAND, 3, 2_000_000_000, 7, 1_900_000_000)
        expected = keccak(
            typed_data.typehash("Grant")
            + encode(
                ["address", "address", "uint256", "uint256", "uint256", "uint256"],
                [SIGNER.address, BRAND, 3, 2_000_000_000, 7, 1_900_000_000],
            )
        )
        assert typed_data.signable(SAMPLE_DOMAIN, "Grant", message).body == expected

    def test_dynamic_fields_are_hashed_as_eip712_says(self):
        # bytes -> keccak(bytes); uint256[] -> keccak of the packed 32-byte words (what the escrow computes)
        batch = bytes(range(50))
        settlement = typed_data.settlement_message(SIGNER.address, 4, batch, 0, 9)
        assert typed_data.signable(SAMPLE_DOMAIN, "Settlement", settlement).body == keccak(
            typed_data.typehash("Settlement")
            + encode(["address", "uint256", "bytes32", "uint256", "uint256"], [SIGNER.address, 4, keccak(batch), 0, 9])
        )
        claim = typed_data.claim_message(SIGNER.address, [1, 2, 3], BRAND, 5, 9)
        assert typed_data.signable(SAMPLE_DOMAIN, "Claim", claim).body == keccak(
            typed_data.typehash("Claim")
            + encode(
                ["address", "bytes32", "address", "uint256", "uint256"],
                [SIGNER.address, keccak(encode(["uint256"] * 3, [1, 2, 3])), BRAND, 5, 9],
            )
        )


class TestDomainSeparator:
    @pytest.mark.parametrize("contract", ["registry", "escrow"])
    def test_python_domain_separator_equals_the_contracts(self, suite: Suite, contract):
        domain = getattr(suite, f"{contract}_domain")
        onchain = bytes(getattr(suite, contract).functions.DOMAIN_SEPARATOR().call())
        assert domain_separator(domain) == onchain
        # eth_account's header of a signable message is the same domain separator
        message = typed_data.revoke_message(SIGNER.address, BRAND, 1, 0, 0)
        assert typed_data.signable(domain, "Revoke", message).header == onchain

    @pytest.mark.parametrize("contract", ["registry", "escrow", "token"])
    def test_domain_fields_equal_the_contracts_eip712_domain(self, suite: Suite, contract):
        domains = {
            "registry": suite.registry_domain,
            "escrow": suite.escrow_domain,
            "token": typed_data.Domain(TOKEN_NAME, suite.chain.chain_id, suite.token.address),
        }
        _fields, name, version, chain_id, verifying_contract, _salt, _extensions = (
            getattr(suite, contract).functions.eip712Domain().call()
        )
        assert domains[contract].as_dict() == {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        }

    def test_a_link_is_signed_in_the_registrys_domain(self, suite: Suite):
        # what lets a view added to the registry later verify a stored link with its own DOMAIN_SEPARATOR
        message = typed_data.link_message(SIGNER.address, 1, BRAND, 0, 1_900_000_000)
        onchain = bytes(suite.registry.functions.DOMAIN_SEPARATOR().call())
        assert typed_data.signable(suite.registry_domain, "Link", message).header == onchain

    def test_token_domain_separator_matches_the_permit_domain(self, suite: Suite):
        domain = typed_data.Domain(TOKEN_NAME, suite.chain.chain_id, suite.token.address)
        assert domain_separator(domain) == bytes(suite.token.functions.DOMAIN_SEPARATOR().call())

    def test_a_permit_signed_in_python_is_accepted_by_the_token(self, suite: Suite):
        owner, spender = suite.chain.accounts.marketer, suite.chain.accounts.attester.address
        deadline = suite.chain.latest_timestamp() + 3600
        v, r, s = typed_data.split_signature(suite.permit_signature(owner, spender, 12345, deadline))
        relayer = suite.chain.accounts.deployer
        call = suite.token.functions.permit(owner.address, spender, 12345, deadline, v, r, s)
        transact(suite.chain, relayer, call)
        assert suite.token.functions.allowance(owner.address, spender).call() == 12345

    def test_domains_of_other_chains_and_contracts_differ(self):
        other_chain = typed_data.Domain(SAMPLE_DOMAIN.name, 2, SAMPLE_DOMAIN.verifying_contract)
        other_contract = typed_data.Domain(SAMPLE_DOMAIN.name, 1, BRAND)
        separators = {domain_separator(d) for d in (SAMPLE_DOMAIN, other_chain, other_contract)}
        assert len(separators) == 3


class TestSplitSignature:
    def test_split_signature_gives_v_r_s_as_eth_account_signs_them(self):
        message = typed_data.grant_message(SIGNER.address, BRAND, 1, 2_000_000_000, 0, 1_900_000_000)
        signed = SIGNER.sign_message(typed_data.signable(SAMPLE_DOMAIN, "Grant", message))
        v, r, s = typed_data.split_signature(bytes(signed.signature))
        assert (v, int.from_bytes(r, "big"), int.from_bytes(s, "big")) == (signed.v, signed.r, signed.s)
        assert v in (27, 28) and len(r) == len(s) == 32

    @pytest.mark.parametrize("length", [0, 64, 66])
    def test_split_signature_refuses_a_signature_that_is_not_65_bytes(self, length):
        with pytest.raises(ValueError, match=f"got {length} bytes"):
            typed_data.split_signature(b"\x01" * length)


class TestSign:
    @pytest.mark.parametrize(
        ("primary", "message"),
        [
            ("Grant", typed_data.grant_message(SIGNER.address, BRAND, 0x3F, 2_000_000_000, 0, 1_900_000_000)),
            ("Revoke", typed_data.revoke_message(SIGNER.address, BRAND, 1, 3, 1_900_000_000)),
            ("Settlement", typed_data.settlement_message(SIGNER.address, 1, b"\x00" * 65, 0, 1_900_000_000)),
            ("Claim", typed_data.claim_message(SIGNER.address, [1, 2], BRAND, 0, 1_900_000_000)),
            ("Permit", typed_data.permit_message(SIGNER.address, BRAND, 10**18, 0, 1_900_000_000)),
            ("Link", typed_data.link_message(SIGNER.address, 12, BRAND, 2**255, 1_900_000_000)),
        ],
    )
    def test_a_signature_recovers_to_the_signer(self, primary, message):
        signature = typed_data.sign(SIGNER, SAMPLE_DOMAIN, primary, message)
        assert len(signature) == 65
        assert recover(SAMPLE_DOMAIN, primary, message, signature) == SIGNER.address

    def test_a_signature_recovers_to_someone_else_under_another_domain_or_message(self):
        message = typed_data.revoke_message(SIGNER.address, BRAND, 1, 0, 1_900_000_000)
        signature = typed_data.sign(SIGNER, SAMPLE_DOMAIN, "Revoke", message)
        other_chain = typed_data.Domain(SAMPLE_DOMAIN.name, 2, SAMPLE_DOMAIN.verifying_contract)
        assert recover(other_chain, "Revoke", message, signature) != SIGNER.address
        assert recover(SAMPLE_DOMAIN, "Revoke", {**message, "nonce": 1}, signature) != SIGNER.address


def recover(domain: typed_data.Domain, primary: str, message: dict[str, Any], signature: bytes) -> str:
    return str(Account.recover_message(typed_data.signable(domain, primary, message), signature=signature))
