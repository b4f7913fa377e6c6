"""``adledger wallet``: see ``wallet.cli.app``."""

from wallet.cli.app import wallet_app

__all__ = ["wallet_app"]
