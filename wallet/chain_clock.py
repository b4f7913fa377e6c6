"""The chain's clock, read from a JSON-RPC node when one answers: signature deadlines and consent expiries are
compared with ``block.timestamp``, not with this machine's clock.

On a public chain the two agree within seconds. A devnet runs ahead of the wall clock after time travel (tests do
it; `adledger demo` moves anvil an hour past its campaign's end, and a persisted devnet stays there), so a deadline
of "now + 1 hour" by the wall clock would already have passed on chain. The wallet therefore counts from the later
of the two clocks. The node is optional: when none answers (a consumer with no node of their own), the wall clock
is used.
"""

from __future__ import annotations

import httpx

TIMEOUT = 2.0  # a local node answers in milliseconds; a node that does not answer must not stall a command


def chain_time(rpc_url: str | None, chain_id: int) -> int | None:
    """The latest block's timestamp on the node at ``rpc_url``, if it answers and serves chain ``chain_id``."""
    if not rpc_url:
        return None
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["latest", False]},
    ]
    try:
        answers = {answer["id"]: answer["result"] for answer in httpx.post(rpc_url, json=batch, timeout=TIMEOUT).json()}
        if int(answers[1], 16) != chain_id:
            return None
        return int(answers[2]["timestamp"], 16)
    except (httpx.HTTPError, ValueError, KeyError, TypeError):  # no node there, or not one that speaks JSON-RPC
        return None
