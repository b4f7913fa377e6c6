"""source.py pages raw logs adaptively from a real anvil, retries what is transient, and reads headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ledger.chain import Chain, connect
from ledger.errors import ChainError
from ledger.indexer.decode import decode_logs
from ledger.indexer.rpc import RpcClient
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
    return LogSource(chain, [suite.escrow.address, suite.registry.address], **options)


def _contracts(suite: Suite) -> dict[str, str]:
    return {suite.escrow.address.lower(): "CampaignEscrow", suite.registry.address.lower(): "ConsentRegistry"}


class TestPages:
    def test_pages_cover_every_block_once_and_in_order(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=3)
        head = source.head()
        pages = list(source.pages(0, head))
        covered = [block for page in pages for block in range(page.first, page.last + 1)]
        assert covered == list(range(0, head + 1))
        logs = [log for page in pages for log in page.logs]
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
        assert all(page.last - page.first + 1 <= 4 for page in pages)
        assert [b for page in pages for b in range(page.first, page.last + 1)] == list(range(0, head + 1))

    def test_a_page_with_too_many_logs_is_split_so_memory_stays_flat(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=1_000, max_page_logs=3)
        pages = list(source.pages(0, source.head()))
        assert all(len(page.logs) <= 3 or page.first == page.last for page in pages)
        assert [b for page in pages for b in range(page.first, page.last + 1)] == list(range(0, source.head() + 1))

    def test_the_range_follows_the_log_density(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, target_page_logs=4)
        pages = list(source.pages(0, source.head()))
        assert pages[0].last == pages[0].first  # the first probe is one block, whatever lies ahead
        spans = [page.last - page.first + 1 for page in pages]
        assert all(b <= 8 * a for a, b in zip(spans, spans[1:], strict=False))  # growth is bounded per page
        assert max(len(page.logs) for page in pages) <= source.max_page_logs

    def test_pages_near_the_head_carry_the_header_read_before_their_logs(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=4)
        head = source.head()
        pages = list(source.pages(0, head, anchor_from=head - 3))
        assert all((page.anchor is not None) == (page.last >= head - 3) for page in pages)
        assert pages[-1].anchor == source.block(head)

    def test_small_pages_let_the_range_grow(self, seeded: tuple[Chain, Suite]):
        chain, suite = seeded
        source = _source(chain, suite, initial_range=1, max_range=8)
        list(source.pages(0, source.head()))
        assert source.span == 8


class TestRetries:
    """RpcClient retries transport failures and "not now" answers with backoff (over real HTTP to anvil; the
    proxy-based faults are in test_reliability.py)."""

    def _flaky_post(self, monkeypatch: pytest.MonkeyPatch, failures: list[Any]) -> None:
        real = requests.Session.post
        queue = iter(failures)

        def post(session: requests.Session, *args: Any, **kwargs: Any) -> Any:
            failure = next(queue, None)
            if isinstance(failure, BaseException):
                raise failure
            if failure is not None:
                answer = requests.Response()
                answer.status_code, answer._content = failure
                return answer
            return real(session, *args, **kwargs)

        monkeypatch.setattr(requests.Session, "post", post)

    def test_a_dropped_connection_is_retried_with_backoff(self, seeded: tuple[Chain, Suite], monkeypatch):
        chain, suite = seeded
        pauses: list[float] = []
        rpc = RpcClient(chain, sleep=pauses.append, backoff=0.1)
        source = LogSource(chain, [suite.escrow.address], rpc=rpc)
        self._flaky_post(monkeypatch, [requests.ConnectionError("reset"), requests.Timeout("timed out")])
        assert source.head() == chain.w3.eth.block_number
        assert pauses == [0.1, 0.2]

    def test_a_rate_limit_answer_is_retried_and_a_dead_node_gives_up_clearly(self, seeded, monkeypatch):
        chain, suite = seeded
        source = LogSource(chain, [suite.escrow.address], rpc=RpcClient(chain, retries=2, sleep=lambda _: None))
        busy = b'{"jsonrpc": "2.0", "id": 1, "error": {"code": 429, "message": "Too Many Requests"}}'
        self._flaky_post(monkeypatch, [(200, busy), (503, b"Service Unavailable")])
        assert source.head() > 0

        self._flaky_post(monkeypatch, [requests.ConnectionError("refused")] * 3)
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
