"""wallet.Wallet off chain: made, stored and loaded; its signatures are ledger.typed_data's and ledger.siwe's bytes
(tests/wallet/test_signatures.py has the deployed contracts verify them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from ledger import siwe, typed_data
from ledger.model import Purpose
from tests.wallet.conftest import ANVIL_ACCOUNTS, ANVIL_KEYS, ANVIL_MNEMONIC, FAST, PASSWORD
from wallet import Wallet
from wallet.errors import InvalidAddress, KeystoreExists, KeystoreNotFound, SignerMismatch, WrongPassword
from wallet.keystore import Keystore

SIGNATURE_HEX = re.compile(r"0x[0-9a-f]{130}")  # what the API's request bodies take (api/schemas/consumers.py)
BRAND = to_checksum_address("0x" + "b0" * 20)
OTHER = to_checksum_address("0x" + "c1" * 20)
REGISTRY = typed_data.Domain(typed_data.REGISTRY_DOMAIN_NAME, 31337, to_checksum_address("0x" + "12" * 20))
ESCROW = typed_data.Domain(typed_data.ESCROW_DOMAIN_NAME, 31337, to_checksum_address("0x" + "34" * 20))
TOKEN = typed_data.Domain("adledger Reward", 31337, to_checksum_address("0x" + "56" * 20))
DEADLINE = 1_900_000_000


def sign_in_message(address: str, **fields: Any) -> siwe.SiweMessage:
    values: dict[str, Any] = {
        "domain": "api.adledger.test",
        "address": address,
        "statement": "Sign in to adledger.",
        "uri": "https://api.adledger.test/v1/auth/siwe",
        "version": siwe.VERSION,
        "chain_id": 31337,
        "nonce": siwe.generate_nonce(),
        "issued_at": siwe.format_datetime(datetime.now(UTC)),
    }
    return siwe.SiweMessage(**(values | fields))


@pytest.fixture
def anvil_3() -> Wallet:
    return Wallet.from_mnemonic(ANVIL_MNEMONIC, index=3)


@pytest.fixture
def key_3() -> LocalAccount:
    account: LocalAccount = Account.from_key(ANVIL_KEYS[3])
    return account


class TestMaking:
    def test_create_stores_a_keystore_that_loads_back_the_same_wallet(self, wallet_dir: Path):
        created = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
        assert [entry.address for entry in Keystore(wallet_dir).list()] == [created.address]
        assert Wallet.load(created.address, PASSWORD, wallet_dir).address == created.address

    def test_create_with_mnemonic_returns_the_phrase_that_restores_it(self, wallet_dir: Path):
        created, mnemonic = Wallet.create_with_mnemonic(PASSWORD, wallet_dir, iterations=FAST)
        assert Wallet.from_mnemonic(mnemonic).address == created.address
        assert len(mnemonic.split()) == 12

    def test_from_key_and_from_mnemonic_stay_in_memory_until_saved(self, wallet_dir: Path):
        by_key, by_words = Wallet.from_key(ANVIL_KEYS[3]), Wallet.from_mnemonic(ANVIL_MNEMONIC, index=3)
        assert by_key.address == by_words.address == ANVIL_ACCOUNTS[3]
        assert not wallet_dir.exists()
        entry = by_key.save(PASSWORD, wallet_dir, iterations=FAST)
        assert entry.address == ANVIL_ACCOUNTS[3]
        with pytest.raises(KeystoreExists):
            by_words.save(PASSWORD, wallet_dir, iterations=FAST)

    def test_load_reports_an_unknown_address_and_a_wrong_password(self, wallet_dir: Path):
        Wallet.from_key(ANVIL_KEYS[0]).save(PASSWORD, wallet_dir, iterations=FAST)
        with pytest.raises(KeystoreNotFound):
            Wallet.load(ANVIL_ACCOUNTS[1], PASSWORD, wallet_dir)
        with pytest.raises(WrongPassword):
            Wallet.load(ANVIL_ACCOUNTS[0], "not it", wallet_dir)

    def test_the_wallet_dir_defaults_to_the_environments(self, monkeypatch: pytest.MonkeyPatch, wallet_dir: Path):
        monkeypatch.setenv("ADLEDGER_WALLET_DIR", str(wallet_dir))
        created = Wallet.create(PASSWORD, iterations=FAST)
        assert Wallet.load(created.address, PASSWORD).address == created.address

    def test_its_repr_shows_the_address_and_nothing_secret(self, anvil_3: Wallet):
        assert repr(anvil_3) == f"Wallet({ANVIL_ACCOUNTS[3]})"
        assert ANVIL_KEYS[3][2:] not in repr(anvil_3) and not hasattr(anvil_3, "__dict__")


class TestTypedSignatures:
    """Each signer gives typed_data.sign's bytes for the message the relay and the contracts rebuild, as 0x-hex."""

    def test_sign_consent_is_a_grant(self, anvil_3: Wallet, key_3: LocalAccount):
        expected = typed_data.grant_message(
            key_3.address, BRAND, int(Purpose.ADS | Purpose.EMAIL), 2_000_000_000, 4, DEADLINE
        )
        signature = anvil_3.sign_consent(REGISTRY, BRAND, Purpose.ADS | Purpose.EMAIL, 2_000_000_000, 4, DEADLINE)
        assert signature == "0x" + typed_data.sign(key_3, REGISTRY, "Grant", expected).hex()
        assert SIGNATURE_HEX.fullmatch(signature)

    def test_sign_revoke_is_a_revoke(self, anvil_3: Wallet, key_3: LocalAccount):
        expected = typed_data.revoke_message(key_3.address, BRAND, int(Purpose.EMAIL), 5, DEADLINE)
        signature = anvil_3.sign_revoke(REGISTRY, BRAND, Purpose.EMAIL, 5, DEADLINE)
        assert signature == "0x" + typed_data.sign(key_3, REGISTRY, "Revoke", expected).hex()

    def test_sign_link_is_a_link(self, anvil_3: Wallet, key_3: LocalAccount):
        expected = typed_data.link_message(key_3.address, 42, BRAND, 2**255 + 1, DEADLINE)
        signature = anvil_3.sign_link(REGISTRY, 42, BRAND, 2**255 + 1, DEADLINE)
        assert signature == "0x" + typed_data.sign(key_3, REGISTRY, "Link", expected).hex()

    def test_sign_claim_is_a_claim(self, anvil_3: Wallet, key_3: LocalAccount):
        expected = typed_data.claim_message(key_3.address, [1, 7], OTHER, 0, DEADLINE)
        signature = anvil_3.sign_claim(ESCROW, (1, 7), OTHER, 0, DEADLINE)
        assert signature == "0x" + typed_data.sign(key_3, ESCROW, "Claim", expected).hex()

    def test_sign_permit_is_an_eip2612_permit(self, anvil_3: Wallet, key_3: LocalAccount):
        expected = typed_data.permit_message(key_3.address, OTHER, 10**18, 2, DEADLINE)
        signature = anvil_3.sign_permit(TOKEN, OTHER, 10**18, 2, DEADLINE)
        assert signature == "0x" + typed_data.sign(key_3, TOKEN, "Permit", expected).hex()

    def test_addresses_in_any_case_sign_the_checksummed_message(self, anvil_3: Wallet):
        assert anvil_3.sign_claim(ESCROW, [1], OTHER.lower(), 0, DEADLINE) == anvil_3.sign_claim(
            ESCROW, [1], OTHER, 0, DEADLINE
        )

    def test_a_mistyped_address_is_refused_before_signing(self, anvil_3: Wallet):
        with pytest.raises(InvalidAddress):
            anvil_3.sign_permit(TOKEN, OTHER[:-1], 1, 0, DEADLINE)

    def test_signatures_recover_to_the_wallet(self, anvil_3: Wallet):
        message = typed_data.link_message(anvil_3.address, 42, BRAND, 9, DEADLINE)
        signature = bytes.fromhex(anvil_3.sign_link(REGISTRY, 42, BRAND, 9, DEADLINE)[2:])
        assert Account.recover_message(typed_data.signable(REGISTRY, "Link", message), signature=signature) == (
            anvil_3.address
        )


class TestSignIn:
    def test_the_signature_passes_ledger_siwe_verify(self, anvil_3: Wallet):
        message = sign_in_message(anvil_3.address)
        signature = anvil_3.sign_in(message)
        assert SIGNATURE_HEX.fullmatch(signature)
        verified = siwe.verify(message.prepare(), signature, domain="api.adledger.test", chain_id=31337)
        assert verified.address == anvil_3.address

    def test_a_message_naming_another_address_is_not_signed(self, anvil_3: Wallet):
        with pytest.raises(SignerMismatch) as info:
            anvil_3.sign_in(sign_in_message(ANVIL_ACCOUNTS[4]))
        assert (info.value.wallet, info.value.named) == (anvil_3.address, ANVIL_ACCOUNTS[4])
