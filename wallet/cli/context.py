"""What every ``adledger wallet`` command shares: the global options, which wallet, its password, the API client,
and the rule for failures (one red line, a help line, the error's exit code, no traceback).

Passwords come from ``--password-file``, else $ADLEDGER_WALLET_PASSWORD, else a hidden prompt (confirmed when a
keystore is written); never from an argument, which ``ps`` and shell history would show. They are passed to the
keystore and nowhere else.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from ledger.errors import LedgerError
from wallet.client import ApiClient, LockedWallet
from wallet.errors import NoWallet, WalletError, WalletNotChosen, WalletStorageError
from wallet.keystore import Keystore
from wallet.sessions import SessionCache
from wallet.wallet import Wallet

PASSWORD_ENV = "ADLEDGER_WALLET_PASSWORD"
API_ENV = "ADLEDGER_API_URL"
ADDRESS_ENV = "ADLEDGER_WALLET_ADDRESS"
RPC_ENV = "ADLEDGER_RPC_URL"

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Options:
    """The global options (``adledger wallet --wallet-dir … --address … --api … --rpc … COMMAND``)."""

    keystore: Keystore
    address: str | None
    api: str
    rpc: str
    password_file: Path | None
    _unlocked: dict[str, Wallet] = field(default_factory=dict)

    @property
    def wallet_dir(self) -> Path:
        return self.keystore.directory

    def chosen(self) -> str:
        """The wallet to act as: ``--address``, else the wallet dir's only one."""
        if self.address is not None:
            return self.keystore.find(self.address).address  # InvalidAddress, KeystoreNotFound
        addresses = [entry.address for entry in self.keystore.list()]
        if not addresses:
            raise NoWallet(self.wallet_dir)
        if len(addresses) > 1:
            raise WalletNotChosen(self.wallet_dir, addresses)
        return addresses[0]

    def password(self, address: str | None = None, *, new: bool = False) -> str:
        """The password of ``address`` (or, with ``new``, for a keystore about to be written)."""
        if self.password_file is not None:
            try:
                text = self.password_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise WalletStorageError(self.password_file, reason) from None
            return text.removesuffix("\n").removesuffix("\r")  # the line end an editor adds is not the password
        from_env = os.environ.get(PASSWORD_ENV)
        if from_env is not None:
            return from_env
        prompt = "Password for the new keystore" if new else f"Password of {address}"
        password: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=new)
        return password

    def unlock(self, address: str) -> Wallet:
        """The decrypted wallet (the password is asked once per command)."""
        if address not in self._unlocked:
            self._unlocked[address] = Wallet.load(address, self.password(address), self.wallet_dir)
        return self._unlocked[address]

    def client(self) -> ApiClient:
        """A client of ``--api`` for the chosen wallet, with the wallet dir's session cache."""
        address = self.chosen()
        locked = LockedWallet(address, lambda: self.unlock(address))
        return ApiClient(self.api, locked, SessionCache.in_dir(self.wallet_dir), rpc_url=self.rpc)


def options(ctx: typer.Context) -> Options:
    found = ctx.find_object(Options)
    if found is None:  # the group callback always sets it; a command invoked on its own would not
        raise WalletError("the wallet's global options are missing (invoke the command through `adledger wallet`)")
    return found


def reports_errors(command: F) -> F:
    """An expected failure prints ``error: <message>`` in red and how to fix it, then exits with its exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except WalletError as exc:
            fail(str(exc), exc.help, exc.exit_code)
        except LedgerError as exc:
            fail(f"{exc} ({exc.code})", exc.help, 1)

    return wrapper  # type: ignore[return-value]


def fail(message: str, help_text: str | None, exit_code: int) -> None:
    err.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    if help_text:
        err.print(Text(f"  {help_text}", style="dim"), soft_wrap=True)
    raise typer.Exit(code=exit_code)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout: pydantic answers as the API wrote them (amounts as decimal strings)."""
    typer.echo(json.dumps(_plain(data), indent=2))


def _plain(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [_plain(item) for item in data]
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    return data
