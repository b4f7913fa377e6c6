"""A JSON-RPC proxy in front of anvil that misbehaves on cue, the way real nodes and networks do.

A test queues faults per method (``proxy.fault("eth_getLogs", Drop(), Delay(1.0))``): each request of that method
takes the next one, and a method whose queue is empty is passed through, or gets the fault set with
``proxy.always``. Every request is recorded in ``proxy.requests`` as (method, params); batch requests are passed
through untouched and unrecorded. The stdlib serves it (ThreadingHTTPServer, keep-alive like a node).

    with RpcProxy(anvil_url) as proxy:
        proxy.fault("eth_blockNumber", Drop())  # the first eth_blockNumber finds the connection closed
        chain = proxy_chain(proxy, accounts, timeout=0.3)  # a Chain whose requests go through the proxy
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from web3 import HTTPProvider, Web3

from ledger.chain import Chain, DevAccounts


@dataclass(frozen=True)
class Pass:
    """Forwarded untouched: queued before other faults, it lets that many requests through first."""


@dataclass(frozen=True)
class Delay:
    """Answers (upstream's answer) only after ``seconds``: past the client's timeout, it is a hung node."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Closes the connection without answering, as a node restarting or a load balancer cutting off does."""


@dataclass(frozen=True)
class HttpError:
    """An HTTP error status with a JSON-RPC error body (429 is how most providers rate-limit)."""

    status: int = 429
    message: str = "Too Many Requests"


@dataclass(frozen=True)
class RpcError:
    """HTTP 200 carrying a JSON-RPC error object instead of a result."""

    code: int = 429
    message: str = "Too Many Requests"
    data: Any = None


@dataclass(frozen=True)
class Rewrite:
    """Upstream's answer with its result replaced by ``result(upstream result, request params)``."""

    result: Callable[[Any, list[Any]], Any]


Fault = Pass | Delay | Drop | HttpError | RpcError | Rewrite


def served_twice(result: Any, params: list[Any]) -> Any:
    """An eth_getLogs result with every log in it twice: the same block range served twice in one answer."""
    return result + result if isinstance(result, list) else result


class RpcProxy:
    """Listens on a free loopback port and forwards to ``upstream`` unless a fault is queued for the method."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.requests: list[tuple[str, list[Any]]] = []
        self._queues: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._always: dict[str, Fault] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="rpc-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RpcProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()  # a Delay still sleeping gives up and drops its connection
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # -- scripting --------------------------------------------------------------------------------------------

    def fault(self, method: str, *faults: Fault) -> None:
        """Queues ``faults`` for the next requests of ``method``, one each, in order."""
        with self._lock:
            self._queues[method].extend(faults)

    def always(self, method: str, fault: Fault | None) -> None:
        """Applies ``fault`` to every request of ``method`` once its queue is empty (None: pass through)."""
        with self._lock:
            if fault is None:
                self._always.pop(method, None)
            else:
                self._always[method] = fault

    def pending(self) -> int:
        """Queued faults not served yet."""
        with self._lock:
            return sum(len(queue) for queue in self._queues.values())

    def calls(self, method: str) -> list[list[Any]]:
        """The params of every request of ``method`` so far, in arrival order."""
        with self._lock:
            return [params for name, params in self.requests if name == method]

    def _take(self, method: str, params: list[Any]) -> Fault | None:
        with self._lock:
            self.requests.append((method, params))
            queue = self._queues[method]
            return queue.popleft() if queue else self._always.get(method)

    def _forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(self.upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a node answers
    # Headers and body go out in two writes: with Nagle's algorithm on, each answer would wait ~40 ms for the
    # client's delayed ACK.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        proxy: RpcProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = json.loads(body)
        single = isinstance(request, dict)
        fault = proxy._take(request["method"], request.get("params", [])) if single else None
        if isinstance(fault, Delay) and proxy._stopping.wait(fault.seconds):
            fault = Drop()  # the proxy is stopping: nobody waits for this answer any more
        try:
            if isinstance(fault, Drop):
                self.close_connection = True  # nothing written: the client reads EOF where the answer should be
                return
            if isinstance(fault, HttpError):
                error = {"code": fault.status, "message": fault.message}
                self._answer(fault.status, {"jsonrpc": "2.0", "id": request.get("id"), "error": error})
                return
            if isinstance(fault, RpcError):
                error = {"code": fault.code, "message": fault.message}
                if fault.data is not None:
                    error["data"] = fault.data
                self._answer(200, {"jsonrpc": "2.0", "id": request.get("id"), "error": error})
                return
            answer = proxy._forward(body)
            if isinstance(fault, Rewrite):
                decoded = json.loads(answer)
                if "result" in decoded:
                    decoded["result"] = fault.result(decoded["result"], request.get("params", []))
                answer = json.dumps(decoded).encode()
            self._send(200, answer)
        except OSError:  # the client gave up first (a Delay past its timeout): nobody is left to answer
            self.close_connection = True

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Silent: pytest shows what failed, not every request."""


def proxy_chain(proxy: RpcProxy, accounts: DevAccounts, timeout: float) -> Chain:
    """A Chain whose requests go through ``proxy``; web3's own calls time out after ``timeout`` seconds and are
    not retried by web3 (the indexer's reads go through its own client, with its own timeout and retries)."""
    provider = HTTPProvider(proxy.url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    return Chain(Web3(provider), "rpc", accounts)
