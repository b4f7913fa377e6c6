"""wallet.keyfile: v3 keystores other wallets wrote (the spec's vectors), damaged files named as such, and writes
that are atomic, 0600 and never replace a file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.wallet.conftest import ANVIL_ACCOUNTS, ANVIL_KEYS, FAST, PASSWORD, stray_files
from wallet import keyfile
from wallet.errors import CorruptKeystore, EmptyPassword, KeystoreExists, WrongPassword

# The Web3 Secret Storage definition's test vectors (ethereum.org, "Web3 Secret Storage Definition": password
# "testpassword", secret 7a28…fe9d, address 008aeeda…786b). The spec's files omit the address field that geth and
# eth-account always write; it is added here from the spec's "Details".
SPEC_SECRET = bytes.fromhex("7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d")
SPEC_ADDRESS = "0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b"
SPEC_PBKDF2: dict[str, Any] = {
    "address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {
            "c": 262144,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
        },
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
SPEC_SCRYPT: dict[str, Any] = {
    "address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "r": 1,
            "p": 8,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}


def write(path: Path, content: dict[str, Any] | str | bytes) -> Path:
    if isinstance(content, dict):
        content = json.dumps(content)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def fast_keystore(key: str = ANVIL_KEYS[0]) -> dict[str, Any]:
    return keyfile.encrypt(bytes.fromhex(key[2:]), PASSWORD, FAST)


def edited(keystore: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of the keystore with the field at ``dotted`` (``crypto.kdfparams.n``) set to ``value``, or
    removed if ``value`` is ``...``."""
    copy = json.loads(json.dumps(keystore))
    *parents, leaf = dotted.split(".")
    target = copy
    for name in parents:
        target = target[name]
    if value is ...:
        del target[leaf]
    else:
        target[leaf] = value
    return copy


class TestSpecVectors:
    def test_the_pbkdf2_vector_decrypts_to_the_spec_secret(self, tmp_path: Path):
        assert keyfile.decrypt(write(tmp_path / "pbkdf2.json", SPEC_PBKDF2), "testpassword") == SPEC_SECRET

    def test_the_scrypt_vector_decrypts_to_the_spec_secret(self, tmp_path: Path):
        assert keyfile.decrypt(write(tmp_path / "scrypt.json", SPEC_SCRYPT), "testpassword") == SPEC_SECRET

    def test_the_spec_address_is_read_without_a_password(self, tmp_path: Path):
        assert keyfile.read_address(write(tmp_path / "scrypt.json", SPEC_SCRYPT)) == SPEC_ADDRESS

    def test_old_geth_files_spelling_crypto_with_a_capital_are_read(self, tmp_path: Path):
        old = {("Crypto" if k == "crypto" else k): v for k, v in SPEC_PBKDF2.items()}
        assert keyfile.decrypt(write(tmp_path / "old.json", old), "testpassword") == SPEC_SECRET


