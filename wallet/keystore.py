"""The wallet dir: one Web3 Secret Storage v3 keystore per address, found by the address inside each file.

Files are named as geth names them (``UTC--<time>--<address>``), so the dir can be shared with geth or clef and
their files imported by copying; lookups read each file's ``address`` field rather than trusting its name. Files
without one (notes, backups of other tools) are skipped by the listing, as geth skips them.

Adding a key holds an exclusive ``flock`` on the directory while it checks that no keystore holds the address and
writes the new file, so two processes importing one key cannot both succeed. The directory is created 0700 and
each file 0600 (``wallet.keyfile``). Passwords are arguments only: nothing here stores, logs or repeats them.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from wallet import hd, keyfile
from wallet.address import checksummed
from wallet.errors import (
    CorruptKeystore,
    DuplicateKeystore,
    EmptyPassword,
    InvalidPrivateKey,
    KeystoreExists,
    KeystoreNotFound,
    WalletStorageError,
)

WALLET_DIR_ENV = "ADLEDGER_WALLET_DIR"
DEFAULT_WALLET_DIR = Path("~/.adledger/wallets")
DIR_MODE = 0o700

WalletDir = str | os.PathLike[str] | None


def wallet_dir(directory: WalletDir = None) -> Path:
    """The wallet dir: ``directory`` if given, else $ADLEDGER_WALLET_DIR, else ~/.adledger/wallets."""
    chosen = directory if directory is not None else os.environ.get(WALLET_DIR_ENV) or DEFAULT_WALLET_DIR
    return Path(chosen).expanduser()


@dataclass(frozen=True)
class KeystoreEntry:
    """A keystore file in the wallet dir and the address it holds (read from the file, not decrypted)."""

    address: str
    path: Path


class Keystore:
    """The keystores of one wallet dir (see ``wallet_dir``). Creating one touches nothing on disk."""

    def __init__(self, directory: WalletDir = None) -> None:
        self.directory = wallet_dir(directory)

    def __repr__(self) -> str:
        return f"Keystore({str(self.directory)!r})"

    # -- reading --------------------------------------------------------------------------------------------

    def list(self) -> list[KeystoreEntry]:
        """Every keystore in the dir, oldest first (geth's names sort by creation time); no password needed."""
        if not self.directory.exists():
            return []
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as exc:
            raise WalletStorageError(self.directory, exc.strerror or str(exc)) from None
        entries = []
        for name in names:
            path = self.directory / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue  # temporary files of a write in progress, and anything that is not a plain file
            try:
                entries.append(KeystoreEntry(keyfile.read_address(path), path))
            except CorruptKeystore:
                continue  # not a keystore: the dir may hold other files
        return entries

    def find(self, address: str) -> KeystoreEntry:
        """The keystore holding ``address``. Raises InvalidAddress, KeystoreNotFound or DuplicateKeystore."""
        wanted = checksummed(address)
        found = [entry for entry in self.list() if entry.address == wanted]
        if not found:
            raise KeystoreNotFound(wanted, self.directory)
        if len(found) > 1:
            raise DuplicateKeystore(wanted, [entry.path for entry in found])
        return found[0]

    def load(self, address: str, password: str) -> LocalAccount:
        """The account of ``address``, decrypted. Raises KeystoreNotFound, WrongPassword, CorruptKeystore, ..."""
        account: LocalAccount = Account.from_key(keyfile.decrypt(self.find(address).path, password))
        return account

    def export(self, address: str, password: str) -> str:
        """The private key of ``address`` as 0x and 64 hex digits, what other wallets import. Treat it as the money."""
        return "0x" + keyfile.decrypt(self.find(address).path, password).hex()

    # -- adding ---------------------------------------------------------------------------------------------

    def add(self, account: LocalAccount, password: str, *, iterations: int | None = None) -> KeystoreEntry:
        """Writes a keystore for the account, encrypted with ``password`` (scrypt, n = ``iterations``, default
        eth-account's 2**18). Raises KeystoreExists when the dir already holds the address: nothing is replaced."""
        if not password:
            raise EmptyPassword()
        self._refuse_existing(account.address)  # before the scrypt, which takes most of a second at full cost
        encrypted = keyfile.encrypt(bytes(account.key), password, iterations)
        with self._locked():
            self._refuse_existing(account.address)
            path = self.directory / _file_name(account.address)
            keyfile.write_new(path, encrypted)
        return KeystoreEntry(account.address, path)

    def create(self, password: str, *, iterations: int | None = None) -> KeystoreEntry:
        """A new random key (the OS's randomness), stored in a new keystore."""
        return self.add(Account.create(), password, iterations=iterations)

    def create_with_mnemonic(
        self, password: str, *, words: int = 12, iterations: int | None = None
    ) -> tuple[KeystoreEntry, str]:
        """A new key from a new BIP-39 mnemonic (account 0), stored; the mnemonic is returned once, never stored."""
        account, mnemonic = hd.generate(words)
        return self.add(account, password, iterations=iterations), mnemonic

    def import_key(self, private_key: str | bytes, password: str, *, iterations: int | None = None) -> KeystoreEntry:
        """Stores an existing private key (bytes, or 64 hex digits with or without 0x)."""
        return self.add(parse_private_key(private_key), password, iterations=iterations)

    def import_mnemonic(
        self, mnemonic: str, password: str, *, index: int = 0, passphrase: str = "", iterations: int | None = None
    ) -> KeystoreEntry:
        """Stores the account m/44'/60'/0'/0/index of a BIP-39 mnemonic (and optional passphrase)."""
        return self.add(hd.derive(mnemonic, index, passphrase), password, iterations=iterations)

    def _refuse_existing(self, address: str) -> None:
        for entry in self.list():
            if entry.address == address:
                raise KeystoreExists(address, entry.path)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The dir, created 0700 if missing, held exclusively against other adledger processes adding keys."""
        try:
            self.directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            descriptor = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise WalletStorageError(self.directory, exc.strerror or str(exc)) from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock


def parse_private_key(private_key: str | bytes) -> LocalAccount:
    """The account of a typed or pasted private key; InvalidPrivateKey (which never quotes the key) otherwise."""
    account: LocalAccount | None = None
    try:
        if isinstance(private_key, str):
            text = private_key.strip().removeprefix("0x")
            private_key = bytes.fromhex(text) if len(text) == 64 else b""  # b"": refused as too short, below
        account = Account.from_key(bytes(private_key))
    except ValueError:  # raised outside, so eth-account's message is not even the __context__
        pass
    if account is None:
        raise InvalidPrivateKey(
            "a private key is 32 bytes (64 hex digits, 0x optional), from 1 to the secp256k1 group order minus 1"
        )
    return account


def _file_name(address: str) -> str:
    """geth's keystore name: ``UTC--2025-01-31T12-00-00.123456789Z--<address in lower case, no 0x>``."""
    now_ns = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(now_ns // 10**9))
    return f"UTC--{stamp}.{now_ns % 10**9:09d}Z--{address[2:].lower()}"
