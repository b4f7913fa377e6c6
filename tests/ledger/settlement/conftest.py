"""The batcher's anvil: the indexer tests' module-scoped devnet fixture, imported rather than copied."""

from tests.ledger.indexer.conftest import deployed

__all__ = ["deployed"]
