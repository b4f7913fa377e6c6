"""wallet.chain_clock: the latest block's time from a node of the right chain, and nothing from anything else."""

from __future__ import annotations

import pytest

from ledger.chain import Chain
from ledger.suite import Suite
from tests.ledger.indexer.conftest import deployed
from wallet.chain_clock import chain_time

__all__ = ["deployed"]


@pytest.mark.anvil
def test_the_latest_blocks_time_of_the_chain_asked_for(deployed: tuple[Chain, Suite]):
    chain, _ = deployed
    url = str(chain.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    snapshot = chain.snapshot()
    try:
        ahead = chain.increase_time(3 * 3600)
        assert chain_time(url, chain.chain_id) == ahead == chain.latest_timestamp()
        assert chain_time(url, chain.chain_id + 1) is None  # a node of another chain says nothing of this one
    finally:
        chain.revert(snapshot)


@pytest.mark.parametrize("url", [None, "", "http://127.0.0.1:9", "not a url"])
def test_no_node_no_time(url: str | None):
    assert chain_time(url, 31337) is None
