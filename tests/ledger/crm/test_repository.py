"""Dedup: one customer record per real person, found by normalised email or phone; a merge says so."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.crm.models import Customer
from ledger.crm.repository import (
    AmbiguousCustomer,
    CustomerNotFound,
    InvalidContact,
    get_customer,
    normalize_email,
    normalize_phone,
    upsert_customer,
)


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


class TestNormalizeEmail:
    @pytest.mark.parametrize("given", ["ann@example.com", "  Ann@Example.COM ", "ANN@EXAMPLE.COM\n"])
    def test_trims_and_lowercases(self, given: str):
        assert normalize_email(given) == "ann@example.com"

    def test_keeps_plus_tags_and_dots(self):
        assert normalize_email("A.nn+shop@Example.com") == "a.nn+shop@example.com"

    @pytest.mark.parametrize("given", ["ann", "ann@", "@example.com", "ann@example", "an n@example.com"])
    def test_refuses_what_is_not_an_address(self, given: str):
        with pytest.raises(InvalidContact):
            normalize_email(given)


class TestNormalizePhone:
    @pytest.mark.parametrize("given", ["+44 20 7946 0958", "+44 (20) 7946-0958", "0044.20.7946.0958", "+442079460958"])
    def test_keeps_plus_and_digits(self, given: str):
        assert normalize_phone(given) == "+442079460958"

    @pytest.mark.parametrize("given", ["020 7946 0958", "7946 0958"])
    def test_refuses_a_number_without_its_country_code(self, given: str):
        with pytest.raises(InvalidContact, match="country code"):
            normalize_phone(given)

    @pytest.mark.parametrize("given", ["+44 20 7946 0958 ext 12", "+0 20 7946 0958", "+123", "+1234567890123456"])
    def test_refuses_what_is_not_an_international_number(self, given: str):
        with pytest.raises(InvalidContact):
            normalize_phone(given)


class TestUpsertCustomer:
    def test_a_new_person_is_created_and_not_reported_as_merged(self, session: Session):
        customer, merged = upsert_customer(session, email="ann@example.com", display_name="Ann")
        session.commit()
        assert not merged
        assert (customer.email_normalized, customer.lifecycle_stage) == ("ann@example.com", "aware")

    def test_the_same_email_in_another_case_merges_and_says_so(self, session: Session):
        first, _ = upsert_customer(session, email="ann@example.com")
        second, merged = upsert_customer(session, email="  ANN@Example.com", lead_source="newsletter")
        session.commit()
        assert merged
        assert second.id == first.id
        assert second.lead_source == "newsletter"
        assert _count(session) == 1

    def test_the_same_phone_written_differently_merges_and_says_so(self, session: Session):
        first, _ = upsert_customer(session, phone="+44 20 7946 0958", display_name="Ann")
        second, merged = upsert_customer(session, phone="0044 (20) 7946-0958", email="ann@example.com")
        session.commit()
        assert merged
        assert second.id == first.id
        assert (second.email_normalized, second.phone_normalized) == ("ann@example.com", "+442079460958")
        assert _count(session) == 1

    def test_a_merge_fills_blanks_but_keeps_what_is_there(self, session: Session):
        upsert_customer(session, email="ann@example.com", display_name="Ann Smith", tier="gold")
        customer, merged = upsert_customer(session, email="ann@example.com", display_name="A. Smith", owner="joe")
        assert merged
        assert (customer.display_name, customer.tier, customer.owner) == ("Ann Smith", "gold", "joe")

    def test_an_email_of_one_customer_and_a_phone_of_another_is_refused(self, session: Session):
        ann, _ = upsert_customer(session, email="ann@example.com")
        bob, _ = upsert_customer(session, phone="+442079460958")
        with pytest.raises(AmbiguousCustomer) as raised:
            upsert_customer(session, email="ann@example.com", phone="+44 20 7946 0958")
        assert raised.value.customer_ids == [ann.id, bob.id]

    def test_people_without_email_or_phone_are_never_merged(self, session: Session):
        upsert_customer(session, display_name="Ann")
        _, merged = upsert_customer(session, display_name="Ann")
        assert not merged
        assert _count(session) == 2

    def test_an_invalid_phone_is_refused_before_anything_is_stored(self, session: Session):
        with pytest.raises(InvalidContact):
            upsert_customer(session, email="ann@example.com", phone="020 7946 0958")
        assert _count(session) == 0


class TestGetCustomer:
    def test_an_unknown_id_is_customer_not_found(self, session: Session):
        with pytest.raises(CustomerNotFound, match="42"):
            get_customer(session, 42)

    @pytest.mark.parametrize("customer_id", [0, -1, 2**31, 2**63, 2**256])
    def test_an_id_no_row_can_have_is_customer_not_found_not_a_database_error(self, session: Session, customer_id):
        with pytest.raises(CustomerNotFound):
            get_customer(session, customer_id)
