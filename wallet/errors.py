"""Every failure the wallet reports, rooted in ``WalletError``, each with a stable ``code`` and an ``exit_code``.

The wallet CLI prints one red line and exits with ``exit_code``, so scripts can tell the failures apart:

==  =====================================================================
1   any other wallet failure (``WalletError`` itself, ``SignerMismatch``)
2   not used: typer's own code for a bad command line
3   ``KeystoreNotFound``: no keystore in the wallet dir holds the address
4   ``WrongPassword``
5   ``CorruptKeystore``, ``DuplicateKeystore``: a keystore file to repair
6   ``KeystoreExists``: nothing was written
7   ``InvalidPrivateKey``, ``InvalidMnemonic``, ``InvalidAddress``, ``EmptyPassword``: fix what was typed
8   ``WalletStorageError``: the wallet dir or a file cannot be read or written
==  =====================================================================

The root is not ``ledger.errors.LedgerError``: ``exit_code`` belongs to a terminal, which ``ledger/`` knows nothing of,
and a LedgerError subclass must be listed in tests/ledger/test_errors.py's code table. The CLI catches both roots.
No message ever contains a password, a private key or a mnemonic: they may be shown, logged or pasted into an issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class WalletError(Exception):
    """Root of every expected wallet failure; ``code`` is stable and ``help`` says how to fix it, if known."""

    code: ClassVar[str] = "wallet_error"
    exit_code: ClassVar[int] = 1
    help: ClassVar[str | None] = None


class KeystoreNotFound(WalletError, LookupError):
    """Raised when no keystore in the wallet dir holds the address asked for."""

    code = "keystore_not_found"
    exit_code = 3
    help = "`adledger wallet list` shows the wallets of this wallet dir (--wallet-dir or ADLEDGER_WALLET_DIR)"

    def __init__(self, address: str, directory: Path) -> None:
        self.address = address
        self.directory = directory
        super().__init__(f"no keystore for {address} in {directory}")


class WrongPassword(WalletError):
    """Raised when a password does not open a keystore. A keystore whose ciphertext or MAC was altered fails the
    same check (the MAC proves the password and the ciphertext together), so the message names both causes."""

    code = "wrong_password"
    exit_code = 4
    help = "type the password again; if it is right, restore the keystore file from a backup"

    def __init__(self, address: str, path: Path) -> None:
        self.address = address
        self.path = path
        super().__init__(
            f"the password does not open the keystore of {address} ({path.name}): a wrong password, or a file whose "
            "ciphertext or MAC was altered"
        )


class CorruptKeystore(WalletError):
    """Raised when a keystore file is not a readable Web3 Secret Storage v3 keystore; ``reason`` says what is wrong."""

    code = "corrupt_keystore"
    exit_code = 5
    help = "restore the keystore file from a backup, or import the key again from its private key or mnemonic"

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} is not a usable keystore: {reason}")


class DuplicateKeystore(WalletError):
    """Raised when several keystore files hold one address (copied in by hand): which one to use is the user's call."""

    code = "duplicate_keystore"
    exit_code = 5
    help = "move all but one of the files out of the wallet dir"

    def __init__(self, address: str, paths: list[Path]) -> None:
        self.address = address
        self.paths = paths
        super().__init__(f"{len(paths)} keystores hold {address}: {', '.join(p.name for p in paths)}")


class KeystoreExists(WalletError):
    """Raised when a keystore for the address is already in the wallet dir; nothing is written or overwritten."""

    code = "keystore_exists"
    exit_code = 6
    help = "the wallet is already there: use it, or remove its file first if you mean to replace it"

    def __init__(self, address: str, path: Path) -> None:
        self.address = address
        self.path = path
        super().__init__(f"a keystore for {address} already exists: {path}")


class InvalidPrivateKey(WalletError, ValueError):
    """Raised when a private key to import is not 32 bytes (64 hex digits) in the secp256k1 range."""

    code = "invalid_private_key"
    exit_code = 7
    help = "paste the key as 64 hex digits, with or without 0x"


class InvalidMnemonic(WalletError, ValueError):
    """Raised when a mnemonic is not a BIP-39 phrase; the message says which words or the checksum, never the words."""

    code = "invalid_mnemonic"
    exit_code = 7
    help = "check the words and their order against your written copy"


class InvalidAddress(WalletError, ValueError):
    """Raised when an address is not 20 bytes of hex, or its mixed case fails the EIP-55 checksum (a typo)."""

    code = "invalid_address"
    exit_code = 7
    help = "copy the address again, or type it all in lower case to skip the checksum"

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        super().__init__(f"{address!r} is not an address: {reason}")


class EmptyPassword(WalletError, ValueError):
    """Raised when a keystore would be written with an empty password, which would leave the key readable by anyone
    who copies the file."""

    code = "empty_password"
    exit_code = 7
    help = "choose a password"

    def __init__(self) -> None:
        super().__init__("a keystore needs a non-empty password")


class WalletStorageError(WalletError):
    """Raised when the wallet dir or a keystore file cannot be created, read or written (permissions, a file where
    the directory should be, a full disk); ``reason`` is the operating system's."""

    code = "wallet_storage_error"
    exit_code = 8

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SignerMismatch(WalletError, ValueError):
    """Raised when a message to sign names another address than the wallet's (a Sign-In with Ethereum message built
    for another wallet): the signature would prove nothing."""

    code = "signer_mismatch"

    def __init__(self, wallet: str, named: str) -> None:
        self.wallet = wallet
        self.named = named
        super().__init__(f"the message is for {named}, not for this wallet {wallet}")
