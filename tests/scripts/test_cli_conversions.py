"""`adledger conversions import` on SQLite and PostgreSQL: the summary, each refused line, and the exit codes
(0 all imported or already there, 1 any row refused or an unusable file, 2 usage)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ledger.crm.models import Conversion
from ledger.crm.repository import upsert_customer
from scripts.cli import app
from tests.ledger.databases import Database

# the SQLite and PostgreSQL fixtures, as tests/ledger/conftest.py provides them to the tests under it
from tests.ledger.databases import database as database
from tests.ledger.databases import databases as databases

HEADER = "customer_id,email,phone,order_ref,value,currency,occurred_at"


@pytest.fixture
def env(database: Database, tmp_path: Path) -> dict[str, str]:
    with database.sessions() as session:
        upsert_customer(session, email="ann@example.com")
        session.commit()
    return {
        "ADLEDGER_DATA_DIR": str(tmp_path),
        "ADLEDGER_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
    }


def _import(env: dict[str, str], path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["conversions", "import", str(path), *extra], env=env)
    return result.exit_code, result.output


def _summary(output: str) -> dict[str, str]:
    """The summary table's rows: ``{"rows read": "1", "imported": "1", …}``."""
    return dict(re.findall(r"│ ([a-z ]+?) +│ +([\d,]+) │", output))


def _count(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(Conversion)) or 0


class TestConversionsImport:
    def test_exits_0_and_prints_the_summary_then_0_again_when_everything_is_already_there(
        self, env: dict[str, str], database: Database, tmp_path: Path
    ):
        path = tmp_path / "orders.csv"
        path.write_text(f"{HEADER}\n,ann@example.com,,A-1,12.34,USD,2026-01-02T10:30:00Z\n")
        code, output = _import(env, path, "--source", "shop")
        assert code == 0, output
        assert _summary(output) == {"rows read": "1", "imported": "1", "already imported": "0", "refused": "0"}
        code, output = _import(env, path, "--source", "shop")
        assert code == 0, output
        assert _summary(output) == {"rows read": "1", "imported": "0", "already imported": "1", "refused": "0"}
        assert _count(database) == 1

    def test_exits_1_and_lists_each_refused_line_while_the_good_rows_are_stored(
        self, env: dict[str, str], database: Database, tmp_path: Path
    ):
        path = tmp_path / "orders.csv"
        path.write_text(
            f"{HEADER}\n"
            ",ann@example.com,,A-1,12.34,USD,2026-01-02T10:30:00Z\n"
            ",ann@example.com,,A-2,12.345,USD,2026-01-02T10:30:00Z\n"
            ",nobody@example.com,,A-3,1.00,USD,2026-01-02T10:30:00Z\n"
            ",ann@example.com,,A-4,[red]1[/red],USD,2026-01-02T10:30:00Z\n"
        )
        code, output = _import(env, path, "--source", "shop")
        assert code == 1, output
        assert _summary(output) == {"rows read": "4", "imported": "1", "already imported": "0", "refused": "3"}
        assert "line 3: value '12.345' has more decimals than USD allows (2)" in output
        assert "line 4: unknown customer: no customer has email 'nobody@example.com'" in output
        assert "line 5: value '[red]1[/red]' is not a decimal number" in output  # the file's text, not markup
        assert _count(database) == 1

    def test_a_bad_header_is_one_red_line_with_its_code_and_exit_1(
        self, env: dict[str, str], database: Database, tmp_path: Path
    ):
        path = tmp_path / "orders.csv"
        path.write_text("customer_id,order_ref,amount,currency,occurred_at\n1,A-1,1.00,USD,2026-01-02T10:30:00Z\n")
        code, output = _import(env, path, "--source", "shop")
        assert code == 1, output
        one_line = " ".join(output.split())  # rich wraps the red line at the terminal's width
        assert "error invalid_conversion_file: line 1: the header has unknown column(s) 'amount'" in one_line
        assert _count(database) == 0

    @pytest.mark.parametrize("arguments", [["--source", "shop"], []])
    def test_a_missing_file_or_source_is_a_usage_error(self, env: dict[str, str], tmp_path: Path, arguments: list[str]):
        path = tmp_path / ("missing.csv" if arguments else "orders.csv")
        path.parent.mkdir(exist_ok=True)
        if not arguments:
            path.write_text(f"{HEADER}\n")
        code, output = _import(env, path, *arguments)
        assert code == 2, output
