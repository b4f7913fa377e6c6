"""ledger.crm.timeline and ledger.crm.search: scoping, time order across chain and shop, keyset pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from ledger.crm.models import Conversion, IndexedBlock
from ledger.crm.repository import upsert_customer
from ledger.crm.scope import marketer_scope
from ledger.crm.search import search_customers
from ledger.crm.timeline import _filled, customer_timeline
from ledger.errors import AccessDenied, InvalidCursor
from tests.ledger.crm.rows import BRAND, CHAIN_ID, campaign, claim, hash32, touchpoint


class TestMarketerScope:
    def test_a_wallet_without_campaigns_is_denied(self, session: Session):
        with pytest.raises(AccessDenied):
            marketer_scope(session, "0x" + "aa" * 20)

    def test_lists_the_marketers_campaigns_and_brands(self, session: Session):
        session.add(campaign(0))
        session.flush()
        scope = marketer_scope(session, BRAND)
        assert (scope.campaigns, scope.brands) == (frozenset({(CHAIN_ID, "0x" + "e5" * 20, 1)}), frozenset({BRAND}))


class TestCustomerTimeline:
    def test_a_claim_takes_its_block_time_and_conversions_interleave(self, session: Session):
        customer, _ = upsert_customer(session, email="ann@example.com")
        session.add_all(
            [
                campaign(0),
                touchpoint(1, customer_id=customer.id, occurred_at=1_000, block_number=10),
                claim(2, customer_id=customer.id, block_number=30, tx_hash=hash32(2)),
                IndexedBlock(chain_id=CHAIN_ID, number=30, hash=hash32(30), parent_hash=hash32(29), timestamp=3_000),
                Conversion(
                    customer_id=customer.id,
                    source="s",
                    order_ref="o",
                    value_minor=1,
                    currency="USD",
                    occurred_at=datetime.fromtimestamp(2_000, UTC),
                ),
            ]
        )
        session.flush()
        page = customer_timeline(session, marketer_scope(session, BRAND), customer.id)
        assert [(entry.kind, entry.at) for entry in page.items] == [
            ("touchpoint", 1_000),
            ("conversion", 2_000),
            ("claim", 3_000),
        ]
        assert page.next_cursor is None

    def test_a_foreign_cursor_is_refused(self, session: Session):
        session.add(campaign(0))
        customer, _ = upsert_customer(session, email="ann@example.com")
        with pytest.raises(InvalidCursor):
            customer_timeline(session, marketer_scope(session, BRAND), customer.id, cursor="1.2")

    def test_unknown_times_follow_the_chain_entry_before_them(self):
        assert _filled([None, 5, None, 9, None]) == [5, 5, 5, 9, 9]
        assert _filled([None, None]) == [0, 0]


class TestSearchCustomers:
    def test_name_prefix_escapes_wildcards(self, session: Session):
        upsert_customer(session, email="a@example.com", display_name="100% Ann")
        upsert_customer(session, email="b@example.com", display_name="1000 Bob")
        assert [c.display_name for c in search_customers(session, q="100%").items] == ["100% Ann"]
