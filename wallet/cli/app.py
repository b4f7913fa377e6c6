"""``adledger wallet``: the consumer's command line (typer + rich), mounted by ``scripts.cli``.

The group's options choose the wallet dir, the wallet and the API; each command is registered here, wrapped by
``reports_errors`` so an expected failure is one red line and an exit code (see ``wallet.errors``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from wallet.cli import consumer, keys
from wallet.cli.context import ADDRESS_ENV, API_ENV, RPC_ENV, Options, reports_errors
from wallet.client import DEFAULT_API
from wallet.direct import DEFAULT_RPC
from wallet.keystore import WALLET_DIR_ENV, Keystore

wallet_app = typer.Typer(
    help="The consumer's wallet: keys, consent, rewards and transfers; gasless through the API.",
    no_args_is_help=True,
    add_completion=False,  # `adledger --install-completion` covers the wallet's commands
    pretty_exceptions_show_locals=False,  # locals hold keys and passwords
)
consent_app = typer.Typer(help="Consent to brands, per purpose (gasless).", no_args_is_help=True)
wallet_app.add_typer(consent_app, name="consent")


@wallet_app.callback()
def main(
    ctx: typer.Context,
    wallet_dir: Annotated[
        Path | None,
        typer.Option(
            "--wallet-dir", envvar=WALLET_DIR_ENV, file_okay=False, help="Keystores dir (default ~/.adledger/wallets)."
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", envvar=ADDRESS_ENV, help="Which wallet (default: the wallet dir's only one)."),
    ] = None,
    api: Annotated[str, typer.Option("--api", envvar=API_ENV, help="The adledger API's base URL.")] = DEFAULT_API,
    rpc: Annotated[
        str,
        typer.Option(
            "--rpc",
            envvar=RPC_ENV,
            help="A JSON-RPC node of the API's chain: `transfer --direct` sends through it, and deadlines follow its "
            "clock when it answers (a devnet runs ahead of the wall clock). Optional otherwise.",
        ),
    ] = DEFAULT_RPC,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            dir_okay=False,
            help="Read the keystore password from this file (default: $ADLEDGER_WALLET_PASSWORD, else a prompt).",
        ),
    ] = None,
) -> None:
    """The consumer's wallet; global options go before the command: `adledger wallet --address 0x… rewards`."""
    ctx.obj = Options(Keystore(wallet_dir), address, api, rpc, password_file)


COMMANDS: dict[str, Callable[..., None]] = {
    "new": keys.new,
    "import": keys.import_,
    "list": keys.list_,
    "address": keys.address,
    "export": keys.export,
    "link": consumer.link,
    "links": consumer.links,
    "rewards": consumer.rewards,
    "claim": consumer.claim,
    "transfer": consumer.transfer,
    "history": consumer.history,
}
CONSENT_COMMANDS: dict[str, Callable[..., None]] = {
    "grant": consumer.consent_grant,
    "revoke": consumer.consent_revoke,
    "list": consumer.consent_list,
    "receipts": consumer.consent_receipts,
}
for name, command in COMMANDS.items():
    wallet_app.command(name)(reports_errors(command))
for name, command in CONSENT_COMMANDS.items():
    consent_app.command(name)(reports_errors(command))
