"""Conversions on SQLite and PostgreSQL: recorded one by one or imported from CSV, exact, idempotent by
(source, order_ref), each refused CSV row reported by its file line while the valid rows are kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.crm.conversions import ImportReport, import_conversions_csv, record_conversion
from ledger.crm.erasure import erase_customer
from ledger.crm.models import Conversion
from ledger.crm.repository import upsert_customer
from ledger.errors import (
    ConversionConflict,
    CustomerNotFound,
    InvalidAmount,
    InvalidConversion,
    InvalidConversionFile,
)
from tests.ledger.databases import Database

HEADER = "customer_id,email,phone,order_ref,value,currency,occurred_at"
AT = "2026-01-02T10:30:00Z"
JAN_2 = datetime(2026, 1, 2, 10, 30, tzinfo=UTC)


@pytest.fixture
def ann(session: Session) -> int:
    customer, _ = upsert_customer(session, email="ann@example.com", phone="+44 20 7946 0958", display_name="Ann")
    session.commit()
    return customer.id


@pytest.fixture
def bob(session: Session) -> int:
    customer, _ = upsert_customer(session, email="bob@example.com", phone="+1 212 555 0100", display_name="Bob")
    session.commit()
    return customer.id


def write_csv(tmp_path: Path, *lines: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(session: Session) -> list[tuple[Any, ...]]:
    """Every conversion, every column, in order_ref order: equal lists mean nothing changed."""
    session.expire_all()
    return [
        (c.id, c.source, c.order_ref, c.customer_id, c.value_minor, c.currency, c.occurred_at, c.imported_at)
        for c in session.scalars(select(Conversion).order_by(Conversion.source, Conversion.order_ref))
    ]


def values(session: Session) -> list[tuple[Any, ...]]:
    return [(ref, customer, minor, currency, at) for _, _, ref, customer, minor, currency, at, _ in stored(session)]


class TestRecordConversion:
    def test_stores_the_purchase_exactly_and_in_utc(self, session: Session, ann: int):
        tokyo = timezone(timedelta(hours=9))
        conversion, created = record_conversion(
            session,
            customer_id=ann,
            source="pos:store-12",
            order_ref="R-1",
            value_minor=1500,
            currency="jpy",
            occurred_at=datetime(2026, 1, 2, 19, 30, tzinfo=tokyo),
        )
        session.commit()
        assert created
        assert values(session) == [("R-1", ann, 1500, "JPY", JAN_2)]
        assert conversion.occurred_at == JAN_2

    def test_the_same_purchase_again_changes_nothing_and_says_so(self, session: Session, ann: int):
        given: dict[str, Any] = dict(
            customer_id=ann, source="shop", order_ref="A-1", value_minor=1234, currency="USD", occurred_at=JAN_2
        )
        first, _ = record_conversion(session, **given)
        session.commit()
        before = stored(session)
        again, created = record_conversion(session, **given)
        session.commit()
        assert not created
        assert again.id == first.id
        assert stored(session) == before

    def test_the_same_order_with_another_value_is_a_conflict_and_is_not_overwritten(self, session: Session, ann: int):
        record_conversion(
            session,
            customer_id=ann,
            source="shop",
            order_ref="A-1",
            value_minor=1234,
            currency="USD",
            occurred_at=JAN_2,
        )
        session.commit()
        with pytest.raises(ConversionConflict, match=r"'A-1' of 'shop' is already recorded .*12\.34 USD"):
            record_conversion(
                session,
                customer_id=ann,
                source="shop",
                order_ref="A-1",
                value_minor=1235,
                currency="USD",
                occurred_at=JAN_2,
            )
        session.rollback()
        assert values(session) == [("A-1", ann, 1234, "USD", JAN_2)]

    def test_the_same_order_ref_from_another_source_is_another_purchase(self, session: Session, ann: int):
        for source in ("shop", "pos"):
            _, created = record_conversion(
                session, customer_id=ann, source=source, order_ref="1", value_minor=1, currency="EUR", occurred_at=JAN_2
            )
            assert created
        session.commit()
        assert len(stored(session)) == 2

    @pytest.mark.parametrize("customer_id", [999, 2**40])  # 2**40: beyond PostgreSQL's INTEGER, still not found
    def test_an_unknown_customer_is_refused_not_created(self, session: Session, customer_id: int):
        with pytest.raises(CustomerNotFound):
            record_conversion(
                session,
                customer_id=customer_id,
                source="shop",
                order_ref="A",
                value_minor=1,
                currency="EUR",
                occurred_at=JAN_2,
            )
        assert stored(session) == []

    @pytest.mark.parametrize(
        ("change", "error", "match"),
        [
            ({"value_minor": 12.34}, InvalidAmount, "must be an int"),
            ({"value_minor": True}, InvalidAmount, "must be an int"),
            ({"value_minor": -1}, InvalidAmount, "outside"),
            ({"value_minor": 2**63}, InvalidAmount, "outside"),
            ({"currency": "XYZ"}, InvalidAmount, "unknown currency"),
            ({"occurred_at": datetime(2026, 1, 2, 10, 30)}, InvalidConversion, "no UTC offset"),
            ({"order_ref": "  "}, InvalidConversion, "order_ref is empty"),
            ({"order_ref": "x" * 201}, InvalidConversion, "at most 200"),
            ({"source": ""}, InvalidConversion, "source"),
        ],
    )
    def test_refuses_an_invalid_field(
        self, session: Session, ann: int, change: dict[str, Any], error: type, match: str
    ):
        given: dict[str, Any] = dict(
            customer_id=ann, source="shop", order_ref="A-1", value_minor=1234, currency="USD", occurred_at=JAN_2
        )
        with pytest.raises(error, match=match):
            record_conversion(session, **(given | change))
        assert stored(session) == []

    def test_the_bigint_maximum_round_trips_exactly(self, session: Session, ann: int):
        record_conversion(
            session,
            customer_id=ann,
            source="s",
            order_ref="max",
            value_minor=2**63 - 1,
            currency="JPY",
            occurred_at=JAN_2,
        )
        session.commit()
        assert values(session)[0][2] == 2**63 - 1


class TestImportConversionsCsv:
    def test_imports_every_row_exactly(self, session: Session, tmp_path: Path, ann: int, bob: int):
        path = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,A-1,12.34,USD,{AT}",
            ",bob@example.com,,A-2,1500,JPY,2026-01-02T19:30:00+09:00",
            ",,+44 20 7946 0958,A-3,1.005,KWD,2026-01-02T05:30:00-05:00",
        )
        report = import_conversions_csv(session, path, "shop")
        assert report == ImportReport(rows_read=3, imported=3, already_imported=0, errors=())
        assert report.ok
        assert values(session) == [
            ("A-1", ann, 1234, "USD", JAN_2),
            ("A-2", bob, 1500, "JPY", JAN_2),
            ("A-3", ann, 1005, "KWD", JAN_2),
        ]

    def test_each_bad_row_is_reported_by_its_line_and_the_valid_rows_are_kept(
        self, session: Session, tmp_path: Path, ann: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,  # line 1
            f"{ann},,,A-1,12.34,USD,{AT}",
            f"{ann},,,A-2,twelve,USD,{AT}",
            f"{ann},,,A-3,12.345,USD,{AT}",
            f"{ann},,,A-4,12.34,XYZ,{AT}",
            f"{ann},,,A-5,12.34,USD,2026-01-02T10:30:00",
            f"{ann},,,,12.34,USD,{AT}",
            f"999999,,,A-7,12.34,USD,{AT}",
            f",nobody@example.com,,A-8,12.34,USD,{AT}",
            f"{ann},,,A-9,12.34,USD,{AT},extra",
            f"{ann},,,A-10,-3.00,USD,{AT}",
            f"{ann},,,A-11,1.00,EUR,yesterday",
            f"{ann},,,A-12,0.99,EUR,{AT}",  # line 13
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == (
            (3, "value 'twelve' is not a decimal number such as 12.34 (no sign, exponent or separators)"),
            (4, "value '12.345' has more decimals than USD allows (2)"),
            (5, report.errors[2][1]),
            (6, "occurred_at '2026-01-02T10:30:00' has no UTC offset: add Z or +hh:mm (it is not guessed)"),
            (7, "order_ref is empty"),
            (8, "unknown customer: no customer has customer_id 999999"),
            (9, "unknown customer: no customer has email 'nobody@example.com'"),
            (10, "8 fields where the header has 7"),
            (11, "value '-3.00' is negative: a conversion is a purchase, refunds are not imported"),
            (12, "occurred_at 'yesterday' is not an ISO 8601 time such as 2026-01-02T10:30:00Z"),
        )
        assert report.errors[2][1].startswith("unknown currency 'XYZ'")
        assert (report.rows_read, report.imported, report.already_imported) == (12, 2, 0)
        assert [row[0] for row in values(session)] == ["A-1", "A-12"]

    def test_lines_count_blank_lines_and_quoted_fields_that_span_lines(
        self, session: Session, tmp_path: Path, ann: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,
            "",
            f'{ann},,,"A-\n2",12.34,USD,{AT}',  # lines 3-4: a valid order_ref with a newline in it
            ",,,,,,",  # an empty row, skipped like a blank line
            f"{ann},,,A-6,1.234,USD,{AT}",
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == ((6, "value '1.234' has more decimals than USD allows (2)"),)
        assert (report.rows_read, report.imported) == (2, 1)

    def test_importing_the_same_file_twice_changes_nothing_and_says_so(
        self, database: Database, tmp_path: Path, ann: int, bob: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,A-1,12.34,USD,{AT}",
            ",bob@example.com,,A-2,0.50,EUR,2026-01-03T00:00:00Z",
            "424242,,,A-3,1,EUR,2026-01-03T00:00:00Z",
        )
        first = import_conversions_csv(database.sessions, path, "shop")
        with database.sessions() as session:
            before = stored(session)
        second = import_conversions_csv(database.sessions, path, "shop")
        with database.sessions() as session:
            assert stored(session) == before
        assert (first.imported, first.already_imported, len(first.errors)) == (2, 0, 1)
        assert (second.imported, second.already_imported, len(second.errors)) == (0, 2, 1)

    def test_the_same_order_with_other_values_is_reported_and_not_overwritten(
        self, session: Session, tmp_path: Path, ann: int, bob: int
    ):
        import_conversions_csv(session, write_csv(tmp_path, HEADER, f"{ann},,,A-1,12.34,USD,{AT}"), "shop")
        before = stored(session)
        changed = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,A-1,12.35,USD,{AT}",
            f"{bob},,,A-1,12.34,USD,{AT}",
            f"{ann},,,A-1,12.34,USD,2026-01-02T10:30:01Z",
            f"{ann},,,A-1,12.34,USD,{AT}",
            name="changed.csv",
        )
        report = import_conversions_csv(session, changed, "shop")
        assert [line for line, _ in report.errors] == [2, 3, 4]
        assert all("'A-1' of 'shop' is already recorded with other values" in message for _, message in report.errors)
        assert "(12.34 USD at 2026-01-02T10:30:00+00:00 for customer" in report.errors[0][1]
        assert (report.imported, report.already_imported) == (0, 1)
        assert stored(session) == before

    def test_the_same_order_twice_in_one_file(self, session: Session, tmp_path: Path, ann: int):
        path = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,A-1,12.34,USD,{AT}",
            f"{ann},,,A-1,12.34,USD,{AT}",
            f"{ann},,,A-1,99.99,USD,{AT}",
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == ((4, "order_ref 'A-1' is on line 2 with other values: not imported"),)
        assert (report.imported, report.already_imported) == (1, 1)
        assert values(session) == [("A-1", ann, 1234, "USD", JAN_2)]

    def test_chunks_are_committed_one_by_one_and_see_the_earlier_ones(self, session: Session, tmp_path: Path, ann: int):
        rows = [f"{ann},,,A-{n},{n}.00,EUR,{AT}" for n in range(1, 6)]
        path = write_csv(tmp_path, HEADER, *rows, rows[0], f"{ann},,,A-2,7.00,EUR,{AT}", f"x,,,A-9,1,EUR,{AT}")
        report = import_conversions_csv(session, path, "shop", chunk_rows=2)
        assert (report.rows_read, report.imported, report.already_imported) == (8, 5, 1)
        assert [line for line, _ in report.errors] == [8, 9]
        assert "already recorded" in report.errors[0][1] and "not a customer id" in report.errors[1][1]
        assert [minor for _, _, minor, _, _ in values(session)] == [100, 200, 300, 400, 500]

    def test_the_bigint_maximum_is_stored_exactly_and_one_more_is_refused(
        self, session: Session, tmp_path: Path, ann: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,max-jpy,9223372036854775807,JPY,{AT}",
            f"{ann},,,max-usd,92233720368547758.07,USD,{AT}",
            f"{ann},,,over,9223372036854775808,JPY,{AT}",
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == (
            (4, "value '9223372036854775808' JPY is more than 2^63-1 minor units, the largest storable"),
        )
        assert [(ref, minor) for ref, _, minor, _, _ in values(session)] == [
            ("max-jpy", 2**63 - 1),
            ("max-usd", 2**63 - 1),
        ]

    def test_a_large_file_goes_through_the_bulk_insert_and_a_reimport_finds_every_row(
        self, database: Database, tmp_path: Path, ann: int
    ):
        count = 1_250  # chunks of 1,000 and 250: PostgreSQL's COPY path (200 rows and more) twice in one import
        lines = (f"{ann},,,R-{n:05d},{n}.{n % 100:02d},EUR,{AT}" for n in range(count))
        path = write_csv(tmp_path, HEADER, *lines)
        assert import_conversions_csv(database.sessions, path, "shop") == ImportReport(count, count, 0, ())
        assert import_conversions_csv(database.sessions, path, "shop") == ImportReport(count, 0, count, ())
        with database.sessions() as session:
            rows = stored(session)
        assert len(rows) == count
        assert rows[1_234][2:6] == ("R-01234", ann, 123_434, "EUR")
        assert all(imported_at is not None for *_, imported_at in rows)

    def test_reads_an_open_file_and_a_spreadsheet_export_with_a_bom(self, session: Session, tmp_path: Path, ann: int):
        path = tmp_path / "export.csv"
        path.write_text(
            f" Order_Ref ,VALUE,currency,occurred_at,Customer_ID\r\nA-1,1.00,EUR,{AT},{ann}\r\n", "utf-8-sig"
        )
        assert import_conversions_csv(session, path, "shop").imported == 1
        report = import_conversions_csv(session, io.StringIO(f"{HEADER}\n{ann},,,B-1,2.00,EUR,{AT}\n"), "shop")
        assert report.imported == 1


class TestCustomerLookup:
    def test_finds_the_customer_by_normalised_email_and_phone(self, session: Session, tmp_path: Path, ann: int):
        path = write_csv(
            tmp_path,
            HEADER,
            f",  ANN@Example.COM ,,A-1,1,EUR,{AT}",
            f",,0044 (20) 7946-0958,A-2,1,EUR,{AT}",
            f"{ann},ann@example.com,+442079460958,A-3,1,EUR,{AT}",
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.ok, report.errors
        assert [customer for _, customer, _, _, _ in values(session)] == [ann, ann, ann]

    def test_an_unknown_or_contradictory_customer_is_reported_and_none_is_created(
        self, session: Session, tmp_path: Path, ann: int, bob: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,
            f",ann@example.com,+1 212 555 0100,A-1,1,EUR,{AT}",
            f"{ann},nobody@example.com,,A-2,1,EUR,{AT}",
            f",,+49 30 1234567,A-3,1,EUR,{AT}",
            f",not-an-email,,A-4,1,EUR,{AT}",
            f",,020 7946 0958,A-5,1,EUR,{AT}",
            f",,,A-6,1,EUR,{AT}",
            f"99999999999,,,A-7,1,EUR,{AT}",  # beyond PostgreSQL's INTEGER: still just unknown
        )
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == (
            (2, f"customer_id, email and phone name different customers {sorted([ann, bob])}"),
            (3, "unknown customer: no customer has email 'nobody@example.com'"),
            (4, "unknown customer: no customer has phone '+49301234567'"),
            (5, "'not-an-email' is not an email address"),
            (6, "'020 7946 0958' needs its country code: write it as +<country><number>"),
            (7, "no customer: give its customer_id, email or phone"),
            (8, "unknown customer: no customer has customer_id 99999999999"),
        )
        assert values(session) == []
        assert len(session.scalars(select(Conversion)).all()) == 0

    def test_erasure_leaves_the_conversions_detached_and_a_reimport_does_not_reattach_them(
        self, session: Session, tmp_path: Path, ann: int, bob: int
    ):
        path = write_csv(
            tmp_path,
            HEADER,
            f"{ann},,,A-1,12.34,USD,{AT}",
            f",ann@example.com,,A-2,5.00,USD,{AT}",
            f"{bob},,,B-1,1.00,USD,{AT}",
        )
        import_conversions_csv(session, path, "shop")
        report = erase_customer(session, ann)
        session.commit()
        assert report.conversions_detached == 2
        assert values(session) == [
            ("A-1", None, 1234, "USD", JAN_2),
            ("A-2", None, 500, "USD", JAN_2),
            ("B-1", bob, 100, "USD", JAN_2),
        ]
        again = import_conversions_csv(session, path, "shop")
        assert [line for line, _ in again.errors] == [2, 3]  # the erased customer is unknown now, not re-created
        assert (again.imported, again.already_imported) == (0, 1)
        assert [customer for _, customer, _, _, _ in values(session)] == [None, None, bob]


class TestImportHeader:
    @pytest.mark.parametrize(
        ("header", "problem"),
        [
            ("customer_id,order_ref,value,occurred_at", "missing column(s) 'currency'"),
            (
                "customer_id,order_ref,amount,currency,occurred_at",
                "unknown column(s) 'amount'; missing column(s) 'value'",
            ),
            ("order_ref,value,currency,occurred_at", "no customer column: add customer_id, email or phone"),
            ("email,email,order_ref,value,currency,occurred_at", "repeated column(s) 'email'"),
            (f"1,,,A-1,12.34,USD,{AT}", "unknown column(s)"),  # a file without its header
        ],
    )
    def test_a_bad_header_is_one_error_for_the_whole_file_and_stores_nothing(
        self, session: Session, tmp_path: Path, ann: int, header: str, problem: str
    ):
        path = write_csv(tmp_path, header, f"{ann},,,A-1,12.34,USD,{AT}")
        with pytest.raises(InvalidConversionFile) as raised:
            import_conversions_csv(session, path, "shop")
        assert str(raised.value).startswith("line 1: the header has ")
        assert problem in str(raised.value)
        assert raised.value.code == "invalid_conversion_file"
        assert values(session) == []

    def test_an_empty_file_is_one_error(self, session: Session, tmp_path: Path):
        (tmp_path / "empty.csv").write_text("")
        with pytest.raises(InvalidConversionFile, match="the file is empty"):
            import_conversions_csv(session, tmp_path / "empty.csv", "shop")

    def test_a_row_that_is_not_utf8_is_reported_on_its_line(self, session: Session, tmp_path: Path, ann: int):
        path = tmp_path / "latin1.csv"
        rows = [f"{ann},,,A-1,1.00,EUR,{AT}", f"{ann},,,Caf\xe9,1.00,EUR,{AT}", f"{ann},,,A-3,1.00,EUR,{AT}"]
        path.write_bytes("\n".join([HEADER, *rows]).encode("latin-1"))
        report = import_conversions_csv(session, path, "shop")
        assert report.errors == ((3, "not UTF-8 text: save the file as UTF-8"),)
        assert [ref for ref, *_ in values(session)] == ["A-1", "A-3"]

    def test_a_header_alone_imports_nothing(self, session: Session, tmp_path: Path):
        assert import_conversions_csv(session, write_csv(tmp_path, HEADER), "shop") == ImportReport(0, 0, 0, ())

    @pytest.mark.parametrize("source", ["", "   ", "s" * 101])
    def test_an_unusable_source_is_refused(self, session: Session, tmp_path: Path, source: str):
        with pytest.raises(InvalidConversion, match="source"):
            import_conversions_csv(session, write_csv(tmp_path, HEADER), source)
