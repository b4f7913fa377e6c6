"""Key commands: ``new``, ``import``, ``list``, ``address``, ``export``. None of them talks to the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount
from rich.panel import Panel
from rich.text import Text

from wallet import hd
from wallet.cli import render
from wallet.cli.context import options, out, print_json
from wallet.errors import KeystoreExists, WalletError, WalletStorageError
from wallet.keystore import KeystoreEntry, parse_private_key

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def new(
    ctx: typer.Context,
    mnemonic: Annotated[
        bool, typer.Option("--mnemonic", help="Derive the key from a new 12-word mnemonic, shown once: write it down.")
    ] = False,
) -> None:
    """Create a wallet: a new key, stored encrypted with a password you choose."""
    opts = options(ctx)
    password = opts.password(new=True)
    if not mnemonic:
        _stored("created", opts.keystore.create(password))
        return
    entry, phrase = opts.keystore.create_with_mnemonic(password)
    _stored("created", entry)
    out.print(
        Panel(
            phrase,
            title="recovery words: shown this once",
            subtitle="anyone with them owns the wallet; `adledger wallet import --mnemonic` restores it",
            border_style="yellow",
        )
    )


def import_(
    ctx: typer.Context,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", dir_okay=False, help="Read the private key (64 hex digits) from this file."),
    ] = None,
    mnemonic: Annotated[bool, typer.Option("--mnemonic", help="Import a BIP-39 mnemonic (asked, hidden).")] = False,
    index: Annotated[
        int, typer.Option("--index", min=0, max=hd.HARDENED - 1, help="With --mnemonic: account m/44'/60'/0'/0/N.")
    ] = 0,
) -> None:
    """Import a private key or a mnemonic, stored encrypted with a password you choose.

    The private key is asked without echo unless --key-file names a file holding it.
    """
    opts = options(ctx)
    if mnemonic and key_file is not None:
        raise WalletError("--mnemonic and --key-file are two different sources: give one")
    account: LocalAccount
    if mnemonic:
        account = hd.derive(typer.prompt("Mnemonic", hide_input=True), index)
    else:
        if key_file is not None:
            try:
                key = key_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise WalletStorageError(key_file, reason) from None
        else:
            key = typer.prompt("Private key", hide_input=True)
        account = parse_private_key(key)
    for entry in opts.keystore.list():  # before asking for a password that would not be used
        if entry.address == account.address:
            raise KeystoreExists(entry.address, entry.path)
    _stored("imported", opts.keystore.add(account, opts.password(new=True)))


def _stored(verb: str, entry: KeystoreEntry) -> None:
    out.print(Text.assemble(f"{verb} wallet ", (entry.address, "bold"), f"\n  keystore {entry.path}"))


def list_(ctx: typer.Context, as_json: Json = False) -> None:
    """List the wallets in the wallet dir (no password needed)."""
    opts = options(ctx)
    entries = opts.keystore.list()
    if as_json:
        print_json([{"address": e.address, "path": str(e.path)} for e in entries])
    elif not entries:
        out.print(f"no wallet in {opts.wallet_dir}: `adledger wallet new` creates one", markup=False)
    else:
        render.show(out, render.wallets(entries))


def address(ctx: typer.Context, as_json: Json = False) -> None:
    """Print the wallet's address (--address, or the wallet dir's only one)."""
    chosen = options(ctx).chosen()
    if as_json:
        print_json({"address": chosen})
    else:
        typer.echo(chosen)


def export(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (the key is still printed).")] = False,
) -> None:
    """Print the wallet's private key, after asking: whoever sees it owns the wallet."""
    opts = options(ctx)
    chosen = opts.chosen()
    if not yes:
        typer.confirm(f"Print the private key of {chosen}? Anyone who sees it owns the wallet", abort=True)
    typer.echo(opts.keystore.export(chosen, opts.password(chosen)))
