"""Wallet links: a customer's wallet, proven by the wallet's EIP-712 signature over a ``Link`` message.

The wallet signs ``Link(wallet, customerId, brand, nonce, deadline)`` in the ConsentRegistry's domain (see
``ledger.typed_data``), so a signature links one wallet to one customer of one brand, on one chain and deployment,
before its deadline, once. ``link_wallet`` checks it in ``permit``'s order: deadline, signer, then the nonce, which
it spends. Spent nonces stay in ``wallet_link_nonces`` after unlink and erasure, so an old signature never links
again. The signature is checked before anything about existing links is said: only the wallet's holder learns
that it is linked to someone else.

Only EOA signatures are accepted: 65 bytes (r, s, v) in the one canonical form OpenZeppelin's ECDSA accepts (v 27
or 28, s in the lower half of the curve order), so a link has exactly one valid signature and a view on the
registry could verify the stored one. Contract wallets (ERC-1271) are out: their check is a call to the wallet's
contract on the chain, and the CRM makes no chain calls.

Linking attaches the wallet's already indexed touchpoints, rejections and claims in the brand's campaigns to the
customer, and unlinking detaches them, so the rows say what the indexer (which attaches at index time through
``wallet_links``) would have written. Like the indexer, this matches rows by brand and wallet, whatever the chain.
Every function flushes within the caller's transaction; the caller commits.

Linking and the indexer exclude each other (``lock_wallet_links``): otherwise, on PostgreSQL, a link committed
while the indexer writes a page would miss that page's rows (the indexer read the links before the link
existed, and the link's UPDATE cannot see the page's uncommitted rows). On SQLite a writer holds the whole
database, so open the session with ``ledger.db.SQLITE_IMMEDIATE`` to take the write lock before reading.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from eth_account import Account
from eth_keys.exceptions import BadSignature
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError
from sqlalchemy import ColumnElement, exists, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.crm.models import Campaign, Claim, Rejection, Touchpoint, WalletLink, WalletLinkNonce
from ledger.crm.repository import get_customer
from ledger.db import add_or_get
from ledger.errors import InvalidLinkSignature, LinkExpired, LinkNonceUsed, WalletLinkedElsewhere
from ledger.typed_data import Domain, link_message, signable
from ledger.types import check_uint256, normalize_address

SIGNATURE_BYTES = 65  # r, s, v: what an EOA signs; ERC-1271 signatures are longer and not accepted
# s above half the secp256k1 order is the malleable twin of a valid signature; OpenZeppelin's ECDSA refuses it
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
# rows whose consumer wallet the link attaches to the customer; each has (chain_id, escrow, campaign_id)
_CHAIN_ROWS: tuple[type[Touchpoint] | type[Rejection] | type[Claim], ...] = (Touchpoint, Rejection, Claim)


# PostgreSQL advisory lock taken shared by each indexer page and exclusively by linking and unlinking, keyed
# (this id, the schema) so that CRMs in different schemas of one database never wait for each other
WALLET_LINKS_LOCK_ID = 0x4164_4C6B  # "AdLk"


def lock_wallet_links(session: Session, *, exclusive: bool) -> None:
    """Holds the wallet-links lock until the transaction ends (PostgreSQL; SQLite's write lock already does)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    session.execute(text(f"SELECT {function}(:lock, hashtext(current_schema()))"), {"lock": WALLET_LINKS_LOCK_ID})


def link_wallet(
    session: Session,
    *,
    customer_id: int,
    brand: str,
    wallet: str,
    nonce: int,
    deadline: int,
    signature: bytes | str,
    domain: Domain,
    now: int | None = None,
) -> WalletLink:
    """Links ``wallet`` to the customer for ``brand`` on the wallet's signature of the ``Link`` message in
    ``domain`` (the registry's, ``Suite.registry_domain``), and returns the link with its evidence.

    ``signature`` is bytes or 0x-hex; ``now`` is unix seconds (default: the clock). Raises LinkExpired
    (``deadline < now``) or InvalidLinkSignature, and only then CustomerNotFound, LinkNonceUsed or
    WalletLinkedElsewhere; ValueError for an address or uint256 that is not one. Linking a wallet to the customer
    it is already linked to for the brand returns that link (a fresh signature spends its nonce; the same request
    again changes nothing).
    """
    brand, wallet = normalize_address(brand), normalize_address(wallet)
    check_uint256(nonce)
    check_uint256(deadline)
    moment = int(time.time()) if now is None else now
    if deadline < moment:
        raise LinkExpired(deadline, moment)
    proof = _signature_bytes(wallet, signature)
    message = link_message(to_checksum_address(wallet), customer_id, to_checksum_address(brand), nonce, deadline)
    _verify(domain, message, proof, wallet)
    # only a proven request learns whether the customer exists
    lock_wallet_links(session, exclusive=True)
    customer = get_customer(session, customer_id)

    evidence = "0x" + proof.hex()
    found = _link_of(session, brand, wallet)
    this_request = (customer_id, nonce, evidence)
    if found is not None and (found.customer_id, found.nonce, found.signature) == this_request:
        return found  # a retry of the request that made this link, whose nonce is this one
    with session.begin_nested():  # a refusal below leaves nothing behind, not even the spent nonce
        _spend(session, wallet, nonce)
        if found is None:
            new = WalletLink(
                customer_id=customer_id,
                brand=brand,
                wallet=wallet,
                chain_id=domain.chain_id,
                nonce=nonce,
                deadline=deadline,
                signature=evidence,
                linked_at=datetime.fromtimestamp(moment, UTC),
            )
            link, _ = add_or_get(session, new, lambda: _link_of(session, brand, wallet))
        else:
            link = found
        if link.customer_id != customer_id:
            raise WalletLinkedElsewhere(to_checksum_address(wallet), to_checksum_address(brand))
        _attach(session, customer_id, brand, wallet)
    session.expire(customer, ["wallet_links"])
    return link


def unlink_wallet(session: Session, *, customer_id: int, brand: str, wallet: str) -> bool:
    """Removes the customer's link of ``wallet`` for ``brand`` and detaches the rows it attached; False when the
    customer had no such link. Its nonce stays spent. Raises CustomerNotFound."""
    lock_wallet_links(session, exclusive=True)
    customer = get_customer(session, customer_id)
    brand, wallet = normalize_address(brand), normalize_address(wallet)
    link = _link_of(session, brand, wallet)
    if link is None or link.customer_id != customer_id:
        return False
    for model in _CHAIN_ROWS:
        session.execute(
            update(model)
            .where(model.consumer == wallet, model.customer_id == customer_id, _in_brand_campaign(model, brand))
            .values(customer_id=None)
        )
    session.delete(link)
    session.flush()
    session.expire(customer, ["wallet_links"])
    return True


def links_of(session: Session, customer_id: int) -> list[WalletLink]:
    """The customer's wallet links, oldest first. Raises CustomerNotFound."""
    get_customer(session, customer_id)
    return list(
        session.scalars(select(WalletLink).where(WalletLink.customer_id == customer_id).order_by(WalletLink.id))
    )


def _signature_bytes(wallet: str, signature: bytes | str) -> bytes:
    """The signature as bytes, or InvalidLinkSignature when it cannot be a canonical EOA signature."""
    if isinstance(signature, str):
        if not _HEX.fullmatch(signature):
            raise InvalidLinkSignature(to_checksum_address(wallet), None, "the link signature is not 0x-hex bytes")
        signature = bytes.fromhex(signature[2:])
    proof = bytes(signature)
    if len(proof) != SIGNATURE_BYTES:
        problem = f"has {len(proof)} bytes, not {SIGNATURE_BYTES} (r, s, v)"
    elif proof[64] not in (27, 28):
        problem = f"has v = {proof[64]}, not 27 or 28"
    elif int.from_bytes(proof[32:64], "big") > SECP256K1_HALF_N:
        problem = "has s in the upper half of the curve order (a malleable signature)"
    else:
        return proof
    raise InvalidLinkSignature(to_checksum_address(wallet), None, f"the link signature {problem}")


def _verify(domain: Domain, message: dict[str, Any], proof: bytes, wallet: str) -> None:
    """Raises InvalidLinkSignature unless ``proof`` is the wallet's signature of ``message`` in ``domain``."""
    try:
        signer = str(Account.recover_message(signable(domain, "Link", message), signature=proof))
    except (BadSignature, ValidationError, ValueError):  # r or s zero or beyond the curve order
        raise InvalidLinkSignature(
            to_checksum_address(wallet), None, "the link signature does not recover to any address"
        ) from None
    if signer.lower() != wallet:
        raise InvalidLinkSignature(to_checksum_address(wallet), signer)


def _link_of(session: Session, brand: str, wallet: str) -> WalletLink | None:
    return session.scalar(select(WalletLink).where(WalletLink.brand == brand, WalletLink.wallet == wallet))


def _spend(session: Session, wallet: str, nonce: int) -> None:
    """Records the nonce as used; the primary key refuses it if it already is, even against a concurrent link."""
    try:
        with session.begin_nested():
            session.add(WalletLinkNonce(wallet=wallet, nonce=nonce))
    except IntegrityError:
        raise LinkNonceUsed(to_checksum_address(wallet), nonce) from None


def _attach(session: Session, customer_id: int, brand: str, wallet: str) -> None:
    for model in _CHAIN_ROWS:
        session.execute(
            update(model)
            .where(
                model.consumer == wallet,
                model.customer_id.is_distinct_from(customer_id),
                _in_brand_campaign(model, brand),
            )
            .values(customer_id=customer_id)
        )


def _in_brand_campaign(model: type[Touchpoint] | type[Rejection] | type[Claim], brand: str) -> ColumnElement[bool]:
    """The row's campaign (same chain, escrow and id) is one of ``brand``'s."""
    return exists().where(
        Campaign.chain_id == model.chain_id,
        Campaign.escrow == model.escrow,
        Campaign.campaign_id == model.campaign_id,
        Campaign.brand == brand,
    )
