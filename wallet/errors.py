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
9   ``ApiProblem``: the API refused the request (its problem ``code`` says why), or answered what the wallet
    must not act on (``ApiDomainMismatch``)
10  ``ApiUnreachable``, ``RpcUnreachable``: the API or the JSON-RPC node cannot be reached (or did not answer)
11  ``NoGas``, ``ChainMismatch``, ``TransactionRefused``: a direct transaction (``transfer --direct``) cannot go
==  =====================================================================

``NoWallet`` and ``WalletNotChosen`` exit 3 (which wallet?), ``InvalidAmount`` and ``InvalidPurposes`` 7.

The root is not ``ledger.errors.LedgerError``: ``exit_code`` belongs to a terminal, which ``ledger/`` knows nothing of,
and a LedgerError subclass must be listed in tests/ledger/test_errors.py's code table. The CLI catches both roots.
No message ever contains a password, a private key or a mnemonic: they may be shown, logged or pasted into an issue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar


class WalletError(Exception):
    """Root of every expected wallet failure; ``code`` is stable and ``help`` says how to fix it, if known.

    ``code`` and ``help`` are the class's, except on an ``ApiProblem``, which carries the API's own."""

    code: str = "wallet_error"
    exit_code: ClassVar[int] = 1
    help: str | None = None


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


class NoWallet(WalletError, LookupError):
    """Raised when a command needs a wallet and the wallet dir holds none."""

    code = "no_wallet"
    exit_code = 3
    help = "create one with `adledger wallet new`, or import one with `adledger wallet import`"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        super().__init__(f"no wallet in {directory}")


class WalletNotChosen(WalletError, LookupError):
    """Raised when the wallet dir holds several wallets and the command was not told which one to use."""

    code = "wallet_not_chosen"
    exit_code = 3
    help = "say which with --address (or ADLEDGER_WALLET_ADDRESS); `adledger wallet list` shows them"

    def __init__(self, directory: Path, addresses: list[str]) -> None:
        self.directory = directory
        self.addresses = addresses
        super().__init__(f"{len(addresses)} wallets in {directory}: {', '.join(addresses)}")


class InvalidAmount(WalletError, ValueError):
    """Raised when a token amount typed for a transfer is not a positive decimal with at most 18 decimals."""

    code = "invalid_amount"
    exit_code = 7
    help = "write the amount in tokens with a dot for decimals, e.g. 1.5 or 0.000001 (at most 18 decimals)"

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        super().__init__(f"{text!r} is not an amount: {reason}")


class InvalidPurposes(WalletError, ValueError):
    """Raised when a list of consent purposes names none, or names one the registry does not know."""

    code = "invalid_purposes"
    exit_code = 7
    help = "name purposes separated by commas: ads, email, location, profile, purchases, analytics (or all)"


class ApiProblem(WalletError):
    """Raised when the API answers an error: ``code`` is the API's stable problem code (``nothing_to_claim``),
    ``status`` the HTTP status, ``detail`` this occurrence and ``help`` the API's advice; ``body`` is the whole
    RFC 9457 answer. An error answer that is not problem+json (a proxy's page) has the code ``unexpected_answer``."""

    code = "api_problem"
    exit_code = 9

    def __init__(
        self, code: str, status: int, detail: str, help: str | None = None, body: dict[str, Any] | None = None
    ) -> None:
        self.code = code
        self.status = status
        self.detail = detail
        self.help = help
        self.body = body or {}
        super().__init__(f"{detail} ({code}, HTTP {status})")


class ApiDomainMismatch(WalletError):
    """Raised when the API asks the wallet to sign in for another site than the URL it was reached at: a
    signature for that site could be replayed there, so the wallet refuses to make it (EIP-4361's phishing check)."""

    code = "api_domain_mismatch"
    exit_code = 9
    help = "point --api (or ADLEDGER_API_URL) at the address the API serves (the server's ADLEDGER_API_DOMAIN)"

    def __init__(self, api: str, domain: str) -> None:
        self.api = api
        self.domain = domain
        super().__init__(f"the API at {api} asks for a sign-in to {domain!r}, another site: refused")


class ApiUnreachable(WalletError):
    """Raised when the API cannot be reached, or gave no answer in time; ``sent`` says whether the request may
    have arrived (a relayed action may then have gone through: check before sending it again)."""

    code = "api_unreachable"
    exit_code = 10

    def __init__(self, api: str, reason: str, *, sent: bool = False) -> None:
        self.api = api
        self.reason = reason
        self.sent = sent
        if sent:
            self.help = "the request may have been carried out: check with a read command before sending it again"
            super().__init__(f"no answer from the API at {api}: {reason}")
        else:
            self.help = "is the API running? `make run` serves it at http://127.0.0.1:8000; --api points elsewhere"
            super().__init__(f"cannot reach the API at {api}: {reason}")


class RpcUnreachable(WalletError):
    """Raised when the JSON-RPC node a direct transfer goes through cannot be reached."""

    code = "rpc_unreachable"
    exit_code = 10
    help = "is the devnet running? `make run` serves it at http://127.0.0.1:8545; --rpc points elsewhere"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"cannot reach the JSON-RPC node at {url}: {reason}")


class ChainMismatch(WalletError):
    """Raised when the JSON-RPC node serves another chain than the API's deployment: a transaction there would
    move nothing the API knows of."""

    code = "chain_mismatch"
    exit_code = 11
    help = "point --rpc at a node of the API's chain"

    def __init__(self, url: str, chain_id: int, expected: int) -> None:
        self.url = url
        self.chain_id = chain_id
        self.expected = expected
        super().__init__(f"the node at {url} serves chain {chain_id}; the API's deployment is on chain {expected}")


class NoGas(WalletError):
    """Raised when a direct transaction is asked of a wallet that holds no ether to pay its gas."""

    code = "no_gas"
    exit_code = 11
    help = "leave out --direct: the default (gasless) transfer lets the API's relayer pay the gas"

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"{address} holds no ether to pay gas for a direct transaction")


class TransactionRefused(WalletError):
    """Raised when the chain refuses a direct transaction (a revert, such as a balance too small, or the node's
    refusal); ``reason`` is the chain's error code (``insufficient_balance``) or ``rpc_error``."""

    code = "transaction_refused"
    exit_code = 11

    def __init__(self, reason: str, message: str, help: str | None = None) -> None:
        self.reason = reason
        self.help = help
        super().__init__(f"the chain refused the transaction: {message} ({reason})")
