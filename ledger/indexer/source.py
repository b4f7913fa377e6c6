"""Where the indexer reads the chain: raw eth_getLogs in adaptive block ranges, block headers, retries.

Raw JSON-RPC (``provider.make_request``) skips web3's result formatters, which cost ~10x the request itself on
large pages (TOOLCHAIN.md). Ranges halve when a node refuses a large result and grow while pages stay small, so
one code path serves anvil (no limits), public RPCs (10k-log or 2k-block caps) and everything between. Transient
failures (timeouts, dropped connections, 429/5xx) are retried with exponential backoff; what still fails
surfaces as a ChainError, and the caller resumes from its checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from web3.types import RPCEndpoint

from ledger.chain import Chain
from ledger.errors import ChainError

# How nodes say a log query is too large (geth, erigon, besu, alchemy, infura, quicknode): shrink the range.
_TOO_LARGE = (
    "query returned more than",
    "too many results",
    "response size",
    "block range",
    "range is too large",
    "limit exceeded",
    "query timeout",
)
# How they say "not now": retry the same request after a pause.
_TRANSIENT = ("rate limit", "too many requests", "temporarily unavailable", "try again")


@dataclass(frozen=True)
class BlockRef:
    """A block as reorg detection needs it."""

    number: int
    hash: str
    parent_hash: str


class RangeTooLarge(Exception):
    """The node refused a log query for its size; the range should shrink."""


@dataclass
class LogSource:
    """Raw log pages and headers for a set of contract addresses, with adaptive ranges and retries."""

    chain: Chain
    addresses: Sequence[str]
    initial_range: int = 2_000
    max_range: int = 50_000
    small_page: int = 2_000  # logs: a page below this lets the range grow
    max_page_logs: int = 10_000  # logs: a bigger page is split, so memory stays flat however dense the chain
    retries: int = 5
    backoff: float = 0.2  # seconds, doubled each retry
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.span = self.initial_range

    # -- requests -------------------------------------------------------------------------------------------

    def _request(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call, retried on transport errors; an error answer is returned for the caller to judge."""
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                response = self.chain.w3.provider.make_request(RPCEndpoint(method), params)
            except (OSError, ValueError, TimeoutError) as exc:  # connection refused/reset, timeouts, bad JSON
                if attempt == self.retries:
                    raise ChainError(f"{method} failed after {self.retries + 1} attempts: {exc}") from exc
                self.sleep(delay)
                delay *= 2
                continue
            error = response.get("error")
            if error and _is_transient(error) and attempt < self.retries:
                self.sleep(delay)
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")

    def head(self) -> int:
        """The latest block number."""
        return int(self._result("eth_blockNumber", []), 16)

    def block(self, number: int) -> BlockRef:
        """The header of block ``number`` (hash and parent hash), raising if the node does not have it."""
        header = self._result("eth_getBlockByNumber", [hex(number), False])
        if header is None:
            raise ChainError(f"the node has no block {number}")
        return BlockRef(number, str(header["hash"]).lower(), str(header["parentHash"]).lower())

    def _result(self, method: str, params: list[Any]) -> Any:
        response = self._request(method, params)
        if "error" in response:
            raise ChainError(f"{method} answered an error: {response['error']}")
        return response["result"]

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        """The raw logs of the addresses in blocks [start, end]; RangeTooLarge when the node refuses the size."""
        query = {"fromBlock": hex(start), "toBlock": hex(end), "address": list(self.addresses)}
        response = self._request("eth_getLogs", [query])
        error = response.get("error")
        if error:
            if _is_too_large(error) and end > start:
                raise RangeTooLarge(str(error))
            raise ChainError(f"eth_getLogs [{start}, {end}] answered an error: {error}")
        return list(response["result"])

    # -- paging ---------------------------------------------------------------------------------------------

    def pages(self, start: int, end: int) -> Iterator[tuple[int, int, list[dict[str, Any]]]]:
        """(first block, last block, logs) pages covering [start, end] in order, sized adaptively."""
        cursor = start
        while cursor <= end:
            last = min(end, cursor + self.span - 1)
            try:
                page = self.logs(cursor, last)
                if len(page) > self.max_page_logs and last > cursor:
                    raise RangeTooLarge(f"{len(page)} logs in blocks [{cursor}, {last}]")
            except RangeTooLarge:
                self.span = max(1, (last - cursor + 1) // 2)
                continue
            yield cursor, last, page
            if len(page) < self.small_page and self.span < self.max_range:
                self.span = min(self.max_range, self.span * 2)
            cursor = last + 1


def _message(error: Any) -> str:
    return str(error.get("message", error) if isinstance(error, dict) else error).lower()


def _is_too_large(error: Any) -> bool:
    code = error.get("code") if isinstance(error, dict) else None
    return code == -32005 or any(phrase in _message(error) for phrase in _TOO_LARGE)


def _is_transient(error: Any) -> bool:
    code = error.get("code") if isinstance(error, dict) else None
    return not _is_too_large(error) and (code == 429 or any(phrase in _message(error) for phrase in _TRANSIENT))
