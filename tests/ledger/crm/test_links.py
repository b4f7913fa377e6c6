"""Wallet links: proven by the wallet's EIP-712 signature, one customer per wallet and brand, nonces spent for good."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import typed_data
from ledger.crm import links
from ledger.crm.erasure import erase_customer
from ledger.crm.links import SECP256K1_HALF_N, link_wallet, links_of, unlink_wallet
from ledger.crm.models import Claim, Customer, Rejection, Touchpoint, WalletLink, WalletLinkNonce
from ledger.crm.repository import upsert_customer
from ledger.errors import (
    CustomerNotFound,
    InvalidLinkSignature,
    LinkExpired,
    LinkNonceUsed,
    WalletLinkedElsewhere,
)
from ledger.typed_data import Domain
from tests.ledger.crm import rows
from tests.ledger.crm.rows import BRAND, CHAIN_ID, REGISTRY

DOMAIN = Domain(typed_data.REGISTRY_DOMAIN_NAME, CHAIN_ID, to_checksum_address(REGISTRY))
WALLET: LocalAccount = Account.from_key(keccak(text="link wallet"))
SECOND_WALLET: LocalAccount = Account.from_key(keccak(text="second link wallet"))
STRANGER: LocalAccount = Account.from_key(keccak(text="someone else"))
OTHER_BRAND = "0x" + "b1" * 20
NOW = 1_800_000_000
DEADLINE = NOW + 3600
SECP256K1_N = 2 * SECP256K1_HALF_N + 1


def sign_link(
    account: LocalAccount,
    customer_id: int,
    *,
    brand: str = BRAND,
    nonce: int = 1,
    deadline: int = DEADLINE,
    domain: Domain = DOMAIN,
    wallet: str | None = None,
) -> bytes:
    """What the wallet CLI will do: sign the Link message with typed_data.sign."""
    message = typed_data.link_message(
        wallet or account.address, customer_id, to_checksum_address(brand), nonce, deadline
    )
    return typed_data.sign(account, domain, "Link", message)


def link(
    session: Session,
    customer_id: int,
    account: LocalAccount = WALLET,
    *,
    brand: str = BRAND,
    nonce: int = 1,
    deadline: int = DEADLINE,
    signature: bytes | str | None = None,
    now: int = NOW,
) -> WalletLink:
    """link_wallet with the wallet's own, valid signature unless ``signature`` is given."""
    if signature is None:
        signature = sign_link(account, customer_id, brand=brand, nonce=nonce, deadline=deadline)
    return link_wallet(
        session,
        customer_id=customer_id,
        brand=brand,
        wallet=account.address,
        nonce=nonce,
        deadline=deadline,
        signature=signature,
        domain=DOMAIN,
        now=now,
    )


def spent_nonces(session: Session) -> list[tuple[str, int]]:
    return [(w, n) for w, n in session.execute(select(WalletLinkNonce.wallet, WalletLinkNonce.nonce))]


def link_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(WalletLink)) or 0


@pytest.fixture
def ann(session: Session) -> Customer:
    customer, _ = upsert_customer(session, email="ann@example.com", display_name="Ann")
    session.commit()
    return customer


@pytest.fixture
def bob(session: Session) -> Customer:
    customer, _ = upsert_customer(session, email="bob@example.com", display_name="Bob")
    session.commit()
    return customer


