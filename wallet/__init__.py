"""The consumer's wallet: keys in a keystore dir (``wallet.keystore``) and the signatures adledger asks of them
(``wallet.Wallet``). Built on ``ledger``; never imports ``api`` or ``scripts``. The CLI comes with issue 14's next part.
"""

from wallet.wallet import Wallet

__all__ = ["Wallet"]
