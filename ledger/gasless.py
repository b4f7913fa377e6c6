"""Gasless consumer actions: a consumer's EIP-712 signature, checked off chain, simulated, then relayed.

The consumer signs ``Grant``, ``Revoke`` (ConsentRegistry's domain) or ``Claim`` (CampaignEscrow's domain) with
the contract's current nonce for their address; the service's relayer account sends ``grantBySig``,
``revokeBySig`` or ``claimBySig`` and pays the gas. A transfer of reward tokens to another wallet is an EIP-2612
``Permit`` for exactly the amount, with the relayer as spender: the relayer sends ``permit`` then
``transferFrom(owner, to, value)``, which uses the whole allowance up. Each relay runs in ``permit``'s order,
off chain first, so a bad request never costs gas: the deadline, then the signer (recovered from the message with
the nonce read now, which must be the expected consumer), then an ``eth_call`` from the relayer that raises the
contract's own revert by name (consent expiry in the past, nothing to claim, ...), and only then the transaction.

The contract checks all of it again: the off-chain checks are for clear answers, not for safety.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from ledger import typed_data
from ledger.chain import Chain
from ledger.contracts import bind, read, transact
from ledger.errors import ERC20InsufficientBalance, InvalidActionSignature, InvalidTransferRecipient, SignatureExpired
from ledger.suite import Deployment

SIGNATURE_BYTES = 65  # r, s, v: an EOA's signature; the contracts verify with OpenZeppelin's ECDSA


@dataclass(frozen=True)
class Relayed:
    """A relayed action's transaction, mined: its hash (0x-hex), block, and the nonce the signature spent."""

    action: str
    tx_hash: str
    block_number: int
    nonce: int
    relayer: str