class TestEncrypt:
    def test_real_keystores_use_eth_accounts_default_scrypt_cost(self):
        params = keyfile.encrypt(SPEC_SECRET, PASSWORD)["crypto"]["kdfparams"]
        assert (params["n"], params["r"], params["p"], params["dklen"]) == (2**18, 8, 1, 32)

    def test_scrypt_is_used_whatever_eth_account_kdf_says(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setattr(Account, "_default_kdf", "pbkdf2")  # what ETH_ACCOUNT_KDF=pbkdf2 sets at import
        assert fast_keystore()["crypto"]["kdf"] == "scrypt"

    def test_an_empty_password_is_refused(self):
        with pytest.raises(EmptyPassword):
            keyfile.encrypt(SPEC_SECRET, "")

    def test_the_password_appears_nowhere_in_the_keystore(self):
        assert PASSWORD not in json.dumps(fast_keystore())
        assert PASSWORD.encode().hex() not in json.dumps(fast_keystore())


class TestWrongPassword:
    def test_a_wrong_password_is_wrong_password_naming_the_address_and_file(self, tmp_path: Path):
        path = write(tmp_path / "key.json", fast_keystore())
        with pytest.raises(WrongPassword) as info:
            keyfile.decrypt(path, "not the password")
        assert (info.value.address, info.value.path) == (ANVIL_ACCOUNTS[0], path)
        assert "not the password" not in str(info.value) and "not the password" not in repr(info.value)

    def test_an_altered_ciphertext_fails_the_same_mac_check_and_says_so(self, tmp_path: Path):
        keystore = fast_keystore()
        ciphertext = keystore["crypto"]["ciphertext"]
        flipped = ("0" if ciphertext[0] != "0" else "1") + ciphertext[1:]
        path = write(tmp_path / "key.json", edited(keystore, "crypto.ciphertext", flipped))
        with pytest.raises(WrongPassword, match="a wrong password, or a file whose ciphertext or MAC was altered"):
            keyfile.decrypt(path, PASSWORD)


class TestCorrupt:
    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (b"", "it is not JSON"),
            (b"\xff\xfe{", "it is not JSON"),
            ('{"address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",', "it is not JSON"),
            ("[1, 2]", "its JSON is not an object"),
            ("{}", "it has no address field of 40 hex digits"),
            ('{"address": "0x1234"}', "it has no address field of 40 hex digits"),
            (b" " * (keyfile.MAX_KEYFILE_BYTES + 1), f"it is larger than {keyfile.MAX_KEYFILE_BYTES} bytes"),
        ],
        ids=["empty", "binary", "truncated", "array", "no-address", "short-address", "too-large"],
    )
    def test_a_file_that_is_no_keystore_json_is_corrupt_even_to_the_listing(
        self, tmp_path: Path, content: str | bytes, reason: str
    ):
        path = write(tmp_path / "key.json", content)
        with pytest.raises(CorruptKeystore) as info:
            keyfile.read_address(path)
        assert (info.value.path, info.value.reason) == (path, reason)
        with pytest.raises(CorruptKeystore):
            keyfile.decrypt(path, PASSWORD)

    @pytest.mark.parametrize(
        ("field", "value", "reason"),
        [
            ("version", 4, "its version is 4, not 3"),
            ("crypto", ..., "it has no crypto object"),
            ("crypto.cipher", "aes-256-gcm", "its cipher is 'aes-256-gcm', not 'aes-128-ctr'"),
            ("crypto.cipherparams", ..., "its crypto.cipherparams.iv is not 16 bytes of hex"),
            ("crypto.cipherparams.iv", "zz" * 16, "its crypto.cipherparams.iv is not 16 bytes of hex"),
            ("crypto.ciphertext", "ab" * 31, "its crypto.ciphertext is not 32 bytes of hex"),
            ("crypto.mac", None, "its crypto.mac is not 32 bytes of hex"),
            ("crypto.kdf", "argon2id", "its kdf is 'argon2id', not 'scrypt' or 'pbkdf2'"),
            ("crypto.kdfparams", ..., "it has no crypto.kdfparams object"),
            ("crypto.kdfparams.salt", "xyz", "its kdfparams.salt is not hex"),
            ("crypto.kdfparams.dklen", 64, "its kdfparams.dklen is 64, not 32"),
            ("crypto.kdfparams.n", 1000, "its scrypt n is 1000, not a power of two from 2 to 1048576"),
            ("crypto.kdfparams.n", "1024", "its scrypt n is '1024', not a power of two from 2 to 1048576"),
            ("crypto.kdfparams.r", 0, "its scrypt r, p are 0, 1, not 1 to 16, 16"),
        ],
    )
    def test_a_field_no_v3_keystore_has_is_named_before_any_key_derivation(
        self, tmp_path: Path, field: str, value: Any, reason: str
    ):
        path = write(tmp_path / "key.json", edited(fast_keystore(), field, value))
        with pytest.raises(CorruptKeystore) as info:
            keyfile.decrypt(path, PASSWORD)
        assert info.value.reason == reason

    def test_a_file_demanding_terabytes_of_scrypt_is_refused_at_once(self, tmp_path: Path):
        path = write(tmp_path / "key.json", edited(fast_keystore(), "crypto.kdfparams.n", 2**40))
        with pytest.raises(CorruptKeystore, match="its scrypt n is 1099511627776"):
            keyfile.decrypt(path, PASSWORD)

    def test_an_edited_address_is_caught_after_decryption(self, tmp_path: Path):
        path = write(tmp_path / "key.json", edited(fast_keystore(), "address", ANVIL_ACCOUNTS[1][2:].lower()))
        assert keyfile.read_address(path) == ANVIL_ACCOUNTS[1]  # the listing cannot know
        with pytest.raises(CorruptKeystore) as info:
            keyfile.decrypt(path, PASSWORD)
        assert (
            info.value.reason
            == f"its address field says {ANVIL_ACCOUNTS[1]}, but its key belongs to {ANVIL_ACCOUNTS[0]}"
        )

    def test_exit_code_and_code_of_a_corrupt_keystore(self, tmp_path: Path):
        with pytest.raises(CorruptKeystore) as info:
            keyfile.read_address(write(tmp_path / "key.json", "{}"))
        assert (info.value.code, info.value.exit_code) == ("corrupt_keystore", 5)
        assert (
            str(info.value)
            == f"{tmp_path / 'key.json'} is not a usable keystore: it has no address field of 40 hex digits"
        )


class TestWriteNew:
    def test_the_file_is_0600_complete_and_alone(self, tmp_path: Path):
        keystore = fast_keystore()
        keyfile.write_new(tmp_path / "UTC--key", keystore)
        assert stat.S_IMODE((tmp_path / "UTC--key").stat().st_mode) == 0o600
        assert json.loads((tmp_path / "UTC--key").read_text()) == keystore
        assert stray_files(tmp_path) == []

    def test_the_mode_is_0600_under_a_permissive_umask(self, tmp_path: Path):
        previous = os.umask(0)
        try:
            keyfile.write_new(tmp_path / "UTC--key", fast_keystore())
        finally:
            os.umask(previous)
        assert stat.S_IMODE((tmp_path / "UTC--key").stat().st_mode) == 0o600

    def test_an_existing_name_is_kept_byte_for_byte_and_no_temporary_file_stays(self, tmp_path: Path):
        path = write(tmp_path / "UTC--key", "whatever the user keeps here")
        with pytest.raises(KeystoreExists) as info:
            keyfile.write_new(path, fast_keystore(ANVIL_KEYS[1]))
        assert (info.value.address, info.value.path) == (ANVIL_ACCOUNTS[1], path)
        assert path.read_text() == "whatever the user keeps here"
        assert stray_files(tmp_path) == []
