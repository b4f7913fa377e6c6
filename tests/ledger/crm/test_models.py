"""The CRM schema's own guarantees: one row per log, one customer per wallet and brand, one record per person."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.crm.base import ChainLog
from ledger.crm.models import Customer, Touchpoint, WalletLink
from tests.ledger.crm import rows
from tests.ledger.crm.rows import BRAND, CONSUMER, touchpoint

CHAIN_ROWS: list[Callable[..., ChainLog]] = [
    rows.touchpoint,
    rows.rejection,
    rows.claim,
    rows.consent_event,
    rows.campaign_event,
    rows.campaign,
]
# the second row differs in everything but the chain key, so only the chain key can clash
DIFFERENT = {"campaign": {"campaign_id": 99}, "consent_event": {"brand": "0x" + "b9" * 20}}


def _link(customer: Customer, wallet: str = CONSUMER, brand: str = BRAND, **fields: Any) -> WalletLink:
    values: dict[str, Any] = {"nonce": 1, "deadline": 2**256 - 1, "signature": "0x" + "11" * 65, "chain_id": 31337}
    return WalletLink(customer=customer, wallet=wallet, brand=brand, **(values | fields))


class TestChainDerivedRows:
    @pytest.mark.parametrize("make", CHAIN_ROWS, ids=lambda make: make.__name__)
    def test_a_second_row_for_the_same_log_is_refused(self, session: Session, make: Callable[..., ChainLog]):
        session.add(make(0))
        session.commit()
        session.add(make(0, block_number=101, **DIFFERENT.get(make.__name__, {})))
        with pytest.raises(IntegrityError, match="(?i)unique"):
            session.commit()

    def test_the_same_position_on_another_chain_is_another_log(self, session: Session):
        session.add_all([touchpoint(0), touchpoint(0, chain_id=1)])
        session.commit()
        assert session.scalar(select(func.count()).select_from(Touchpoint)) == 2

    def test_another_log_index_in_the_same_transaction_is_another_log(self, session: Session):
        session.add_all([touchpoint(0), touchpoint(1)])
        session.commit()
        assert session.scalar(select(func.count()).select_from(Touchpoint)) == 2


class TestWalletLinks:
    def test_a_wallet_belongs_to_one_customer_per_brand(self, session: Session):
        session.add(_link(Customer(display_name="Ann")))
        session.commit()
        session.add(_link(Customer(display_name="Bob"), wallet=CONSUMER.upper().replace("X", "x")))
        with pytest.raises(IntegrityError, match="(?i)unique"):
            session.commit()

    def test_the_same_wallet_may_be_linked_for_another_brand(self, session: Session):
        session.add_all(
            [_link(Customer(display_name="Ann")), _link(Customer(display_name="Bob"), brand="0x" + "b1" * 20)]
        )
        session.commit()
        assert session.scalar(select(func.count()).select_from(WalletLink)) == 2

    def test_a_customer_may_have_several_wallets(self, session: Session):
        ann = Customer(display_name="Ann")
        session.add_all([_link(ann), _link(ann, wallet="0x" + "c2" * 20)])
        session.commit()
        assert len(ann.wallet_links) == 2

    def test_deleting_a_customer_in_sql_deletes_their_links(self, session: Session):
        """Foreign keys are enforced on SQLite too (it leaves them off unless asked)."""
        ann = Customer(display_name="Ann")
        session.add(_link(ann))
        session.commit()
        session.execute(delete(Customer).where(Customer.id == ann.id))
        session.commit()
        assert session.scalar(select(func.count()).select_from(WalletLink)) == 0


class TestCustomers:
    def test_a_normalised_email_is_unique(self, session: Session):
        session.add_all([Customer(email_normalized="ann@example.com"), Customer(email_normalized="ann@example.com")])
        with pytest.raises(IntegrityError, match="(?i)unique"):
            session.commit()

    def test_customers_without_email_or_phone_do_not_clash(self, session: Session):
        session.add_all([Customer(display_name="Ann"), Customer(display_name="Bob")])
        session.commit()
        assert session.scalar(select(func.count()).select_from(Customer)) == 2

    def test_an_unknown_lifecycle_stage_is_refused_by_the_database(self, session: Session):
        session.add(Customer(display_name="Ann"))
        session.commit()
        with pytest.raises(IntegrityError, match="(?i)check"):
            session.connection().exec_driver_sql("UPDATE customers SET lifecycle_stage = 'prospect'")