class TestLinkWallet:
    def test_a_valid_signature_stores_the_link_with_its_evidence(self, session: Session, ann: Customer):
        signature = sign_link(WALLET, ann.id, nonce=42)
        stored = link(session, ann.id, nonce=42, signature=signature)
        session.commit()
        session.expire_all()

        found = session.scalars(select(WalletLink)).one()
        assert found.id == stored.id
        assert (found.customer_id, found.brand, found.wallet) == (ann.id, BRAND, WALLET.address.lower())
        assert (found.chain_id, found.nonce, found.deadline) == (CHAIN_ID, 42, DEADLINE)
        assert found.signature == "0x" + signature.hex()
        assert found.linked_at == datetime.fromtimestamp(NOW, UTC)
        assert spent_nonces(session) == [(WALLET.address.lower(), 42)]

    def test_the_stored_evidence_lets_an_auditor_recover_the_wallet(self, session: Session, ann: Customer):
        stored = link(session, ann.id, nonce=7)
        message = typed_data.link_message(
            to_checksum_address(stored.wallet), stored.customer_id, to_checksum_address(stored.brand), 7, DEADLINE
        )
        domain = Domain(typed_data.REGISTRY_DOMAIN_NAME, stored.chain_id, DOMAIN.verifying_contract)
        signature = bytes.fromhex(stored.signature.removeprefix("0x"))
        recovered = Account.recover_message(typed_data.signable(domain, "Link", message), signature=signature)
        assert recovered == WALLET.address

    def test_addresses_in_any_case_are_stored_lowercase(self, session: Session, ann: Customer):
        stored = link_wallet(
            session,
            customer_id=ann.id,
            brand=to_checksum_address(BRAND),
            wallet=WALLET.address,  # EIP-55 checksummed
            nonce=1,
            deadline=DEADLINE,
            signature=sign_link(WALLET, ann.id),
            domain=DOMAIN,
            now=NOW,
        )
        assert (stored.brand, stored.wallet) == (BRAND, WALLET.address.lower())

    def test_a_0x_hex_signature_is_accepted(self, session: Session, ann: Customer):
        signature = "0x" + sign_link(WALLET, ann.id).hex().upper()
        assert link(session, ann.id, signature=signature).wallet == WALLET.address.lower()

    def test_a_deadline_equal_to_now_is_still_valid(self, session: Session, ann: Customer):
        assert link(session, ann.id, deadline=NOW, now=NOW).deadline == NOW

    def test_an_expired_deadline_is_link_expired(self, session: Session, ann: Customer):
        with pytest.raises(LinkExpired) as raised:
            link(session, ann.id, deadline=NOW - 1, now=NOW)
        assert (raised.value.deadline, raised.value.now, raised.value.code) == (NOW - 1, NOW, "expired_signature")
        assert link_count(session) == 0

    def test_now_defaults_to_the_clock(self, session: Session, ann: Customer):
        before = int(time.time())
        with pytest.raises(LinkExpired) as raised:
            link_wallet(
                session,
                customer_id=ann.id,
                brand=BRAND,
                wallet=WALLET.address,
                nonce=1,
                deadline=before - 1,
                signature=sign_link(WALLET, ann.id, deadline=before - 1),
                domain=DOMAIN,
            )
        assert before <= raised.value.now <= time.time()

    def test_an_unknown_customer_is_customer_not_found(self, session: Session, ann: Customer):
        with pytest.raises(CustomerNotFound):
            link(session, ann.id + 1000)

    def test_a_request_that_proves_nothing_learns_nothing_of_the_customer(self, session: Session, ann: Customer):
        """The signature is checked before the customer is looked up: without one, an unknown id and a known one
        are refused alike."""
        for customer_id in (ann.id, ann.id + 1000):
            with pytest.raises(InvalidLinkSignature):
                link(session, customer_id, signature=sign_link(SECOND_WALLET, customer_id))

    def test_a_customer_may_link_several_wallets(self, session: Session, ann: Customer):
        link(session, ann.id, WALLET)
        link(session, ann.id, SECOND_WALLET)
        session.commit()
        assert [w.wallet for w in links_of(session, ann.id)] == [WALLET.address.lower(), SECOND_WALLET.address.lower()]

    def test_one_wallet_may_be_linked_for_two_brands(self, session: Session, ann: Customer, bob: Customer):
        link(session, ann.id, brand=BRAND, nonce=1)
        link(session, bob.id, brand=OTHER_BRAND, nonce=2)
        session.commit()
        assert [(w.brand, w.customer_id) for w in session.scalars(select(WalletLink).order_by(WalletLink.id))] == [
            (BRAND, ann.id),
            (OTHER_BRAND, bob.id),
        ]

    def test_a_wallet_linked_to_another_customer_of_the_brand_is_refused(
        self, session: Session, ann: Customer, bob: Customer
    ):
        link(session, ann.id, nonce=1)
        session.commit()
        with pytest.raises(WalletLinkedElsewhere) as raised:
            link(session, bob.id, nonce=2)
        assert (raised.value.wallet, raised.value.brand) == (WALLET.address, to_checksum_address(BRAND))
        assert raised.value.code == "wallet_linked_elsewhere"
        assert str(ann.id) not in str(raised.value)  # the other customer is not named
        session.rollback()
        assert [(w.customer_id, w.nonce) for w in session.scalars(select(WalletLink))] == [(ann.id, 1)]

    def test_a_refused_link_spends_no_nonce(self, session: Session, ann: Customer, bob: Customer):
        link(session, ann.id, nonce=1)
        bobs = sign_link(WALLET, bob.id, nonce=2)
        with pytest.raises(WalletLinkedElsewhere):
            link(session, bob.id, nonce=2, signature=bobs)
        session.commit()  # even if the caller commits after the refusal
        assert spent_nonces(session) == [(WALLET.address.lower(), 1)]
        # once Ann's link is gone, Bob's signature is still good
        assert unlink_wallet(session, customer_id=ann.id, brand=BRAND, wallet=WALLET.address)
        assert link(session, bob.id, nonce=2, signature=bobs).customer_id == bob.id

    def test_linking_again_to_the_same_customer_returns_the_link_and_spends_the_nonce(
        self, session: Session, ann: Customer
    ):
        first = link(session, ann.id, nonce=1)
        session.commit()
        again = link(session, ann.id, nonce=2)
        session.commit()
        assert again.id == first.id and (again.nonce, again.signature) == (1, first.signature)
        assert link_count(session) == 1
        assert sorted(n for _, n in spent_nonces(session)) == [1, 2]
        with pytest.raises(LinkNonceUsed):
            link(session, ann.id, nonce=2)

    def test_the_same_request_again_returns_the_link_and_changes_nothing(self, session: Session, ann: Customer):
        signature = sign_link(WALLET, ann.id, nonce=5)
        first = link(session, ann.id, nonce=5, signature=signature)
        session.commit()
        retry = link(session, ann.id, nonce=5, signature=signature)
        assert retry.id == first.id
        assert spent_nonces(session) == [(WALLET.address.lower(), 5)]

    def test_a_nonce_is_spent_once_across_brands(self, session: Session, ann: Customer):
        link(session, ann.id, brand=BRAND, nonce=9)
        session.commit()
        with pytest.raises(LinkNonceUsed) as raised:
            link(session, ann.id, brand=OTHER_BRAND, nonce=9)
        assert (raised.value.wallet, raised.value.nonce, raised.value.code) == (WALLET.address, 9, "nonce_used")

    def test_a_signature_cannot_link_again_after_unlink(self, session: Session, ann: Customer):
        signature = sign_link(WALLET, ann.id, nonce=3)
        link(session, ann.id, nonce=3, signature=signature)
        assert unlink_wallet(session, customer_id=ann.id, brand=BRAND, wallet=WALLET.address)
        session.commit()
        with pytest.raises(LinkNonceUsed):
            link(session, ann.id, nonce=3, signature=signature)
        assert link_count(session) == 0

    def test_a_concurrent_link_of_the_wallet_is_wallet_linked_elsewhere(
        self, session: Session, ann: Customer, bob: Customer, monkeypatch: pytest.MonkeyPatch
    ):
        link(session, ann.id, nonce=1)
        session.commit()
        # as if Ann's link committed after Bob's request looked for one: the unique (brand, wallet) refuses it
        real = links._link_of
        calls: list[int] = []

        def not_yet(*args: Any) -> WalletLink | None:
            calls.append(1)
            return None if len(calls) == 1 else real(*args)

        monkeypatch.setattr(links, "_link_of", not_yet)
        with pytest.raises(WalletLinkedElsewhere):
            link(session, bob.id, nonce=2)
        session.commit()
        assert [w.customer_id for w in session.scalars(select(WalletLink))] == [ann.id]
        assert spent_nonces(session) == [(WALLET.address.lower(), 1)]


