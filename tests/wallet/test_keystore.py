"""wallet.keystore: the wallet dir, its keystores found by address, and keys added without ever replacing one."""

from __future__ import annotations

import json
import re
import stat
import threading
from pathlib import Path

import pytest
from eth_account import Account

from tests.wallet.conftest import ANVIL_ACCOUNTS, ANVIL_KEYS, ANVIL_MNEMONIC, FAST, PASSWORD, stray_files
from wallet import keyfile
from wallet.errors import (
    CorruptKeystore,
    DuplicateKeystore,
    EmptyPassword,
    InvalidAddress,
    InvalidMnemonic,
    InvalidPrivateKey,
    KeystoreExists,
    KeystoreNotFound,
    WalletStorageError,
    WrongPassword,
)
from wallet.keystore import WALLET_DIR_ENV, Keystore, KeystoreEntry, wallet_dir

GETH_NAME = re.compile(r"UTC--\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{9}Z--[0-9a-f]{40}")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestWalletDir:
    def test_the_default_is_adledger_wallets_in_the_home(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
        monkeypatch.delenv(WALLET_DIR_ENV, raising=False)
        monkeypatch.setenv("HOME", str(tmp_path))
        assert wallet_dir() == tmp_path / ".adledger" / "wallets"

    def test_the_environment_overrides_the_default(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
        monkeypatch.setenv(WALLET_DIR_ENV, str(tmp_path / "from-env"))
        assert Keystore().directory == tmp_path / "from-env"

    def test_an_argument_overrides_the_environment(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
        monkeypatch.setenv(WALLET_DIR_ENV, str(tmp_path / "from-env"))
        assert Keystore(tmp_path / "given").directory == tmp_path / "given"

    def test_a_tilde_is_expanded(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
        monkeypatch.setenv("HOME", str(tmp_path))
        assert wallet_dir("~/keys") == tmp_path / "keys"

    def test_a_keystore_touches_nothing_until_a_key_is_added(self, keystore: Keystore, wallet_dir: Path):
        assert keystore.list() == []
        assert not wallet_dir.exists()

    def test_the_dir_is_created_0700(self, keystore: Keystore, wallet_dir: Path):
        keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        assert mode(wallet_dir) == 0o700

    def test_a_file_where_the_dir_should_be_is_a_storage_error(self, tmp_path: Path):
        (tmp_path / "wallets").write_text("not a directory")
        with pytest.raises(WalletStorageError) as info:
            Keystore(tmp_path / "wallets").import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        assert info.value.path == tmp_path / "wallets" and info.value.exit_code == 8


class TestAdd:
    def test_a_created_key_round_trips_through_its_file(self, keystore: Keystore):
        entry = keystore.create(PASSWORD, iterations=FAST)
        assert keystore.load(entry.address, PASSWORD).address == entry.address
        assert Account.from_key(keystore.export(entry.address, PASSWORD)).address == entry.address

    def test_the_file_is_a_0600_v3_scrypt_keystore_named_as_geth_names_it(self, keystore: Keystore):
        entry = keystore.create(PASSWORD, iterations=FAST)
        assert GETH_NAME.fullmatch(entry.path.name) and entry.path.name.endswith(entry.address[2:].lower())
        assert mode(entry.path) == 0o600
        stored = json.loads(entry.path.read_text())
        assert (stored["version"], stored["crypto"]["kdf"], stored["crypto"]["kdfparams"]["n"]) == (3, "scrypt", FAST)

    def test_no_temporary_file_is_left_behind(self, keystore: Keystore, wallet_dir: Path):
        keystore.create(PASSWORD, iterations=FAST)
        keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        assert stray_files(wallet_dir) == [] and len(list(wallet_dir.iterdir())) == 2

    def test_two_created_keys_differ(self, keystore: Keystore):
        assert keystore.create(PASSWORD, iterations=FAST).address != keystore.create(PASSWORD, iterations=FAST).address

    def test_an_empty_password_writes_nothing(self, keystore: Keystore, wallet_dir: Path):
        with pytest.raises(EmptyPassword):
            keystore.create("", iterations=FAST)
        assert not wallet_dir.exists()


class TestImport:
    def test_a_private_key_gives_its_address_and_exports_back_unchanged(self, keystore: Keystore):
        entry = keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        assert entry.address == ANVIL_ACCOUNTS[0]
        assert keystore.export(ANVIL_ACCOUNTS[0], PASSWORD) == ANVIL_KEYS[0]

    @pytest.mark.parametrize(
        "typed",
        [ANVIL_KEYS[1][2:], f"  {ANVIL_KEYS[1]}\n", bytes.fromhex(ANVIL_KEYS[1][2:])],
        ids=["no-0x", "pasted-with-spaces", "bytes"],
    )
    def test_a_private_key_is_accepted_as_typed_or_pasted(self, keystore: Keystore, typed: str | bytes):
        assert keystore.import_key(typed, PASSWORD, iterations=FAST).address == ANVIL_ACCOUNTS[1]

    @pytest.mark.parametrize(
        "typed",
        [
            "",
            ANVIL_KEYS[0][:-2],
            ANVIL_KEYS[0] + "00",
            "0x" + "zz" * 32,
            "0x" + "00" * 32,
            "0x" + "ff" * 32,  # beyond the secp256k1 group order
        ],
        ids=["empty", "short", "long", "not-hex", "zero", "out-of-range"],
    )
    def test_a_malformed_private_key_is_refused_without_being_quoted(self, keystore: Keystore, typed: str):
        with pytest.raises(InvalidPrivateKey) as info:
            keystore.import_key(typed, PASSWORD, iterations=FAST)
        assert typed.removeprefix("0x") not in str(info.value) or typed == ""
        assert info.value.__context__ is None
        assert keystore.list() == []

    def test_a_mnemonic_stores_the_account_at_the_index(self, keystore: Keystore):
        entry = keystore.import_mnemonic(ANVIL_MNEMONIC, PASSWORD, index=3, iterations=FAST)
        assert entry.address == ANVIL_ACCOUNTS[3]
        assert keystore.export(entry.address, PASSWORD) == ANVIL_KEYS[3]

    def test_an_invalid_mnemonic_writes_nothing(self, keystore: Keystore, wallet_dir: Path):
        with pytest.raises(InvalidMnemonic):
            keystore.import_mnemonic("test " * 12, PASSWORD, iterations=FAST)
        assert not wallet_dir.exists()

    def test_create_with_mnemonic_stores_account_0_of_the_returned_phrase(self, keystore: Keystore):
        entry, mnemonic = keystore.create_with_mnemonic(PASSWORD, iterations=FAST)
        assert Account.from_mnemonic(mnemonic, account_path="m/44'/60'/0'/0/0").address == entry.address
        assert mnemonic not in entry.path.read_text()


class TestExisting:
    def test_importing_a_stored_key_again_is_refused_and_the_file_kept(self, keystore: Keystore, wallet_dir: Path):
        first = keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        before = first.path.read_bytes()
        with pytest.raises(KeystoreExists) as info:
            keystore.import_key(ANVIL_KEYS[0], "another password", iterations=FAST)
        assert (info.value.address, info.value.path) == (ANVIL_ACCOUNTS[0], first.path)
        assert info.value.exit_code == 6
        assert first.path.read_bytes() == before and [p.name for p in wallet_dir.iterdir()] == [first.path.name]
        assert keystore.export(ANVIL_ACCOUNTS[0], PASSWORD) == ANVIL_KEYS[0]

    def test_the_same_account_by_mnemonic_is_refused_too(self, keystore: Keystore):
        keystore.import_key(ANVIL_KEYS[2], PASSWORD, iterations=FAST)
        with pytest.raises(KeystoreExists):
            keystore.import_mnemonic(ANVIL_MNEMONIC, PASSWORD, index=2, iterations=FAST)

    def test_a_file_copied_in_under_another_name_counts_by_the_address_inside(
        self, keystore: Keystore, wallet_dir: Path
    ):
        wallet_dir.mkdir(parents=True)
        keystore_json = keyfile.encrypt(bytes.fromhex(ANVIL_KEYS[4][2:]), PASSWORD, FAST)
        (wallet_dir / "from-my-old-laptop.json").write_text(json.dumps(keystore_json))
        with pytest.raises(KeystoreExists) as info:
            keystore.import_key(ANVIL_KEYS[4], PASSWORD, iterations=FAST)
        assert info.value.path == wallet_dir / "from-my-old-laptop.json"

    def test_concurrent_imports_of_one_key_store_it_once(self, keystore: Keystore, wallet_dir: Path):
        start = threading.Barrier(4)
        outcomes: list[str] = []

        def add() -> None:
            start.wait()
            try:
                keystore.import_key(ANVIL_KEYS[5], PASSWORD, iterations=FAST)
                outcomes.append("stored")
            except KeystoreExists:
                outcomes.append("exists")

        threads = [threading.Thread(target=add) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["exists", "exists", "exists", "stored"]
        assert [entry.address for entry in keystore.list()] == [ANVIL_ACCOUNTS[5]]
        assert stray_files(wallet_dir) == []


class TestList:
    def test_entries_give_address_and_file_without_a_password(self, keystore: Keystore):
        added = [keystore.import_key(key, PASSWORD, iterations=FAST) for key in ANVIL_KEYS[:3]]
        assert keystore.list() == added
        assert all(isinstance(entry, KeystoreEntry) for entry in added)

    def test_only_the_address_field_is_read(self, keystore: Keystore, wallet_dir: Path):
        wallet_dir.mkdir(parents=True)
        (wallet_dir / "address-only.json").write_text(json.dumps({"address": ANVIL_ACCOUNTS[6][2:].lower()}))
        assert keystore.list() == [KeystoreEntry(ANVIL_ACCOUNTS[6], wallet_dir / "address-only.json")]
        with pytest.raises(CorruptKeystore, match="its version is None, not 3"):
            keystore.load(ANVIL_ACCOUNTS[6], PASSWORD)

    def test_other_files_in_the_dir_are_skipped(self, keystore: Keystore, wallet_dir: Path):
        entry = keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        (wallet_dir / "README.txt").write_text("my wallets")
        (wallet_dir / "broken.json").write_text('{"address": ')
        (wallet_dir / ".UTC--in-progress.tmp").write_text(json.dumps({"address": ANVIL_ACCOUNTS[1]}))
        (wallet_dir / "subdir").mkdir()
        (wallet_dir / "link").symlink_to(entry.path)
        assert keystore.list() == [entry]

    def test_entries_come_oldest_first(self, keystore: Keystore):
        added = [keystore.import_key(key, PASSWORD, iterations=FAST).address for key in reversed(ANVIL_KEYS[:4])]
        assert [entry.address for entry in keystore.list()] == added


class TestLoad:
    def test_an_address_in_any_case_finds_its_keystore(self, keystore: Keystore):
        keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        for typed in (ANVIL_ACCOUNTS[0].lower(), ANVIL_ACCOUNTS[0].upper().replace("0X", "0x"), ANVIL_ACCOUNTS[0][2:]):
            assert keystore.load(typed, PASSWORD).address == ANVIL_ACCOUNTS[0]

    def test_an_unknown_address_is_keystore_not_found(self, keystore: Keystore, wallet_dir: Path):
        keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        with pytest.raises(KeystoreNotFound) as info:
            keystore.load(ANVIL_ACCOUNTS[1].lower(), PASSWORD)
        assert (info.value.address, info.value.directory) == (ANVIL_ACCOUNTS[1], wallet_dir)
        assert (info.value.code, info.value.exit_code) == ("keystore_not_found", 3)
        assert str(info.value) == f"no keystore for {ANVIL_ACCOUNTS[1]} in {wallet_dir}"

    def test_a_mistyped_checksum_is_invalid_address_not_unknown(self, keystore: Keystore):
        typo = ANVIL_ACCOUNTS[0][:-1] + ("6" if ANVIL_ACCOUNTS[0][-1] != "6" else "7")
        with pytest.raises(InvalidAddress, match="EIP-55 checksum"):
            keystore.load(typo, PASSWORD)

    def test_a_wrong_password_is_wrong_password_and_never_quoted(self, keystore: Keystore):
        entry = keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        with pytest.raises(WrongPassword) as info:
            keystore.export(ANVIL_ACCOUNTS[0], "hunter2")
        assert (info.value.path, info.value.code, info.value.exit_code) == (entry.path, "wrong_password", 4)
        assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value.args)

    def test_two_files_holding_one_address_are_a_duplicate_not_a_guess(self, keystore: Keystore, wallet_dir: Path):
        entry = keystore.import_key(ANVIL_KEYS[0], PASSWORD, iterations=FAST)
        copy = wallet_dir / "copy.json"
        copy.write_bytes(entry.path.read_bytes())
        with pytest.raises(DuplicateKeystore) as info:
            keystore.load(ANVIL_ACCOUNTS[0], PASSWORD)
        assert sorted(info.value.paths) == sorted([entry.path, copy])

    def test_a_keystore_path_that_cannot_be_read_is_a_storage_error(self, tmp_path: Path):
        # a directory stands in for an unreadable file: permissions do not stop root, which CI may run as
        with pytest.raises(WalletStorageError) as info:
            keyfile.decrypt(tmp_path, PASSWORD)
        assert info.value.path == tmp_path and info.value.reason
