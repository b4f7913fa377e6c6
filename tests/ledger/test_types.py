"""Column types store chain values exactly, and identically, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from ledger.crm.models import Customer, Touchpoint
from ledger.types import UINT256_MAX, check_uint256, normalize_address, normalize_bytes32
from tests.ledger.crm.rows import touchpoint

EDGES = [0, 1, 10**24 + 1, UINT256_MAX]


def _amounts(session: Session, *amounts: int) -> None:
    session.add_all(touchpoint(log, amount=amount) for log, amount in enumerate(amounts))
    session.commit()


class TestUint256:
    @pytest.mark.parametrize("amount", EDGES, ids=["zero", "one", "1e24+1", "2^256-1"])
    def test_round_trips_exactly_as_an_int(self, session: Session, amount: int):
        _amounts(session, amount)
        session.expire_all()
        stored = session.scalars(select(Touchpoint.amount)).one()
        assert type(stored) is int
        assert stored == amount

    def test_orders_and_compares_numerically(self, session: Session):
        amounts = [10**24 + 1, 5, UINT256_MAX, 0, 10**18, 999, 2**255]
        _amounts(session, *amounts)
        assert list(session.scalars(select(Touchpoint.amount).order_by(Touchpoint.amount))) == sorted(amounts)
        above = session.scalars(select(Touchpoint.amount).where(Touchpoint.amount > 10**18))
        assert sorted(above) == [10**24 + 1, 2**255, UINT256_MAX]
        assert session.scalar(select(Touchpoint.id).where(Touchpoint.amount == 10**24 + 1)) is not None
        assert session.scalar(select(func.max(Touchpoint.amount))) == UINT256_MAX
        assert session.scalar(select(func.min(Touchpoint.amount))) == 0

    @pytest.mark.parametrize("bad", [-1, 2**256, True, 1.5], ids=["negative", "2^256", "bool", "float"])
    def test_refuses_what_is_not_a_uint256(self, session: Session, bad: object):
        session.add(touchpoint(amount=bad))
        with pytest.raises(StatementError) as raised:
            session.flush()
        assert isinstance(raised.value.orig, ValueError)
        assert "uint256" in str(raised.value.orig)

    @pytest.mark.parametrize("bad", [-1, 2**256, True, False, 1.5, "1", None])
    def test_check_refuses_with_a_value_error(self, bad: object):
        with pytest.raises(ValueError, match="uint256"):
            check_uint256(bad)


class TestAddress:
    def test_stores_lowercase_whatever_case_it_was_given(self, session: Session):
        checksummed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        session.add(touchpoint(consumer=checksummed))
        session.commit()
        assert session.scalars(select(Touchpoint.consumer)).one() == checksummed.lower()
        found = session.scalars(
            select(Touchpoint.id).where(Touchpoint.consumer == checksummed.upper().replace("X", "x"))
        )
        assert len(found.all()) == 1

    def test_refuses_a_mixed_case_address_with_a_bad_checksum(self):
        with pytest.raises(ValueError, match="checksum"):
            normalize_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")

    @pytest.mark.parametrize("bad", ["0x1234", "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", b"\x01" * 19, 7])
    def test_refuses_what_is_not_an_address(self, bad: object):
        with pytest.raises(ValueError):
            normalize_address(bad)

    def test_accepts_twenty_bytes(self):
        assert normalize_address(b"\xab" * 20) == "0x" + "ab" * 20


class TestBytes32:
    def test_stores_lowercase_hex(self, session: Session):
        session.add(touchpoint(evidence_hash="0x" + "AB" * 32))
        session.commit()
        assert session.scalars(select(Touchpoint.evidence_hash)).one() == "0x" + "ab" * 32

    @pytest.mark.parametrize("bad", ["0x" + "ab" * 31, "ab" * 32, b"\x00" * 31, None])
    def test_refuses_what_is_not_32_bytes(self, bad: object):
        with pytest.raises(ValueError):
            normalize_bytes32(bad)

    def test_accepts_32_bytes(self):
        assert normalize_bytes32(b"\x01" * 32) == "0x" + "01" * 32


class TestUTCDateTime:
    def test_returns_an_aware_utc_datetime_for_any_zone_stored(self, session: Session):
        paris = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1)))
        session.add(Customer(created_at=paris, updated_at=paris))
        session.commit()
        session.expire_all()
        stored = session.scalars(select(Customer.created_at)).one()
        assert stored == paris
        assert stored.tzinfo is UTC
        assert stored.hour == 11

    def test_refuses_a_naive_datetime(self, session: Session):
        session.add(Customer(created_at=datetime(2026, 3, 1, 12, 30)))
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()