# Each forgery: (what it is, signature maker given Ann's and Bob's ids). All must be InvalidLinkSignature.
FORGERIES: list[tuple[str, Callable[[int, int], bytes]]] = [
    ("wrong signer", lambda ann, bob: sign_link(STRANGER, ann, wallet=WALLET.address)),
    ("signed for another customer", lambda ann, bob: sign_link(WALLET, bob)),
    ("signed for another brand", lambda ann, bob: sign_link(WALLET, ann, brand=OTHER_BRAND)),
    ("signed for another nonce", lambda ann, bob: sign_link(WALLET, ann, nonce=2)),
    ("signed for another deadline", lambda ann, bob: sign_link(WALLET, ann, deadline=DEADLINE + 1)),
    (
        "other chain id",
        lambda ann, bob: sign_link(WALLET, ann, domain=Domain(DOMAIN.name, 1, DOMAIN.verifying_contract)),
    ),
    (
        "other verifying contract",
        lambda ann, bob: sign_link(WALLET, ann, domain=Domain(DOMAIN.name, CHAIN_ID, to_checksum_address(rows.ESCROW))),
    ),
    (
        "the escrow's domain",
        lambda ann, bob: sign_link(
            WALLET,
            ann,
            domain=Domain(typed_data.ESCROW_DOMAIN_NAME, CHAIN_ID, to_checksum_address(REGISTRY)),
        ),
    ),
]


