"""`adledger wallet new | import | list | address | export`: keys made, imported, chosen and shown, with the
password asked hidden (or read from the environment or a file) and never printed. None of them needs the API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.wallet.cli.runner import NO_API, Cli, assert_one_error_line
from tests.wallet.conftest import ANVIL_ACCOUNTS, ANVIL_KEYS, ANVIL_MNEMONIC, FAST, PASSWORD, stray_files
from wallet import Wallet
from wallet.keystore import Keystore

TWICE = f"{PASSWORD}\n{PASSWORD}\n"


@pytest.fixture
def cli(wallet_dir: Path) -> Cli:
    return Cli(NO_API, wallet_dir)


class TestNew:
    def test_the_password_is_asked_twice_hidden_and_opens_the_new_keystore(self, cli: Cli, wallet_dir: Path):
        result = cli("new", input=TWICE)
        assert result.exit_code == 0, result.output
        assert PASSWORD not in result.output
        (entry,) = Keystore(wallet_dir).list()
        assert f"created wallet {entry.address}" in result.stdout
        assert Keystore(wallet_dir).load(entry.address, PASSWORD).address == entry.address

    def test_two_different_passwords_are_asked_again(self, cli: Cli, wallet_dir: Path):
        result = cli("new", input=f"{PASSWORD}\ntypo\n{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.output
        assert "do not match" in result.output
        (entry,) = Keystore(wallet_dir).list()
        assert Keystore(wallet_dir).load(entry.address, PASSWORD).address == entry.address

    def test_the_mnemonic_is_shown_once_and_import_restores_the_wallet(self, cli: Cli, tmp_path: Path):
        result = cli("new", "--mnemonic", password=PASSWORD)
        assert result.exit_code == 0, result.output
        (words,) = re.findall(r"((?:[a-z]+ ){11}[a-z]+)", result.stdout)
        created = re.search(r"created wallet (0x[0-9a-fA-F]{40})", result.stdout)
        assert created is not None
        elsewhere = Cli(NO_API, tmp_path / "restored")
        restored = elsewhere("import", "--mnemonic", input=f"{words}\n", password=PASSWORD)
        assert restored.exit_code == 0, restored.output
        assert words not in restored.output  # asked hidden
        assert [e.address for e in Keystore(tmp_path / "restored").list()] == [created.group(1)]


class TestImport:
    def test_a_private_key_typed_at_the_hidden_prompt(self, cli: Cli, wallet_dir: Path):
        result = cli("import", input=f"{ANVIL_KEYS[3]}\n{PASSWORD}\n{PASSWORD}\n")
        assert result.exit_code == 0, result.output
        assert ANVIL_KEYS[3] not in result.output and ANVIL_KEYS[3][2:] not in result.output
        assert [e.address for e in Keystore(wallet_dir).list()] == [ANVIL_ACCOUNTS[3]]

    def test_a_private_key_from_a_file_and_the_password_from_another(self, cli: Cli, wallet_dir: Path, tmp_path: Path):
        (tmp_path / "key").write_text(ANVIL_KEYS[4][2:] + "\n")
        (tmp_path / "password").write_text(PASSWORD + "\n")
        result = cli("--password-file", str(tmp_path / "password"), "import", "--key-file", str(tmp_path / "key"))
        assert result.exit_code == 0, result.output
        assert Keystore(wallet_dir).load(ANVIL_ACCOUNTS[4], PASSWORD).address == ANVIL_ACCOUNTS[4]

    def test_an_account_of_a_mnemonic_by_its_index(self, cli: Cli, wallet_dir: Path):
        result = cli("import", "--mnemonic", "--index", "2", input=f"{ANVIL_MNEMONIC}\n", password=PASSWORD)
        assert result.exit_code == 0, result.output
        assert [e.address for e in Keystore(wallet_dir).list()] == [ANVIL_ACCOUNTS[2]]

    def test_a_key_already_stored_is_refused_before_a_password_is_asked(self, cli: Cli, wallet_dir: Path):
        Wallet.from_key(ANVIL_KEYS[5]).save(PASSWORD, wallet_dir, iterations=FAST)
        result = cli("import", input=f"{ANVIL_KEYS[5]}\n")  # no password on the input: a prompt would abort
        assert result.exit_code == 6, result.output
        assert_one_error_line(result, "already exists")
        assert len(Keystore(wallet_dir).list()) == 1

    def test_a_malformed_key_is_refused_without_being_repeated(self, cli: Cli, wallet_dir: Path):
        typo = ANVIL_KEYS[6][:-1] + "g"
        result = cli("import", input=f"{typo}\n")
        assert result.exit_code == 7, result.output
        assert_one_error_line(result, "a private key is 32 bytes")
        assert typo[2:] not in result.output
        assert not wallet_dir.exists()


class TestListAndAddress:
    def test_an_empty_wallet_dir(self, cli: Cli):
        assert json.loads(cli("list", "--json").stdout) == []
        assert "no wallet in" in cli("list").stdout
        result = cli("address")
        assert result.exit_code == 3, result.output
        assert_one_error_line(result, "no wallet in")

    def test_the_only_wallet_is_the_default(self, cli: Cli, wallet_dir: Path):
        wallet = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
        assert cli("address").stdout.strip() == wallet.address
        assert json.loads(cli("address", "--json").stdout) == {"address": wallet.address}

    def test_several_wallets_need_an_address(self, cli: Cli, wallet_dir: Path):
        first = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
        second = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
        listed = json.loads(cli("list", "--json").stdout)
        assert sorted(row["address"] for row in listed) == sorted([first.address, second.address])
        assert second.address in cli("list").stdout
        result = cli("address")
        assert result.exit_code == 3, result.output
        assert_one_error_line(result, "2 wallets in", first.address, second.address)
        assert "--address" in result.output
        assert cli("--address", second.address.lower(), "address").stdout.strip() == second.address
        bad = cli("--address", "0x123", "address")
        assert bad.exit_code == 7, bad.output


class TestExport:
    @pytest.fixture
    def stored(self, wallet_dir: Path) -> str:
        return Wallet.from_key(ANVIL_KEYS[7]).save(PASSWORD, wallet_dir, iterations=FAST).address

    def test_the_key_is_printed_after_confirmation(self, cli: Cli, stored: str):
        result = cli("export", input="y\n", password=PASSWORD)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip().splitlines()[-1] == ANVIL_KEYS[7]

    def test_declining_prints_nothing(self, cli: Cli, stored: str):
        result = cli("export", input="n\n", password=PASSWORD)
        assert result.exit_code == 1
        assert ANVIL_KEYS[7][2:] not in result.output

    def test_a_wrong_password_exits_4(self, cli: Cli, stored: str, wallet_dir: Path):
        result = cli("export", "--yes", password="wrong horse")
        assert result.exit_code == 4, result.output
        assert_one_error_line(result, "the password does not open the keystore")
        assert "wrong horse" not in result.output and ANVIL_KEYS[7][2:] not in result.output
        assert stray_files(wallet_dir) == []

    def test_a_missing_password_file_exits_8(self, cli: Cli, stored: str, tmp_path: Path):
        result = cli("--password-file", str(tmp_path / "nowhere"), "export", "--yes")
        assert result.exit_code == 8, result.output
        assert_one_error_line(result, "nowhere")
