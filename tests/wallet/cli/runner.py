"""`adledger wallet …` through typer's test runner, as a consumer types it, and what a failure must look like."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner, Result

from wallet.cli import wallet_app
from wallet.cli.context import ADDRESS_ENV, PASSWORD_ENV

# rich wraps tables at 80 columns when stdout is not a terminal; at 250 an address or a tx hash stays on one line
WIDE = {"COLUMNS": "250"}
# nothing listens on port 9 (discard) of the loopback: an API that is down, or no JSON-RPC node
NO_API = NO_RPC = "http://127.0.0.1:9"


class Cli:
    """``adledger wallet --wallet-dir D --api URL --rpc URL …``; the password only where given (never from the
    caller's environment), no wallet chosen by the environment either. The node is never the default 8545, where
    a developer's own `make run` may be listening."""

    def __init__(self, api_url: str, wallet_dir: Path, rpc_url: str = NO_RPC) -> None:
        self.api_url = api_url
        self.wallet_dir = wallet_dir
        self.rpc_url = rpc_url

    def __call__(
        self, *args: str, password: str | None = None, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        environment: dict[str, str | None] = {**WIDE, PASSWORD_ENV: password, ADDRESS_ENV: None, **(env or {})}
        options = ["--wallet-dir", str(self.wallet_dir), "--api", self.api_url, "--rpc", self.rpc_url]
        return CliRunner().invoke(wallet_app, [*options, *args], env=environment, input=input)


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """The failure is told on stderr in one `error:` line holding each fragment (a help line may follow), and no
    exception escaped (typer's Exit is a SystemExit) to print a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output
