"""Compile contracts/**/*.sol into ledger/artifacts/, with one pinned compiler and EVM version.

Imports are resolved here (``contracts/`` relative paths and ``@openzeppelin/`` from node_modules) and every
source goes into the standard-JSON input with its content, so the compiler needs no filesystem access: py-solc-x
drives either a native solc of the pinned version, when one is installed, or ``scripts/solc-js``, a thin wrapper
around solc-js from npm. Artifacts carry a sha256 of the sources and settings; a test compares it with the tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS_DIR = ROOT / "contracts"
ARTIFACTS_DIR = ROOT / "ledger" / "artifacts"
NODE_MODULES = ROOT / "node_modules"
SOLC_JS = ROOT / "scripts" / "solc-js"

SOLC_VERSION = "0.8.37"
# Prague: py-evm (eth-tester) stops there and anvil runs it with --hardfork prague; solc 0.8.37 defaults to osaka.
EVM_VERSION = "prague"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 10_000},
    "viaIR": True,
    "evmVersion": EVM_VERSION,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}

_IMPORT = re.compile(r"""^\s*import\s+(?:[^;]*?\s+from\s+)?["']([^"']+)["']\s*;""", re.MULTILINE)


class CompileError(Exception):
    """Raised when solc reports errors, or no compiler of the pinned version can be found."""


@dataclass(frozen=True)
class Sources:
    """The import closure of contracts/: source unit name -> content."""

    files: dict[str, str]

    @property
    def digest(self) -> str:
        """sha256 over every source and the compiler settings: what an artifact must have been built from."""
        h = hashlib.sha256()
        h.update(json.dumps({"solc": SOLC_VERSION, "settings": SETTINGS}, sort_keys=True).encode())
        for name in sorted(self.files):
            h.update(name.encode() + b"\0" + self.files[name].encode() + b"\0")
        return "sha256:" + h.hexdigest()


def _resolve(importer: str, target: str) -> str:
    if target.startswith("."):
        parts: list[str] = importer.split("/")[:-1]
        for piece in target.split("/"):
            if piece == "..":
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        return "/".join(parts)
    return target


def _read_unit(name: str) -> str:
    path = NODE_MODULES / name if name.startswith("@") else ROOT / name
    if not path.is_file():
        hint = " (run `npm ci` for @openzeppelin)" if name.startswith("@") else ""
        raise CompileError(f"cannot find source {name!r} at {path}{hint}")
    return path.read_text(encoding="utf-8")


def collect_sources(roots: Iterable[Path] | None = None) -> Sources:
    """Every contracts/**/*.sol and, transitively, everything they import."""
    pending = [p.relative_to(ROOT).as_posix() for p in (roots or sorted(CONTRACTS_DIR.rglob("*.sol")))]
    files: dict[str, str] = {}
    while pending:
        name = pending.pop()
        if name in files:
            continue
        files[name] = _read_unit(name)
        pending.extend(_resolve(name, target) for target in _IMPORT.findall(files[name]))
    return Sources(files)


def _solc_binary() -> Path:
    """A native solc of the pinned version if one is on PATH or installed by py-solc-x, else the solc-js wrapper."""
    import solcx

    native = shutil.which("solc")
    candidates = [Path(native)] if native else []
    # py-solc-x raises several exception types when no solc of that version is installed
    with contextlib.suppress(Exception):
        candidates.append(Path(solcx.install.get_executable(SOLC_VERSION)))
    for candidate in candidates:
        try:
            if str(solcx.wrapper.get_solc_version(candidate)) == SOLC_VERSION:
                return candidate
        except Exception:  # noqa: BLE001 - a broken binary is simply not a candidate
            continue
    if not (NODE_MODULES / "solc").is_dir():
        raise CompileError("no solc found: run `npm ci` to install solc-js")
    return SOLC_JS


def compile_sources(sources: Sources) -> dict[str, Any]:
    """Runs the compiler on the sources; returns solc's standard-JSON output, raising on any error."""
    import solcx

    binary = _solc_binary()
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in sources.files.items()},
        "settings": SETTINGS,
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(standard_input, solc_binary=binary, allow_empty=True)
    except solcx.exceptions.SolcError as exc:
        raise CompileError(str(exc)) from None
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    return output


def build_artifacts(sources: Sources, output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One artifact per deployable contract under contracts/ (interfaces and libraries have no bytecode)."""
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith("contracts/"):
            continue
        for name, compiled in contracts.items():
            bytecode = compiled["evm"]["bytecode"]["object"]
            if not bytecode or not compiled["abi"]:  # interfaces; libraries of internal functions only
                continue
            if name in artifacts:
                raise CompileError(f"two contracts are named {name}: artifacts are keyed by name")
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": compiled["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "compiler": {"version": SOLC_VERSION, "settings": SETTINGS},
                "sourceHash": sources.digest,
            }
    return artifacts


def write_artifacts(artifacts: dict[str, dict[str, Any]], directory: Path = ARTIFACTS_DIR) -> list[Path]:
    """Replaces the artifacts directory's JSON files with these, so a removed contract leaves no stale file."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale.stem not in artifacts:
            stale.unlink()
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = directory / f"{name}.json"
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def own_warnings(output: dict[str, Any]) -> list[str]:
    """The compiler's warnings about contracts/ (OpenZeppelin's own are not ours to fix)."""
    return [
        str(e.get("formattedMessage", e.get("message", "")))
        for e in output.get("errors", [])
        if e.get("severity") == "warning" and str(e.get("sourceLocation", {}).get("file", "")).startswith("contracts/")
    ]


def compile_all() -> tuple[list[Path], list[str]]:
    """Compiles every contract and writes its artifact; returns the written paths and warnings about contracts/."""
    sources = collect_sources()
    output = compile_sources(sources)
    return write_artifacts(build_artifacts(sources, output)), own_warnings(output)


if __name__ == "__main__":
    paths, warnings = compile_all()
    for warning in warnings:
        print(warning, file=sys.stderr)
    for written in paths:
        print(written.relative_to(ROOT))
