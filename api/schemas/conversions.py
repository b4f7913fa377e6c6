"""Bodies of /v1/conversions: one purchase in and out, and a CSV import's report. A value is an exact integer of
the currency's minor units, sent and answered as a string (``"1234"`` with ``"USD"``), with the major-unit
decimal (``"12.34"``) beside it in answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ledger.crm.conversions import ImportReport
from ledger.crm.models import Conversion
from ledger.crm.money import format_minor
from ledger.crm.repository import MAX_CUSTOMER_ID


def major_units(value_minor: int, currency: str) -> str:
    """``(1234, "USD")`` -> ``"12.34"``."""
    return format_minor(value_minor, currency).split(" ")[0]


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[int, Field(ge=1, le=MAX_CUSTOMER_ID, strict=True)]
    source: Annotated[str, Field(description="The shop or POS system.", examples=["shopify"])]
    order_ref: Annotated[str, Field(description="The order's id in that source.", examples=["#1001"])]
    value_minor: Annotated[
        str, Field(pattern=r"^[0-9]{1,19}$", description="Minor units (cents), integer string.", examples=["1234"])
    ]
    currency: Annotated[str, Field(description="ISO 4217.", examples=["USD"])]
    occurred_at: Annotated[datetime, Field(description="RFC 3339 with Z or an offset.")]


class ConversionOut(BaseModel):
    id: int
    customer_id: int | None
    source: str
    order_ref: str
    value_minor: str
    currency: str
    value: str = Field(description="Major units, decimal string.")
    occurred_at: datetime
    created: bool = Field(description="False when the same purchase was already recorded (a replay).")

    @classmethod
    def of(cls, conversion: Conversion, created: bool) -> ConversionOut:
        return cls(
            id=conversion.id,
            customer_id=conversion.customer_id,
            source=conversion.source,
            order_ref=conversion.order_ref,
            value_minor=str(conversion.value_minor),
            currency=conversion.currency,
            value=major_units(conversion.value_minor, conversion.currency),
            occurred_at=conversion.occurred_at,
            created=created,
        )


class RowError(BaseModel):
    line: int = Field(description="1-based line of the file; the header is line 1.")
    message: str


class ImportReportOut(BaseModel):
    rows_read: int
    imported: int
    already_imported: int
    errors: list[RowError]
    ok: bool = Field(description="Whether every row was imported or already there.")

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            rows_read=report.rows_read,
            imported=report.imported,
            already_imported=report.already_imported,
            errors=[RowError(line=line, message=message) for line, message in report.errors],
            ok=report.ok,
        )
