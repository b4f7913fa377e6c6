"""Whether a service built on ledger can do its work: database reachable, the deployment's chain reachable, and how
far the indexer trails the chain head. Served by the API's /readyz; nothing here is HTTP."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from ledger.chain import Chain
from ledger.crm.onchain import IndexCheckpoint
from ledger.indexer.checkpoint import contract_set_key
from ledger.suite import Deployment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Readiness:
    """Each check's outcome (``"ok"`` or what is wrong) and the figures read on the way."""

    checks: dict[str, str] = field(default_factory=dict)
    chain_id: int | None = None
    head: int | None = None  # the chain's latest block
    indexed_block: int | None = None  # the indexer's checkpoint for the deployment
    indexer_lag: int | None = None  # head - indexed_block, in blocks

    @property
    def ready(self) -> bool:
        return all(outcome == "ok" for outcome in self.checks.values())


def check_readiness(
    sessions: sessionmaker[Session] | None, chain: Chain | None, deployment: Deployment | None
) -> Readiness:
    """Runs every check, never raising: a probe must answer even when everything is down.

    Chain and database errors come in many types (driver, HTTP, web3), so each check catches Exception: the
    failure is reported, and logged with its traceback, rather than hidden behind the first one.
    """
    checks: dict[str, str] = {}
    checks["database"], indexed = _database(sessions, deployment)
    checks["deployment"] = "ok" if deployment is not None else "no deployment manifest: run `adledger deploy`"
    chain_id = head = None
    if chain is None:
        checks["chain"] = "not connected"
    else:
        try:
            chain_id, head = int(chain.w3.eth.chain_id), int(chain.w3.eth.block_number)
        except Exception as exc:  # see the docstring
            log.warning("readiness: chain unreachable", exc_info=True)
            checks["chain"] = f"unreachable: {type(exc).__name__}"
        else:
            checks["chain"] = "ok"
            if deployment is not None and deployment.chain_id != chain_id:
                checks["chain"] = f"chain id {chain_id}, the deployment is for chain {deployment.chain_id}"
    lag = None if head is None or indexed is None else max(head - indexed, 0)
    return Readiness(checks, chain_id, head, indexed, lag)


def _database(sessions: sessionmaker[Session] | None, deployment: Deployment | None) -> tuple[str, int | None]:
    """The database check, and the indexer's checkpoint for the deployment (None before its first page)."""
    if sessions is None:
        return "not started", None
    try:
        with sessions() as session:
            if deployment is None:
                session.execute(text("SELECT 1"))
                return "ok", None
            key = contract_set_key([deployment.escrow, deployment.registry])  # the set `adledger index` follows
            indexed = session.scalar(
                select(IndexCheckpoint.block_number).where(
                    IndexCheckpoint.chain_id == deployment.chain_id, IndexCheckpoint.contract_set == key
                )
            )
    except Exception as exc:  # see check_readiness
        log.warning("readiness: database unreachable", exc_info=True)
        return f"unreachable: {type(exc).__name__}", None
    return "ok", indexed
