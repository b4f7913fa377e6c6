"""Bodies of the probes: /healthz (the process answers) and /readyz (what the service depends on)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ledger.health import Readiness


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    """Each check's outcome (``ok`` or what is wrong), and how far the indexer trails the chain."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(examples=[{"database": "ok", "deployment": "ok", "chain": "ok"}])
    chain_id: int | None = Field(examples=[31337])
    head: int | None = Field(description="The chain's latest block.")
    indexed_block: int | None = Field(description="The indexer's checkpoint (null before its first page).")
    indexer_lag: int | None = Field(description="head - indexed_block, in blocks.", examples=[2])

    @classmethod
    def of(cls, readiness: Readiness) -> Ready:
        return cls(
            checks=readiness.checks,
            chain_id=readiness.chain_id,
            head=readiness.head,
            indexed_block=readiness.indexed_block,
            indexer_lag=readiness.indexer_lag,
        )