class GaslessRelay:
    """Relays consumers' signed actions to one deployment, from ``relayer`` (default: the chain's dev relayer)."""

    def __init__(self, chain: Chain, deployment: Deployment, relayer: LocalAccount | None = None) -> None:
        self.chain = chain
        self.relayer = relayer or chain.accounts.relayer
        self.registry: Contract = bind(chain, "ConsentRegistry", deployment.registry)
        self.escrow: Contract = bind(chain, "CampaignEscrow", deployment.escrow)
        self.token: Contract = bind(chain, "RewardToken", deployment.token)
        self.registry_domain = typed_data.Domain(typed_data.REGISTRY_DOMAIN_NAME, chain.chain_id, self.registry.address)
        self.escrow_domain = typed_data.Domain(typed_data.ESCROW_DOMAIN_NAME, chain.chain_id, self.escrow.address)
        self._token_domain: typed_data.Domain | None = None

    @property
    def token_domain(self) -> typed_data.Domain:
        """The reward token's EIP-2612 domain: its ``name()``, version "1", read once."""
        if self._token_domain is None:
            name = str(read(self.token.functions.name()))
            self._token_domain = typed_data.Domain(name, self.chain.chain_id, self.token.address)
        return self._token_domain

    # -- what a wallet needs to sign ------------------------------------------------------------------------

    def registry_nonce(self, consumer: str) -> int:
        """The nonce the consumer's next Grant or Revoke must carry."""
        return int(read(self.registry.functions.nonces(to_checksum_address(consumer))))

    def escrow_nonce(self, consumer: str) -> int:
        """The nonce the consumer's next Claim must carry."""
        return int(read(self.escrow.functions.nonces(to_checksum_address(consumer))))

    def permit_nonce(self, owner: str) -> int:
        """The nonce the owner's next token Permit (a gasless transfer) must carry."""
        return int(read(self.token.functions.nonces(to_checksum_address(owner))))

    def accrued(self, campaign_id: int, consumer: str) -> int:
        """The escrow's unclaimed amount for the consumer in the campaign (its ``accountOf`` view)."""
        return int(read(self.escrow.functions.accountOf(campaign_id, to_checksum_address(consumer)))[0])

    def grant_message(self, consumer: str, brand: str, purposes: int, expires_at: int, deadline: int) -> dict[str, Any]:
        nonce = self.registry_nonce(consumer)
        return typed_data.grant_message(
            to_checksum_address(consumer), to_checksum_address(brand), purposes, expires_at, nonce, deadline
        )

    def revoke_message(self, consumer: str, brand: str, purposes: int, deadline: int) -> dict[str, Any]:
        nonce = self.registry_nonce(consumer)
        return typed_data.revoke_message(
            to_checksum_address(consumer), to_checksum_address(brand), purposes, nonce, deadline
        )

    def claim_message(self, consumer: str, campaign_ids: list[int], to: str, deadline: int) -> dict[str, Any]:
        nonce = self.escrow_nonce(consumer)
        return typed_data.claim_message(
            to_checksum_address(consumer), list(campaign_ids), to_checksum_address(to), nonce, deadline
        )

    # -- relays ---------------------------------------------------------------------------------------------

    def grant(
        self,
        consumer: str,
        brand: str,
        purposes: int,
        expires_at: int,
        deadline: int,
        signature: bytes,
        *,
        now: int | None = None,
    ) -> Relayed:
        """Relays ``grantBySig``. Raises SignatureExpired, InvalidActionSignature or the contract's revert."""
        _check_deadline("grant", deadline, self._earliest_block_time() if now is None else now)
        message = self.grant_message(consumer, brand, purposes, expires_at, deadline)
        _verify(self.registry_domain, "Grant", message, signature, consumer)
        call = self.registry.functions.grantBySig(
            message["consumer"], message["brand"], purposes, expires_at, deadline, signature
        )
        return self._relay("grant", call, message["nonce"])

    def revoke(
        self, consumer: str, brand: str, purposes: int, deadline: int, signature: bytes, *, now: int | None = None
    ) -> Relayed:
        """Relays ``revokeBySig``. Raises SignatureExpired, InvalidActionSignature or the contract's revert."""
        _check_deadline("revoke", deadline, self._earliest_block_time() if now is None else now)
        message = self.revoke_message(consumer, brand, purposes, deadline)
        _verify(self.registry_domain, "Revoke", message, signature, consumer)
        call = self.registry.functions.revokeBySig(message["consumer"], message["brand"], purposes, deadline, signature)
        return self._relay("revoke", call, message["nonce"])

    def claim(
        self,
        consumer: str,
        campaign_ids: list[int],
        to: str,
        deadline: int,
        signature: bytes,
        *,
        now: int | None = None,
    ) -> Relayed:
        """Relays ``claimBySig``, paying the consumer's accruals in ``campaign_ids`` to ``to``. Raises
        SignatureExpired, InvalidActionSignature or the contract's revert (EscrowNothingToClaim, ...)."""
        _check_deadline("claim", deadline, self._earliest_block_time() if now is None else now)
        message = self.claim_message(consumer, campaign_ids, to, deadline)
        _verify(self.escrow_domain, "Claim", message, signature, consumer)
        call = self.escrow.functions.claimBySig(
            message["consumer"], message["campaignIds"], message["to"], deadline, signature
        )
        return self._relay("claim", call, message["nonce"])

    def transfer(
        self, owner: str, to: str, value: int, deadline: int, signature: bytes, *, now: int | None = None
    ) -> Relayed:
        """Moves ``value`` reward tokens from ``owner`` to ``to`` on the owner's Permit for the relayer (spender):
        ``permit``, then ``transferFrom``. Raises SignatureExpired, InvalidActionSignature, InvalidTransferRecipient, or
        the token's revert (ERC20InsufficientBalance, ...) from the simulation, before any gas is spent. The answer
        is the transferFrom's transaction. Both calls are simulated before the first is sent; should the owner's
        balance move between the two, the permit stays mined and its allowance unused (the next Permit, with the
        next nonce, overrides it)."""
        _check_deadline("transfer", deadline, self._earliest_block_time() if now is None else now)
        owner, to = to_checksum_address(owner), to_checksum_address(to)
        if int(to, 16) == 0 or to == owner:
            raise InvalidTransferRecipient(to)
        nonce = self.permit_nonce(owner)
        message = typed_data.permit_message(owner, self.relayer.address, value, nonce, deadline)
        _verify(self.token_domain, "Permit", message, signature, owner)
        v, r, s = typed_data.split_signature(signature)
        permit = self.token.functions.permit(owner, self.relayer.address, value, deadline, v, r, s)
        read(permit, **{"from": self.relayer.address})
        balance = int(read(self.token.functions.balanceOf(owner)))
        if balance < value:
            raise ERC20InsufficientBalance(owner, balance, value)
        transact(self.chain, self.relayer, permit)
        return self._relay("transfer", self.token.functions.transferFrom(owner, to, value), nonce)

    def _earliest_block_time(self) -> int:
        """The earliest time the relayed transaction's block can have: a second after the latest block, or now.
        A deadline before it passes a simulation at the latest block yet reverts when mined, after the gas."""
        return max(int(time.time()), self.chain.latest_timestamp() + 1)

    def _relay(self, action: str, call: ContractFunction, nonce: int) -> Relayed:
        read(call, **{"from": self.relayer.address})  # simulate: a revert is raised by name, and costs no gas
        receipt = transact(self.chain, self.relayer, call)
        return Relayed(
            action=action,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            nonce=nonce,
            relayer=self.relayer.address,
        )


def _check_deadline(action: str, deadline: int, now: int) -> None:
    if deadline < now:
        raise SignatureExpired(action, deadline, now)


def _verify(domain: typed_data.Domain, primary: str, message: dict[str, Any], signature: bytes, wallet: str) -> None:
    """Raises InvalidActionSignature unless ``signature`` is the wallet's over ``message`` in ``domain``."""
    action = primary.lower()
    expected = to_checksum_address(wallet)
    if len(signature) != SIGNATURE_BYTES:
        reason = f"the {action} signature has {len(signature)} bytes, not {SIGNATURE_BYTES} (r, s, v)"
        raise InvalidActionSignature(action, expected, None, reason)
    try:
        signer = str(Account.recover_message(typed_data.signable(domain, primary, message), signature=signature))
    except (BadSignature, ValidationError, ValueError):  # r or s zero or beyond the curve order, v not 27/28
        raise InvalidActionSignature(
            action, expected, None, f"the {action} signature does not recover to any address"
        ) from None
    if signer != expected:
        raise InvalidActionSignature(action, expected, signer)
