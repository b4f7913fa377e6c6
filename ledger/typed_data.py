"""Every EIP-712 struct adledger signs, defined once: contract tests, the wallet and the API all use these.

The type strings here must equal the contracts' typehashes (a test compares them with the deployed constants).
Each signature is bound to a chain id and a verifying contract by its domain, and to a nonce and a deadline by
its message, so it cannot be replayed on another chain, another deployment, or twice.

``Link`` is the one struct no contract verifies: a wallet's proof that it belongs to a CRM customer of a brand,
checked off chain by ``ledger.crm.links``. It is signed in the ConsentRegistry's domain (``Suite.registry_domain``:
REGISTRY_DOMAIN_NAME, version "1", the chain id, the deployed registry's address), so a link is bound to one
deployment like every other signature here, and a view added to the registry later could verify it on chain with
the same domain separator. Its nonces are unordered (any unused uint256, e.g. ``secrets.randbits(256)``), since
the database, not a contract, remembers which were used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

REGISTRY_DOMAIN_NAME = "adledger ConsentRegistry"
ESCROW_DOMAIN_NAME = "adledger CampaignEscrow"
DOMAIN_VERSION = "1"

TypeFields = list[dict[str, str]]

GRANT: TypeFields = [
    {"name": "consumer", "type": "address"},
    {"name": "brand", "type": "address"},
    {"name": "purposes", "type": "uint256"},
    {"name": "expiresAt", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REVOKE: TypeFields = [
    {"name": "consumer", "type": "address"},
    {"name": "brand", "type": "address"},
    {"name": "purposes", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
SETTLEMENT: TypeFields = [
    {"name": "attester", "type": "address"},
    {"name": "campaignId", "type": "uint256"},
    {"name": "batch", "type": "bytes"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
CLAIM: TypeFields = [
    {"name": "consumer", "type": "address"},
    {"name": "campaignIds", "type": "uint256[]"},
    {"name": "to", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
PERMIT: TypeFields = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
LINK: TypeFields = [
    {"name": "wallet", "type": "address"},
    {"name": "customerId", "type": "uint256"},
    {"name": "brand", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]

STRUCTS: dict[str, TypeFields] = {
    "Grant": GRANT,
    "Revoke": REVOKE,
    "Settlement": SETTLEMENT,
    "Claim": CLAIM,
    "Permit": PERMIT,
    "Link": LINK,
}


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: who verifies the signature, and on which chain."""

    name: str
    chain_id: int
    verifying_contract: str
    version: str = DOMAIN_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def type_string(primary: str) -> str:
    """The struct's canonical encoding, ``Name(type field,...)``, whose keccak is the contract's typehash."""
    fields = ",".join(f"{f['type']} {f['name']}" for f in STRUCTS[primary])
    return f"{primary}({fields})"


def typehash(primary: str) -> bytes:
    return keccak(text=type_string(primary))


def signable(domain: Domain, primary: str, message: dict[str, Any]) -> SignableMessage:
    """The EIP-712 message, ready to sign or to recover from."""
    return encode_typed_data(
        domain_data=domain.as_dict(), message_types={primary: STRUCTS[primary]}, message_data=message
    )


def sign(account: LocalAccount, domain: Domain, primary: str, message: dict[str, Any]) -> bytes:
    """A 65-byte (r, s, v) signature of ``message`` as ``primary`` in ``domain``."""
    return bytes(account.sign_message(signable(domain, primary, message)).signature)


def grant_message(
    consumer: str, brand: str, purposes: int, expires_at: int, nonce: int, deadline: int
) -> dict[str, Any]:
    return {
        "consumer": consumer,
        "brand": brand,
        "purposes": purposes,
        "expiresAt": expires_at,
        "nonce": nonce,
        "deadline": deadline,
    }


def revoke_message(consumer: str, brand: str, purposes: int, nonce: int, deadline: int) -> dict[str, Any]:
    return {"consumer": consumer, "brand": brand, "purposes": purposes, "nonce": nonce, "deadline": deadline}


def settlement_message(attester: str, campaign_id: int, batch: bytes, nonce: int, deadline: int) -> dict[str, Any]:
    return {"attester": attester, "campaignId": campaign_id, "batch": batch, "nonce": nonce, "deadline": deadline}


def claim_message(consumer: str, campaign_ids: list[int], to: str, nonce: int, deadline: int) -> dict[str, Any]:
    return {"consumer": consumer, "campaignIds": campaign_ids, "to": to, "nonce": nonce, "deadline": deadline}


def permit_message(owner: str, spender: str, value: int, nonce: int, deadline: int) -> dict[str, Any]:
    return {"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline}


def link_message(wallet: str, customer_id: int, brand: str, nonce: int, deadline: int) -> dict[str, Any]:
    return {"wallet": wallet, "customerId": customer_id, "brand": brand, "nonce": nonce, "deadline": deadline}


def split_signature(signature: bytes) -> tuple[int, bytes, bytes]:
    """(v, r, s) of a 65-byte signature, as ERC-2612 ``permit`` takes them."""
    if len(signature) != 65:
        raise ValueError(f"expected a 65-byte signature, got {len(signature)} bytes")
    return signature[64], signature[:32], signature[32:64]
