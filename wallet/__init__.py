"""The consumer's wallet: keys in a keystore dir (``wallet.keystore``), the signatures adledger asks of them
(``wallet.Wallet``), the API over HTTP (``wallet.client.ApiClient``) and the command line ``adledger wallet``
(``wallet.cli``). Built on ``ledger``; never imports ``api`` or ``scripts``.
"""

from wallet.wallet import Wallet

__all__ = ["Wallet"]