def _high_s(signature: bytes) -> bytes:
    """The malleable twin (r, n - s, v flipped): eth_account recovers the same signer from it."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


MALFORMED: list[tuple[str, Callable[[bytes], bytes | str]]] = [
    ("empty", lambda good: b""),
    ("64 bytes", lambda good: good[:64]),
    ("66 bytes", lambda good: good + b"\x00"),
    ("v 0", lambda good: good[:64] + bytes([good[64] - 27])),
    ("v 5", lambda good: good[:64] + b"\x05"),
    ("high s", _high_s),
    ("all zero", lambda good: b"\x00" * 65),
    ("r zero", lambda good: b"\x00" * 32 + good[32:]),
    ("s zero", lambda good: good[:32] + b"\x00" * 32 + good[64:]),
    ("r beyond the curve order", lambda good: b"\xff" * 32 + good[32:]),
    ("all ff", lambda good: b"\xff" * 64 + b"\x1b"),
    ("not hex", lambda good: "0xzz" + good.hex()[2:]),
    ("odd hex", lambda good: "0x" + good.hex()[1:]),
    ("hex without 0x", lambda good: good.hex()),
]


class TestLinkWalletRefusesBadSignatures:
    @pytest.mark.parametrize(("case", "forge"), FORGERIES, ids=[case for case, _ in FORGERIES])
    def test_a_signature_over_anything_else_is_invalid_link_signature(
        self, session: Session, ann: Customer, bob: Customer, case: str, forge: Callable[[int, int], bytes]
    ):
        with pytest.raises(InvalidLinkSignature) as raised:
            link(session, ann.id, signature=forge(ann.id, bob.id))
        assert raised.value.wallet == WALLET.address and raised.value.code == "invalid_signature"
        assert raised.value.signer not in (None, WALLET.address)
        assert (link_count(session), spent_nonces(session)) == (0, [])
        # and the genuine signature still links: the refusal spent nothing
        assert link(session, ann.id).customer_id == ann.id

    def test_a_wrong_signer_is_named(self, session: Session, ann: Customer):
        with pytest.raises(InvalidLinkSignature) as raised:
            link(session, ann.id, signature=sign_link(STRANGER, ann.id, wallet=WALLET.address))
        assert raised.value.signer == STRANGER.address
        assert (
            str(raised.value)
            == f"the link signature was made by {STRANGER.address}, not by the wallet {WALLET.address}"
        )

    @pytest.mark.parametrize(("case", "mangle"), MALFORMED, ids=[case for case, _ in MALFORMED])
    def test_malformed_signature_bytes_are_invalid_link_signature(
        self, session: Session, ann: Customer, case: str, mangle: Callable[[bytes], bytes | str]
    ):
        with pytest.raises(InvalidLinkSignature) as raised:
            link(session, ann.id, signature=mangle(sign_link(WALLET, ann.id)))
        assert raised.value.signer is None and str(raised.value).startswith("the link signature ")
        assert (link_count(session), spent_nonces(session)) == (0, [])


class TestUnlinkWallet:
    def test_removes_the_link_and_keeps_the_nonce_spent(self, session: Session, ann: Customer):
        link(session, ann.id, nonce=4)
        session.commit()
        assert unlink_wallet(session, customer_id=ann.id, brand=BRAND.upper().replace("X", "x"), wallet=WALLET.address)
        session.commit()
        assert links_of(session, ann.id) == []
        assert spent_nonces(session) == [(WALLET.address.lower(), 4)]

    def test_a_link_the_customer_does_not_have_is_false_and_nothing_changes(
        self, session: Session, ann: Customer, bob: Customer
    ):
        link(session, ann.id)
        session.commit()
        assert not unlink_wallet(session, customer_id=bob.id, brand=BRAND, wallet=WALLET.address)
        assert not unlink_wallet(session, customer_id=ann.id, brand=OTHER_BRAND, wallet=WALLET.address)
        assert [w.customer_id for w in session.scalars(select(WalletLink))] == [ann.id]

    def test_an_unknown_customer_is_customer_not_found(self, session: Session):
        with pytest.raises(CustomerNotFound):
            unlink_wallet(session, customer_id=404, brand=BRAND, wallet=WALLET.address)

    def test_the_customers_collection_follows(self, session: Session, ann: Customer):
        assert ann.wallet_links == []
        link(session, ann.id)
        assert [w.wallet for w in ann.wallet_links] == [WALLET.address.lower()]
        unlink_wallet(session, customer_id=ann.id, brand=BRAND, wallet=WALLET.address)
        assert ann.wallet_links == []


class TestLinksOf:
    def test_lists_only_the_customers_links_oldest_first(self, session: Session, ann: Customer, bob: Customer):
        link(session, ann.id, SECOND_WALLET, nonce=1)
        link(session, bob.id, STRANGER, nonce=1)
        link(session, ann.id, WALLET, brand=OTHER_BRAND, nonce=1)
        session.commit()
        assert [(w.wallet, w.brand) for w in links_of(session, ann.id)] == [
            (SECOND_WALLET.address.lower(), BRAND),
            (WALLET.address.lower(), OTHER_BRAND),
        ]

    def test_an_unknown_customer_is_customer_not_found(self, session: Session):
        with pytest.raises(CustomerNotFound):
            links_of(session, 404)


OTHER_ESCROW = "0x" + "e6" * 20


def _indexed_history(session: Session) -> None:
    """Rows indexed before any link: the wallet in a BRAND campaign (1) and an OTHER_BRAND one (2), a stranger in
    campaign 1, and the wallet in a campaign 1 of another escrow that belongs to OTHER_BRAND."""
    wallet = WALLET.address.lower()
    session.add_all(
        [
            rows.campaign(0, campaign_id=1, brand=BRAND),
            rows.campaign(1, campaign_id=2, brand=OTHER_BRAND),
            rows.campaign(2, campaign_id=1, brand=OTHER_BRAND, escrow=OTHER_ESCROW),
            rows.touchpoint(0, campaign_id=1, consumer=wallet),
            rows.touchpoint(1, campaign_id=1, consumer=wallet),
            rows.touchpoint(2, campaign_id=2, consumer=wallet),
            rows.touchpoint(3, campaign_id=1, consumer=STRANGER.address.lower()),
            rows.touchpoint(4, campaign_id=1, consumer=wallet, escrow=OTHER_ESCROW),
            rows.touchpoint(5, campaign_id=1, consumer=wallet, chain_id=1),  # no campaign indexed there
            rows.rejection(0, campaign_id=1, consumer=wallet),
            rows.rejection(1, campaign_id=2, consumer=wallet),
            rows.claim(0, campaign_id=1, consumer=wallet),
            rows.claim(1, campaign_id=2, consumer=wallet),
        ]
    )
    session.commit()


def _owners(session: Session) -> dict[str, list[tuple[int, int | None]]]:
    """(log index, customer id) of each table's rows."""
    return {
        model.__tablename__: [
            (int(i), c)
            for i, c in session.execute(select(model.log_index, model.customer_id).order_by(model.log_index))
        ]
        for model in (Touchpoint, Rejection, Claim)
    }


