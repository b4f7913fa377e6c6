"""Where the indexer reads the chain: raw eth_getLogs pages sized to the log density, and block headers.

Pages are sized by what the last one held: the next range aims at ``target_page_logs`` logs, grows at most 8x
after a sparse page and shrinks at once after a dense one, starting from a single block, so the first probe of
an unknown range never fetches its whole history (memory stays flat in the number of logs) and a sparse chain
still reaches ``max_range`` blocks per request within a few pages. A node that refuses a large result (public
RPCs cap logs or blocks per request) halves the range; a page above ``max_page_logs`` is split the same way.

For a page near the head (``anchor_from``), the header of its last block is read before its logs: the caller
reads it again afterwards, and equal hashes prove the logs came from one chain. (Fetching a page ahead in a
second thread was tried and dropped: the indexer already writes in a background thread while it fetches, and
a third thread parsing JSON only fought the other two for the GIL; bench index was no faster, PostgreSQL slower.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.chain import Chain
from ledger.errors import ChainError
from ledger.indexer.rpc import RpcClient, is_too_large


@dataclass(frozen=True)
class BlockRef:
    """A block as reorg detection needs it."""

    number: int
    hash: str
    parent_hash: str


@dataclass(frozen=True)
class Page:
    """The raw logs of blocks [first, last]; ``anchor`` is the last block's header read before the logs."""

    first: int
    last: int
    logs: list[dict[str, Any]]
    anchor: BlockRef | None = None


class RangeTooLarge(Exception):
    """The node refused a log query for its size; the range should shrink."""


@dataclass
class LogSource:
    """Raw log pages and headers for a set of contract addresses, with density-sized ranges and retries."""

    chain: Chain
    addresses: Sequence[str]
    initial_range: int = 1
    max_range: int = 50_000
    target_page_logs: int = 5_000
    max_page_logs: int = 10_000  # a bigger page is split, so memory stays flat however dense the chain
    rpc: RpcClient | None = None
    span: int = field(init=False)

    def __post_init__(self) -> None:
        self.span = self.initial_range
        if self.rpc is None:
            self.rpc = RpcClient(self.chain)

    @property
    def client(self) -> RpcClient:
        assert self.rpc is not None
        return self.rpc

    # -- requests -------------------------------------------------------------------------------------------

    def head(self) -> int:
        """The latest block number."""
        return int(self.client.result("eth_blockNumber", []), 16)

    def block(self, number: int) -> BlockRef:
        """The header of block ``number`` (hash and parent hash), raising if the node does not have it."""
        header = self.client.result("eth_getBlockByNumber", [hex(number), False])
        if header is None:
            raise ChainError(f"the node has no block {number}")
        return BlockRef(number, str(header["hash"]).lower(), str(header["parentHash"]).lower())

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """The raw logs of the addresses in blocks [start, end]; RangeTooLarge when the node refuses the size."""
        query = {"fromBlock": hex(start), "toBlock": hex(end), "address": list(self.addresses)}
        response = self.client.request("eth_getLogs", [query])
        error = response.get("error")
        if error:
            if is_too_large(error) and end > start:
                raise RangeTooLarge(str(error))
            raise ChainError(f"eth_getLogs [{start}, {end}] answered an error: {error}")
        result = response.get("result")
        if not isinstance(result, list):
            raise ChainError(f"eth_getLogs [{start}, {end}] answered {type(result).__name__}, not a list of logs")
        return result

    # -- paging ---------------------------------------------------------------------------------------------

    def pages(self, start: int, end: int, anchor_from: int | None = None) -> Iterator[Page]:
        """Pages covering [start, end] in order; pages ending at or above ``anchor_from`` carry an anchor."""
        cursor = start
        while cursor <= end:
            last = min(end, cursor + self.span - 1)
            anchor = self.block(last) if anchor_from is not None and last >= anchor_from else None
            try:
                logs = self.logs(cursor, last)
            except RangeTooLarge:
                self.span = max(1, (last - cursor + 1) // 2)
                continue
            blocks = last - cursor + 1
            if len(logs) > self.max_page_logs and blocks > 1:
                self.span = max(1, min(blocks // 2, blocks * self.target_page_logs // len(logs)))
                continue
            yield Page(cursor, last, logs, anchor)
            self.span = self._next_span(blocks, len(logs))
            cursor = last + 1

    def _next_span(self, blocks: int, count: int) -> int:
        """The range aiming at ``target_page_logs`` at the density just seen, growing at most 8x a page."""
        grown = min(self.max_range, blocks * 8)
        if count == 0:
            return grown
        return max(1, min(grown, blocks * self.target_page_logs // count))
