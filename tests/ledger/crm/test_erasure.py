"""Erasure removes a customer's PII and wallet links; the chain-derived rows stay, detached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.crm.erasure import ErasureReport, erase_customer
from ledger.crm.models import Claim, Conversion, Customer, Rejection, Touchpoint, WalletLink
from ledger.crm.repository import upsert_customer
from ledger.errors import CustomerNotFound
from tests.ledger.crm.rows import CONSUMER, claim, rejection, touchpoint

OTHER_WALLET = "0x" + "c2" * 20


def _customer_with_history(session: Session, email: str, wallet: str) -> Customer:
    customer, _ = upsert_customer(session, email=email, phone=None, display_name=email.split("@")[0])
    customer.wallet_links.append(
        WalletLink(brand="0x" + "b0" * 20, wallet=wallet, chain_id=31337, nonce=7, deadline=10**10, signature="0x00")
    )
    tx = 1 if wallet == CONSUMER else 2
    session.add_all(
        [
            touchpoint(0, consumer=wallet, customer_id=customer.id, tx_hash="0x" + f"{tx:064x}"),
            touchpoint(1, consumer=wallet, customer_id=customer.id, tx_hash="0x" + f"{tx:064x}"),
            rejection(2, consumer=wallet, customer_id=customer.id, tx_hash="0x" + f"{tx:064x}"),
            claim(3, consumer=wallet, customer_id=customer.id, tx_hash="0x" + f"{tx:064x}"),
            Conversion(
                customer_id=customer.id,
                source="shop",
                order_ref=f"order-{email}",
                value_minor=1999,
                currency="EUR",
                occurred_at=datetime(2026, 1, 2, tzinfo=UTC),
            ),
        ]
    )
    session.commit()
    return customer


class TestEraseCustomer:
    def test_removes_pii_and_wallet_links_and_keeps_chain_rows_detached(self, session: Session):
        ann = _customer_with_history(session, "ann@example.com", CONSUMER)
        report = erase_customer(session, ann.id)
        session.commit()
        session.expire_all()

        assert session.get(Customer, ann.id) is None
        assert session.scalar(select(func.count()).where(Customer.email_normalized == "ann@example.com")) == 0
        assert session.scalars(select(WalletLink)).all() == []
        touchpoints = session.scalars(select(Touchpoint)).all()
        assert [(t.consumer, t.customer_id, t.amount) for t in touchpoints] == [(CONSUMER, None, 10**18)] * 2
        assert session.scalars(select(Rejection.customer_id)).all() == [None]
        assert session.scalars(select(Claim.customer_id)).all() == [None]
        assert session.scalars(select(Conversion.value_minor).where(Conversion.customer_id.is_(None))).all() == [1999]
        assert report == ErasureReport(
            customer_id=ann.id,
            wallet_links_deleted=1,
            touchpoints_detached=2,
            rejections_detached=1,
            claims_detached=1,
            conversions_detached=1,
        )

    def test_leaves_other_customers_untouched(self, session: Session):
        ann = _customer_with_history(session, "ann@example.com", CONSUMER)
        bob = _customer_with_history(session, "bob@example.com", OTHER_WALLET)
        erase_customer(session, ann.id)
        session.commit()
        session.expire_all()
        assert session.get(Customer, bob.id) is not None
        assert len(session.scalars(select(WalletLink).where(WalletLink.customer_id == bob.id)).all()) == 1
        assert session.scalar(select(func.count()).where(Touchpoint.customer_id == bob.id)) == 2

    def test_an_unknown_customer_is_customer_not_found(self, session: Session):
        with pytest.raises(CustomerNotFound):
            erase_customer(session, 12345)

    def test_an_erased_person_can_come_back_as_a_new_customer(self, session: Session):
        ann = _customer_with_history(session, "ann@example.com", CONSUMER)
        erase_customer(session, ann.id)
        session.commit()
        again, merged = upsert_customer(session, email="ann@example.com")
        assert not merged
        assert again.id != ann.id
