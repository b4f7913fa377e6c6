"""One keystore file: Web3 Secret Storage v3, the format of geth, clef and eth-account (written here with scrypt;
files other wallets wrote with pbkdf2 are read too).

Reading checks the JSON's shape before any key derivation, so a damaged file is named as such instead of failing
deep in eth-keyfile, and bounds the KDF's cost, so a file asking for terabytes of scrypt memory is refused rather
than run. After decryption the key must belong to the file's ``address``: a file whose address was edited is corrupt.

Writing never replaces a file: the JSON goes to a temporary file in the same directory (mode 0600 from its
creation), is flushed to disk, then hard-linked to its final name, which fails if that name exists; a crash leaves
either no keystore or a complete one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Literal

from eth_account import Account
from eth_keyfile.exceptions import EthKeyfileValueError
from eth_utils.address import to_checksum_address

from wallet.errors import CorruptKeystore, EmptyPassword, KeystoreExists, WalletStorageError, WrongPassword

FILE_MODE = 0o600
KDF: Literal["scrypt"] = "scrypt"
# Keystores are ~500 bytes; anything much larger in the wallet dir is some other file, not read whole.
MAX_KEYFILE_BYTES = 64 * 1024
# Upper bounds on the KDF work a file may ask for, far above real wallets': eth-account and geth write scrypt
# n = 2**18, r = 8, p = 1 (256 MiB, under a second here), and the spec's pbkdf2 vector has c = 2**18.
MAX_SCRYPT_N = 2**20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 16
MAX_PBKDF2_C = 10_000_000

_HEX_ADDRESS = re.compile(r"(?:0x)?[0-9a-fA-F]{40}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def encrypt(private_key: bytes, password: str, iterations: int | None = None) -> dict[str, Any]:
    """The v3 keystore JSON of the key; ``iterations`` is scrypt's n (default eth-account's 2**18; tests pass less)."""
    if not password:
        raise EmptyPassword()
    return dict(Account.encrypt(private_key, password, kdf=KDF, iterations=iterations))


def read_address(path: Path) -> str:
    """The EIP-55 address a keystore file says it holds, without decrypting it; CorruptKeystore if it says none."""
    return _address_of(path, read_json(path))


def read_json(path: Path) -> dict[str, Any]:
    """The file's JSON object. Raises CorruptKeystore (not JSON, not an object, too large) or WalletStorageError."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEYFILE_BYTES + 1)
    except OSError as exc:
        raise WalletStorageError(path, exc.strerror or str(exc)) from None
    if len(raw) > MAX_KEYFILE_BYTES:
        raise CorruptKeystore(path, f"it is larger than {MAX_KEYFILE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CorruptKeystore(path, "it is not JSON") from None
    if not isinstance(data, dict):
        raise CorruptKeystore(path, "its JSON is not an object")
    return data


def decrypt(path: Path, password: str) -> bytes:
    """The private key in the keystore file. Raises CorruptKeystore, WrongPassword or WalletStorageError."""
    data = read_json(path)
    address = _address_of(path, data)
    _check_shape(path, data)
    try:
        key = bytes(Account.decrypt(data, password))
    except EthKeyfileValueError as exc:  # v3 decoding raises it for the MAC check alone
        if str(exc) != "MAC mismatch":
            raise CorruptKeystore(path, f"the decoder refuses it ({exc})") from None
        raise WrongPassword(address, path) from None
    except (KeyError, TypeError, ValueError):
        raise CorruptKeystore(path, "its parameters are refused by the decoder") from None
    try:
        holder = Account.from_key(key).address
    except ValueError:  # a key outside secp256k1's range: the ciphertext and MAC were both forged
        raise CorruptKeystore(path, "it decrypts to an invalid private key") from None
    if holder != address:
        raise CorruptKeystore(path, f"its address field says {address}, but its key belongs to {holder}")
    return key


def write_new(path: Path, keystore: dict[str, Any]) -> None:
    """Writes the keystore to ``path``, mode 0600, atomically; KeystoreExists if the name is taken (nothing written)."""
    data = json.dumps(keystore, separators=(",", ":")).encode()
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # dot-named: listing skips it
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)  # unlike os.replace, refuses an existing name
        _fsync_directory(path.parent)
    except FileExistsError:
        raise KeystoreExists(to_checksum_address(keystore["address"]), path) from None
    except OSError as exc:
        raise WalletStorageError(path, exc.strerror or str(exc)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Flushes the directory entry too, so the new name survives a power cut."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _address_of(path: Path, data: dict[str, Any]) -> str:
    address = data.get("address")
    if not isinstance(address, str) or not _HEX_ADDRESS.fullmatch(address):
        raise CorruptKeystore(path, "it has no address field of 40 hex digits")
    return to_checksum_address(address if address.startswith("0x") else "0x" + address)


def _check_shape(path: Path, data: dict[str, Any]) -> None:
    """Raises CorruptKeystore naming the first field that a v3 keystore cannot have."""
    fields = {key.lower(): value for key, value in data.items()}  # old geth files spell it "Crypto"
    if fields.get("version") != 3:
        raise CorruptKeystore(path, f"its version is {fields.get('version')!r}, not 3")
    crypto = fields.get("crypto")
    if not isinstance(crypto, dict):
        raise CorruptKeystore(path, "it has no crypto object")
    if crypto.get("cipher") != "aes-128-ctr":
        raise CorruptKeystore(path, f"its cipher is {crypto.get('cipher')!r}, not 'aes-128-ctr'")
    cipherparams = crypto.get("cipherparams")
    iv = cipherparams.get("iv") if isinstance(cipherparams, dict) else None
    for name, value, size in (("cipherparams.iv", iv, 16), ("ciphertext", crypto.get("ciphertext"), 32)):
        if not _is_hex(value, size):
            raise CorruptKeystore(path, f"its crypto.{name} is not {size} bytes of hex")
    if not _is_hex(crypto.get("mac"), 32):
        raise CorruptKeystore(path, "its crypto.mac is not 32 bytes of hex")
    _check_kdf(path, crypto.get("kdf"), crypto.get("kdfparams"))


def _is_hex(value: object, size: int | None = None) -> bool:
    """``value`` is unprefixed hex of whole bytes (``size`` of them, if given), as v3 keystores write it."""
    return isinstance(value, str) and bool(_HEX.fullmatch(value)) and (size is None or len(value) == 2 * size)


def _check_kdf(path: Path, kdf: object, params: object) -> None:
    if not isinstance(params, dict):
        raise CorruptKeystore(path, "it has no crypto.kdfparams object")
    if not _is_hex(params.get("salt")):
        raise CorruptKeystore(path, "its kdfparams.salt is not hex")
    if params.get("dklen") != 32:
        raise CorruptKeystore(path, f"its kdfparams.dklen is {params.get('dklen')!r}, not 32")
    if kdf == "scrypt":
        n, r, p = params.get("n"), params.get("r"), params.get("p")
        if not (isinstance(n, int) and _int_in(n, 2, MAX_SCRYPT_N) and n & (n - 1) == 0):
            raise CorruptKeystore(path, f"its scrypt n is {n!r}, not a power of two from 2 to {MAX_SCRYPT_N}")
        if not (_int_in(r, 1, MAX_SCRYPT_R) and _int_in(p, 1, MAX_SCRYPT_P)):
            raise CorruptKeystore(path, f"its scrypt r, p are {r!r}, {p!r}, not 1 to {MAX_SCRYPT_R}, {MAX_SCRYPT_P}")
    elif kdf == "pbkdf2":
        c = params.get("c")
        if not _int_in(c, 1, MAX_PBKDF2_C):
            raise CorruptKeystore(path, f"its pbkdf2 c is {c!r}, not 1 to {MAX_PBKDF2_C}")
        if params.get("prf") != "hmac-sha256":
            raise CorruptKeystore(path, f"its pbkdf2 prf is {params.get('prf')!r}, not 'hmac-sha256'")
    else:
        raise CorruptKeystore(path, f"its kdf is {kdf!r}, not 'scrypt' or 'pbkdf2'")


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
