"""The consumer's wallet (keys, signing, CLI), built on ``ledger``: coming with the wallet issue."""
