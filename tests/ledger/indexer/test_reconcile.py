"""`reconcile` and `adledger reconcile` on a real anvil, on SQLite and PostgreSQL: clean after indexing the demo,
and every kind of tampering (a deleted, a changed, a forged row) reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from ledger.chain import Chain
from ledger.crm.onchain import Campaign, CampaignAction, Consent, Touchpoint
from ledger.indexer.reconcile import EXTRA, FIELD, MISSING, STATE, reconcile
from ledger.indexer.runner import Indexer
from ledger.model import Action
from ledger.suite import Suite
from scripts.cli import app
from scripts.demo import run_demo
from tests.ledger.databases import Database

pytestmark = pytest.mark.anvil


@pytest.fixture
def indexed(deployed: tuple[Chain, Suite], database: Database) -> Iterator[Suite]:
    """The demo run and indexed into ``database``; the chain is reverted afterwards."""
    chain, suite = deployed
    snapshot = chain.snapshot()
    run_demo(suite)
    Indexer(chain, suite, database.sessions).run_once()
    yield suite
    chain.revert(snapshot)


def _report(suite: Suite, database: Database):  # type: ignore[no-untyped-def]
    with database.sessions() as session:
        return reconcile(suite.chain, suite.deployment, session)


def _first_touchpoint(database: Database) -> Touchpoint:
    with database.sessions() as session:
        return session.execute(select(Touchpoint).order_by(Touchpoint.id)).scalars().first()  # type: ignore[return-value]


class TestReconcile:
    def test_the_indexed_demo_matches_the_chain(self, indexed: Suite, database: Database):
        report = _report(indexed, database)
        assert report.ok, report.differences
        assert report.counts["touchpoints"].chain == report.counts["touchpoints"].db == 7
        assert all(count.chain == count.db for count in report.counts.values())
        assert report.counts["consent_events"].chain > 0 and report.counts["campaigns"].chain == 1

    def test_nothing_indexed_yet_is_clean_and_compares_nothing(self, deployed: tuple[Chain, Suite], database: Database):
        report = _report(deployed[1], database)
        assert report.ok and report.block is None
        assert all(count.chain == count.db == 0 for count in report.counts.values())

    def test_a_deleted_touchpoint_is_reported_missing(self, indexed: Suite, database: Database):
        gone = _first_touchpoint(database)
        with database.sessions() as session, session.begin():
            session.execute(delete(Touchpoint).where(Touchpoint.id == gone.id))
        report = _report(indexed, database)
        assert not report.ok
        assert [(d.table, d.kind, d.key) for d in report.differences] == [
            ("touchpoints", MISSING, f"{gone.tx_hash}:{gone.log_index}")
        ]
        assert (report.counts["touchpoints"].chain, report.counts["touchpoints"].db) == (7, 6)

    def test_a_tampered_amount_is_reported_with_both_values(self, indexed: Suite, database: Database):
        row = _first_touchpoint(database)
        with database.sessions() as session, session.begin():
            session.execute(update(Touchpoint).where(Touchpoint.id == row.id).values(amount=row.amount + 1))
        report = _report(indexed, database)
        assert [(d.table, d.kind, d.key, d.field, d.db, d.chain) for d in report.differences] == [
            ("touchpoints", FIELD, f"{row.tx_hash}:{row.log_index}", "amount", row.amount + 1, row.amount)
        ]

    @pytest.mark.parametrize("blocks_later", [0, 1_000], ids=["inside the indexed range", "above the checkpoint"])
    def test_a_forged_row_is_reported_extra(self, indexed: Suite, database: Database, blocks_later: int):
        row = _first_touchpoint(database)
        fake_tx = "0x" + "ab" * 32
        with database.sessions() as session, session.begin():
            session.add(Touchpoint(chain_id=row.chain_id, block_number=row.block_number + blocks_later,
                                   block_hash=row.block_hash,
                                   tx_hash=fake_tx, log_index=0, escrow=row.escrow, campaign_id=row.campaign_id,
                                   event_id=999, action=Action(row.action), consumer=row.consumer, amount=1,
                                   evidence_hash=row.evidence_hash, occurred_at=row.occurred_at))  # fmt: skip
        report = _report(indexed, database)
        assert [(d.table, d.kind, d.key) for d in report.differences] == [("touchpoints", EXTRA, f"{fake_tx}:0")]

    def test_per_action_terms_that_disagree_with_the_contract_are_reported(self, indexed: Suite, database: Database):
        with database.sessions() as session, session.begin():
            action = session.execute(select(CampaignAction).where(CampaignAction.action == Action.INSTALL)).scalar_one()
            reward = action.reward
            action.reward = reward + 1
        report = _report(indexed, database)
        assert [(d.table, d.field, d.db, d.chain) for d in report.differences] == [
            ("campaign_actions", "reward", reward + 1, reward)
        ]

    def test_derived_state_that_disagrees_with_the_contracts_is_reported(self, indexed: Suite, database: Database):
        with database.sessions() as session, session.begin():
            owed = session.execute(select(Campaign.owed)).scalar_one()
            session.execute(update(Campaign).values(owed=owed + 5))
            session.execute(delete(Consent).where(Consent.id == select(Consent.id).limit(1).scalar_subquery()))
        report = _report(indexed, database)
        found = {(d.table, d.kind, d.field) for d in report.differences}
        assert found == {("campaigns", STATE, "owed"), ("consents", STATE, "exists")}


class TestCommand:
    def _env(self, suite: Suite, database: Database, tmp_path: Path) -> dict[str, str]:
        suite.deployment.save(tmp_path / "deployment.json")
        url = suite.chain.w3.provider.endpoint_uri  # type: ignore[attr-defined]
        return {
            "ADLEDGER_CHAIN": str(url),
            "ADLEDGER_DATA_DIR": str(tmp_path),
            "ADLEDGER_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
        }

    def test_exits_0_when_the_database_matches_the_chain(self, indexed: Suite, database: Database, tmp_path: Path):
        result = CliRunner().invoke(app, ["reconcile"], env=self._env(indexed, database, tmp_path))
        assert result.exit_code == 0, result.output
        assert "no differences" in result.output and "touchpoints" in result.output

    def test_exits_1_and_lists_the_difference(self, indexed: Suite, database: Database, tmp_path: Path):
        row = _first_touchpoint(database)
        with database.sessions() as session, session.begin():
            session.execute(update(Touchpoint).where(Touchpoint.id == row.id).values(amount=row.amount + 1))
        result = CliRunner().invoke(app, ["reconcile"], env=self._env(indexed, database, tmp_path))
        assert result.exit_code == 1, result.output
        assert "1 differences" in result.output and "amount" in result.output
