"""create_app served for real by uvicorn, over a socket: the lifespan runs, and the problems reach the client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from api.app import create_app
from ledger.chain import free_port
from ledger.settings import Settings


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app on a free loopback port, in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_uvicorn_serves_the_probes_the_api_and_its_problems(served: str, settings: Settings):
    with httpx.Client(base_url=served) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        nonce = client.post("/v1/auth/nonce")
        assert nonce.status_code == 201 and nonce.json()["domain"] == settings.api_domain
        assert client.get("/v1/nope").json()["code"] == "not_found"
        too_large = client.post("/v1/auth/siwe", content=b"x" * (settings.api_max_body_bytes + 1))
        assert (too_large.status_code, too_large.json()["code"]) == (413, "request_too_large")
        assert client.get("/healthz").status_code == 200  # the server still answers afterwards
