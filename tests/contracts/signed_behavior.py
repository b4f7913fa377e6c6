"""The checks every signed (EIP-712, relayed) action must pass, written once (OpenZeppelin's ``.behavior.js``).

A test module describes its action as a ``SignedAction`` (how to sign it, how to relay it, which errors its
contract raises) and mixes ``SignedActionBehavior`` into a test class that provides a ``signed_action`` fixture:

    class TestClaimBySigSignature(SignedActionBehavior):
        @pytest.fixture
        def signed_action(self, suite, consumer, relayer) -> SignedAction: ...

The class then runs: one use by the owner succeeds, costs the owner no gas and moves their nonce by one; the
deadline is inclusive and then expires; a signature cannot be replayed; and a signature bound to anything else
(another signer, chain id, verifying contract, domain name or version, or a malleated ``s``) is refused with the
contract's invalid-signer error naming the owner, leaving the nonce where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from eth_account.signers.local import LocalAccount
from web3.types import TxReceipt

from ledger import typed_data
from ledger.chain import DevAccounts
from ledger.errors import ContractRevert
from ledger.suite import Suite
from tests.contracts.helpers import pinned_next_timestamp, reverts

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class SignedAction:
    """One signed action, as the shared checks drive it.

    ``sign(signer, domain, deadline)`` signs the action's message with the owner's current nonce (so a wrong
    ``signer`` or ``domain`` makes a signature that must be refused); ``relay(signature, deadline)`` sends it from
    an account other than the owner; ``nonce()`` reads the owner's nonce on the verifying contract.
    """

    owner: LocalAccount
    domain: typed_data.Domain
    sign: Callable[[LocalAccount, typed_data.Domain, int], bytes]
    relay: Callable[[bytes, int], TxReceipt]
    nonce: Callable[[], int]
    expired_error: type[ContractRevert]  # takes (deadline)
    invalid_signer_error: type[ContractRevert]  # names the owner in `invalid_signer_field`
    invalid_signer_field: str


def malleable(signature: bytes) -> bytes:
    """The same signature with s mirrored to the upper half order (ECDSA accepts both; OpenZeppelin refuses it)."""
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # v: 27 <-> 28


def _other_signer(action: SignedAction, accounts: DevAccounts) -> LocalAccount:
    return next(a for a in reversed(accounts.all()) if a.address != action.owner.address)


def _other_contract(action: SignedAction, suite: Suite) -> str:
    candidates = (suite.escrow.address, suite.registry.address, suite.token.address)
    return next(a for a in candidates if a != action.domain.verifying_contract)


@dataclass(frozen=True)
class Binding:
    """One way a signature must not work: made by another signer, for another domain, or transformed."""

    signer: Callable[[SignedAction, DevAccounts], LocalAccount] = lambda action, accounts: action.owner
    domain: Callable[[SignedAction, Suite], typed_data.Domain] = lambda action, suite: action.domain
    tamper: Callable[[bytes], bytes] = lambda signature: signature


BINDINGS: dict[str, Binding] = {
    "wrong-signer": Binding(signer=_other_signer),
    "another-chain-id": Binding(domain=lambda a, s: replace(a.domain, chain_id=a.domain.chain_id + 1)),
    "another-contract": Binding(domain=lambda a, s: replace(a.domain, verifying_contract=_other_contract(a, s))),
    "another-domain-name": Binding(domain=lambda a, s: replace(a.domain, name=a.domain.name + " v2")),
    "another-domain-version": Binding(domain=lambda a, s: replace(a.domain, version="2")),
    "malleated-signature": Binding(tamper=malleable),
}


class SignedActionBehavior:
    """Mix into a ``Test*`` class that provides a ``signed_action`` fixture returning a ``SignedAction``."""

    def test_signed_action_relayed_by_another_account_succeeds_and_uses_one_nonce(self, signed_action, suite):
        action: SignedAction = signed_action
        deadline = suite.chain.latest_timestamp() + 3600
        before = action.nonce()
        receipt = action.relay(action.sign(action.owner, action.domain, deadline), deadline)
        assert receipt["status"] == 1
        assert action.nonce() == before + 1

    def test_signed_action_costs_its_signer_no_gas(self, signed_action, suite):
        action: SignedAction = signed_action
        deadline = suite.chain.latest_timestamp() + 3600
        signature = action.sign(action.owner, action.domain, deadline)
        eth_before = suite.chain.balance(action.owner.address)
        receipt = action.relay(signature, deadline)
        assert suite.chain.balance(action.owner.address) == eth_before
        assert receipt["from"] != action.owner.address

    def test_signed_action_accepts_a_deadline_equal_to_the_block_time(self, signed_action, suite):
        action: SignedAction = signed_action
        deadline = pinned_next_timestamp(suite.chain)
        before = action.nonce()
        action.relay(action.sign(action.owner, action.domain, deadline), deadline)
        assert action.nonce() == before + 1

    def test_signed_action_reverts_after_its_deadline(self, signed_action, suite):
        action: SignedAction = signed_action
        deadline = pinned_next_timestamp(suite.chain) - 1
        before = action.nonce()
        signature = action.sign(action.owner, action.domain, deadline)
        with reverts(action.expired_error, deadline=deadline):
            action.relay(signature, deadline)
        assert action.nonce() == before

    def test_signed_action_cannot_be_replayed(self, signed_action, suite):
        action: SignedAction = signed_action
        deadline = suite.chain.latest_timestamp() + 3600
        signature = action.sign(action.owner, action.domain, deadline)
        action.relay(signature, deadline)
        # the nonce moved, so the same signature now recovers to someone else
        with reverts(action.invalid_signer_error, **{action.invalid_signer_field: action.owner.address}):
            action.relay(signature, deadline)

    @pytest.mark.parametrize("binding", BINDINGS.values(), ids=BINDINGS.keys())
    def test_signed_action_reverts_when_the_signature_is_bound_to_something_else(
        self, signed_action, binding, suite, accounts
    ):
        action: SignedAction = signed_action
        deadline = suite.chain.latest_timestamp() + 3600
        before = action.nonce()
        signature = binding.tamper(
            action.sign(binding.signer(action, accounts), binding.domain(action, suite), deadline)
        )
        with reverts(action.invalid_signer_error, **{action.invalid_signer_field: action.owner.address}):
            action.relay(signature, deadline)
        assert action.nonce() == before
