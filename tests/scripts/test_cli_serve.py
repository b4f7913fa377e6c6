"""`adledger serve`: uvicorn runs the app built from the settings, on the host and port given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from scripts.cli import app


def test_serve_runs_create_app_with_uvicorn_on_the_given_host_and_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda served, **options: calls.append((served, options)))
    env = {"ADLEDGER_DATA_DIR": str(tmp_path), "ADLEDGER_API_DOMAIN": "api.example:9123"}
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "9123", "--chain", "eth-tester"], env=env)
    assert result.exit_code == 0, result.output
    ((served, options),) = calls
    assert isinstance(served, FastAPI)
    assert (options["host"], options["port"]) == ("0.0.0.0", 9123)
    settings = served.state.settings
    assert (settings.chain, settings.data_dir, settings.api_domain) == ("eth-tester", tmp_path, "api.example:9123")


def test_serve_refuses_a_port_out_of_range():
    result = CliRunner().invoke(app, ["serve", "--port", "70000"])
    assert result.exit_code == 2
