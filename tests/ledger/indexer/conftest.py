"""The indexer's anvil: one throwaway devnet with the suite deployed per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.chain import Chain, connect
from ledger.settings import Settings
from ledger.suite import Suite


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Chain, Suite]]:
    settings = Settings(chain="anvil", data_dir=Path(tmp_path_factory.mktemp("anvil")), anvil_state=False)
    with connect(settings) as chain:
        yield chain, Suite.deploy(chain)
