"""Artifacts are committed so running needs no compiler; these tests catch artifacts that no longer match."""

from __future__ import annotations

import json

import pytest

from ledger.contracts import ARTIFACTS_DIR, artifact_names
from scripts.compile import CONTRACTS_DIR, EVM_VERSION, SOLC_VERSION, build_artifacts, collect_sources, compile_sources


def test_every_artifact_was_built_from_the_current_sources():
    digest = collect_sources().digest
    stale = [
        name
        for name in artifact_names()
        if json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())["sourceHash"] != digest
    ]
    assert stale == [], f"recompile with `adledger compile`: {stale} do not match contracts/"


def test_every_deployable_contract_has_an_artifact():
    expected = {"RewardToken", "ConsentRegistry", "CampaignEscrow", "NaiveEscrow"}
    assert expected <= set(artifact_names())
    assert all(
        (CONTRACTS_DIR / f"{name}.sol").exists() for name in ("RewardToken", "ConsentRegistry", "CampaignEscrow")
    )


def test_artifacts_pin_the_compiler_and_the_evm_version_both_backends_run():
    for name in artifact_names():
        compiler = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())["compiler"]
        assert compiler["version"] == SOLC_VERSION
        assert compiler["settings"]["evmVersion"] == EVM_VERSION == "prague"
        assert compiler["settings"]["optimizer"]["enabled"] is True


@pytest.mark.slow
def test_recompiling_reproduces_the_committed_bytecode():
    sources = collect_sources()
    fresh = build_artifacts(sources, compile_sources(sources))
    for name, built in fresh.items():
        committed = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert built["bytecode"] == committed["bytecode"], name
        assert built["abi"] == committed["abi"], name
