"""source.py pages raw logs adaptively from a real anvil, retries what is transient, and reads headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.chain import Chain, connect
from ledger.errors import ChainError
from ledger.indexer.decode import decode_logs
from ledger.indexer.source import LogSource, RangeTooLarge
from ledger.settings import Settings
from ledger.suite import Suite
from scripts.demo import run_demo

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Chain, Suite]]:
    settings = Settings(chain="anvil", data_dir=Path(tmp_path_factory.mktemp("anvil")), anvil_state=False)
    with connect(settings) as chain:
        suite = Suite.deploy(chain)
        run_demo(suite)
        run_demo(suite)
        yield chain, suite


def _source(chain: Chain, suite: Suite, **options: Any) -> LogSource:
    return LogSource(chain, [suite.escrow.address, suite.registry.address], sleep=lambda _: None, **options)


def _contracts(suite: Suite) -> dict[str, str]:
    return {suite.escrow.address.lower(): "CampaignEscrow", suite.registry.address.lower(): "ConsentRegistry"}


class TestPages:
    def test_pages_cover_every_block_once_and_in_order(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=3)
        head = source.head()
        pages = list(source.pages(0, head))
        covered = [block for first, last, _ in pages for block in range(first, last + 1)]
        assert covered == list(range(0, head + 1))
        logs = [log for _, _, page in pages for log in page]
        decoded, skipped = decode_logs(logs, _contracts(suite))
        assert skipped == 0  # the address filter already excluded the token
        assert sum(1 for log in decoded if log.name == "Rewarded") == 14  # 7 paid per demo run

    def test_a_refused_range_is_halved_until_the_node_accepts_it(self, seeded: tuple[Chain, Suite], monkeypatch):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=64)
        real = source.logs
        spans: list[int] = []

        def picky(start: int, end: int) -> list[dict[str, Any]]:
            spans.append(end - start + 1)
            if end - start + 1 > 4:
                raise RangeTooLarge("query returned more than 10000 results")
            return real(start, end)

        monkeypatch.setattr(source, "logs", picky)
        head = source.head()
        pages = list(source.pages(0, head))
        refused = spans[: spans.index(next(span for span in spans if span <= 4))]
        assert refused[0] == head + 1 and all(b == a // 2 for a, b in zip(refused, refused[1:], strict=False))
        assert all(last - first + 1 <= 4 for first, last, _ in pages)
        assert [b for first, last, _ in pages for b in range(first, last + 1)] == list(range(0, head + 1))

    def test_a_page_with_too_many_logs_is_split_so_memory_stays_flat(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=1_000, max_page_logs=3)
        pages = list(source.pages(0, source.head()))
        assert all(len(page) <= 3 or first == last for first, last, page in pages)
        assert [b for first, last, _ in pages for b in range(first, last + 1)] == list(range(0, source.head() + 1))

    def test_small_pages_let_the_range_grow(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=1, max_range=8)
        list(source.pages(0, source.head()))
        assert source.span == 8


class TestRetries:
    def test_a_dropped_connection_is_retried_with_backoff(self, seeded: tuple[Chain, Suite], monkeypatch):
        chain, suite = seeded
        pauses: list[float] = []
        source = LogSource(chain, [suite.escrow.address], sleep=pauses.append, backoff=0.1)
        real = chain.w3.provider.make_request
        failures = iter([ConnectionResetError("reset"), TimeoutError("timed out")])

        def flaky(method: Any, params: Any) -> Any:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return real(method, params)

        monkeypatch.setattr(chain.w3.provider, "make_request", flaky)
        assert source.head() == chain.w3.eth.block_number
        assert pauses == [0.1, 0.2]

    def test_a_rate_limit_answer_is_retried_and_a_dead_node_gives_up_clearly(self, seeded, monkeypatch):
        chain, suite = seeded
        source = _source(chain, suite, retries=2)
        real = chain.w3.provider.make_request
        answers = iter([{"jsonrpc": "2.0", "id": 1, "error": {"code": 429, "message": "Too Many Requests"}}])
        monkeypatch.setattr(chain.w3.provider, "make_request", lambda m, p: next(answers, None) or real(m, p))
        assert source.head() > 0

        def dead(method: Any, params: Any) -> Any:
            raise ConnectionRefusedError("refused")

        monkeypatch.setattr(chain.w3.provider, "make_request", dead)
        with pytest.raises(ChainError, match="after 3 attempts"):
            source.head()


def test_headers_chain_by_parent_hash(seeded: tuple[Chain, Suite]):
    chain, suite = seeded
    source = _source(chain, suite)
    head = source.head()
    child, parent = source.block(head), source.block(head - 1)
    assert child.parent_hash == parent.hash
    assert child.hash == "0x" + bytes(chain.w3.eth.get_block(head)["hash"]).hex()
    with pytest.raises(ChainError, match="no block"):
        source.block(head + 1_000)