class TestLinkingAttachesIndexedRows:
    def test_linking_attaches_the_wallets_rows_in_the_brands_campaigns(self, session: Session, ann: Customer):
        _indexed_history(session)
        link(session, ann.id)
        session.commit()
        session.expire_all()
        assert _owners(session) == {
            "touchpoints": [(0, ann.id), (1, ann.id), (2, None), (3, None), (4, None), (5, None)],
            "rejections": [(0, ann.id), (1, None)],
            "claims": [(0, ann.id), (1, None)],
        }

    def test_unlinking_detaches_them_and_leaves_the_other_brands_link(
        self, session: Session, ann: Customer, bob: Customer
    ):
        _indexed_history(session)
        link(session, ann.id, brand=BRAND, nonce=1)
        link(session, bob.id, brand=OTHER_BRAND, nonce=2)
        session.commit()
        session.expire_all()
        assert _owners(session)["touchpoints"] == [
            (0, ann.id),
            (1, ann.id),
            (2, bob.id),
            (3, None),
            (4, bob.id),
            (5, None),
        ]

        unlink_wallet(session, customer_id=ann.id, brand=BRAND, wallet=WALLET.address)
        session.commit()
        session.expire_all()
        assert _owners(session) == {
            "touchpoints": [(0, None), (1, None), (2, bob.id), (3, None), (4, bob.id), (5, None)],
            "rejections": [(0, None), (1, bob.id)],
            "claims": [(0, None), (1, bob.id)],
        }

    def test_rows_loaded_in_the_session_see_the_change(self, session: Session, ann: Customer):
        _indexed_history(session)
        first = session.scalars(select(Touchpoint).where(Touchpoint.log_index == 0)).one()
        link(session, ann.id)
        assert first.customer_id == ann.id
        unlink_wallet(session, customer_id=ann.id, brand=BRAND, wallet=WALLET.address)
        assert first.customer_id is None


class TestErasure:
    def test_erasure_removes_the_links_but_the_nonces_stay_spent(self, session: Session, ann: Customer, bob: Customer):
        _indexed_history(session)
        link(session, ann.id, nonce=1)
        link(session, ann.id, SECOND_WALLET, nonce=1)
        session.commit()
        report = erase_customer(session, ann.id)
        session.commit()
        assert (report.wallet_links_deleted, report.touchpoints_detached) == (2, 2)
        assert link_count(session) == 0
        assert sorted(spent_nonces(session)) == sorted(
            [(WALLET.address.lower(), 1), (SECOND_WALLET.address.lower(), 1)]
        )
        # the wallet is free to link again, with a new nonce only
        with pytest.raises(LinkNonceUsed):
            link(session, bob.id, nonce=1)
        assert link(session, bob.id, nonce=2).customer_id == bob.id
