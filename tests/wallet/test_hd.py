"""wallet.hd against the published vectors: BIP-39 seeds (Trezor's python-mnemonic vectors.json, passphrase
"TREZOR"), and Ethereum's m/44'/60'/0'/0/i accounts of well-known mnemonics (anvil's, and the all-"abandon" one)."""

from __future__ import annotations

import pytest
from eth_account.hdaccount.mnemonic import Mnemonic
from eth_account.types import Language

from ledger.chain import HD_PATH_PREFIX
from tests.wallet.conftest import ANVIL_ACCOUNTS, ANVIL_KEYS, ANVIL_MNEMONIC
from wallet import hd
from wallet.errors import InvalidMnemonic

# (mnemonic, seed with passphrase "TREZOR"): entries 0, 1, 3, 8, 12, 16 and 23 of the "english" list of
# https://github.com/trezor/python-mnemonic/blob/master/vectors.json (12, 18 and 24 words; corner and random entropy)
TREZOR_VECTORS = [
    (
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e5349553"
        "1f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    ),
    (
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6f"
        "a457fe1296106559a3c80937a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
    ),
    (
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13"
        "332572917f0f8e5a589620c6f15b11c61dee327651a14c34e18231052e48c069",
    ),
    (
        " ".join(["abandon"] * 23 + ["art"]),
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd30971"
        "70af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
    ),
    (
        "ozone drill grab fiber curtain grace pudding thank cruise elder eight picnic",
        "274ddc525802f7c828d8ef7ddbcdc5304e87ac3535913611fbbfa986d0c9e547"
        "6c91689f9c8a54fd55bd38606aa6a8595ad213d4c9c9f9aca3fb217069a41028",
    ),
    (
        "horn tenant knee talent sponsor spell gate clip pulse soap slush warm silver nephew swap uncle crack brave",
        "fd579828af3da1d32544ce4db5c73d53fc8acc4ddb1e3b251a31179cdb71e853"
        "c56d2fcb11aed39898ce6c34b10b5382772db8796e52837b54468aeb312cfc3d",
    ),
    (
        "void come effort suffer camp survey warrior heavy shoot primary clutch crush open amazing screen patrol group "
        "space point ten exist slush involve unfold",
        "01f5bced59dec48e362f2c45b5de68b9fd6c92c6634f44d6d40aab69056506f0"
        "e35524a518034ddc1192e1dacd32c1ed3eaa3c3b131c88ed8e7e54c49a5d0998",
    ),
]
ABANDON = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
# Its seed without a passphrase (as every BIP-39 library computes it) and its Ethereum account 0,
# the address MetaMask, ethers and hardware wallets show for this phrase.
ABANDON_SEED = (
    "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1"
    "9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4"
)
ABANDON_ACCOUNT_0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


class TestPublishedVectors:
    @pytest.mark.parametrize(
        ("mnemonic", "seed"), TREZOR_VECTORS, ids=[f"{len(m.split())}-words-{m.split()[-1]}" for m, _ in TREZOR_VECTORS]
    )
    def test_trezor_vectors_give_their_seed_with_passphrase_trezor(self, mnemonic: str, seed: str):
        assert Mnemonic(Language.ENGLISH).is_mnemonic_valid(mnemonic)
        assert Mnemonic.to_seed(mnemonic, passphrase="TREZOR").hex() == seed

    def test_the_abandon_mnemonic_gives_its_seed_and_ethereum_account_0(self):
        assert Mnemonic.to_seed(ABANDON).hex() == ABANDON_SEED
        assert hd.derive(ABANDON).address == ABANDON_ACCOUNT_0

    @pytest.mark.parametrize("index", range(10))
    def test_anvils_mnemonic_gives_anvils_ten_accounts_and_keys(self, index: int):
        account = hd.derive(ANVIL_MNEMONIC, index)
        assert (account.address, "0x" + bytes(account.key).hex()) == (ANVIL_ACCOUNTS[index], ANVIL_KEYS[index])

    def test_the_path_is_the_one_the_devnet_derives_its_accounts_on(self):
        assert hd.ETHEREUM_PATH_PREFIX == HD_PATH_PREFIX
        assert hd.account_path(7) == "m/44'/60'/0'/0/7"


class TestDerive:
    def test_a_passphrase_gives_other_accounts(self):
        assert hd.derive(ANVIL_MNEMONIC, 0, passphrase="TREZOR").address not in ANVIL_ACCOUNTS

    def test_spacing_and_case_of_a_pasted_phrase_do_not_matter(self):
        pasted = "  Test test\ttest TEST test test\ntest test test test test   junk "
        assert hd.derive(pasted, 1).address == ANVIL_ACCOUNTS[1]

    @pytest.mark.parametrize("index", [-1, 2**31])
    def test_an_index_outside_the_unhardened_range_is_refused(self, index: int):
        with pytest.raises(ValueError, match="account index"):
            hd.derive(ANVIL_MNEMONIC, index)


class TestInvalidMnemonic:
    def test_a_wrong_word_count_is_named(self):
        with pytest.raises(InvalidMnemonic, match="it has 11 words; a mnemonic has 12, 15, 18, 21 or 24"):
            hd.derive("test " * 10 + "junk")

    def test_words_outside_the_word_list_are_named_by_position_only(self):
        phrase = "test test tset test test test test test test xylophonez test junk"
        with pytest.raises(InvalidMnemonic) as info:
            hd.derive(phrase)
        assert str(info.value) == "not a BIP-39 mnemonic: words 3, 10 are not in the BIP-39 english word list"
        assert "tset" not in str(info.value) and "xylophonez" not in str(info.value)

    def test_a_single_unknown_word_is_named_in_the_singular(self):
        with pytest.raises(InvalidMnemonic, match=r"^not a BIP-39 mnemonic: word 12 is not in the BIP-39 english"):
            hd.derive("test " * 11 + "jnuk")

    def test_four_letter_prefixes_are_not_words(self):
        # BIP-39 words are unique in their first four letters, but eth-account detects the language on whole words
        with pytest.raises(InvalidMnemonic, match="words 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 are not in"):
            hd.derive("aban " * 11 + "abou")

    def test_a_bad_checksum_says_a_word_is_wrong_without_quoting_any(self):
        with pytest.raises(InvalidMnemonic) as info:
            hd.derive("test " * 11 + "test")
        assert str(info.value) == "not a BIP-39 mnemonic: its checksum fails, so a word is wrong or out of place"
        assert "test" not in str(info.value)

    def test_eth_accounts_message_quoting_the_words_is_not_kept_as_context(self):
        # eth-account's ValidationError repeats the phrase; a traceback or a logger must not find it on the chain
        with pytest.raises(InvalidMnemonic) as info:
            hd.derive("test " * 11 + "test")
        assert info.value.__context__ is None and info.value.__cause__ is None
        assert info.value.code == "invalid_mnemonic" and info.value.exit_code == 7


class TestGenerate:
    @pytest.mark.parametrize("words", [12, 24])
    def test_a_new_mnemonic_has_the_words_asked_and_derives_its_account(self, words: int):
        account, mnemonic = hd.generate(words)
        assert len(mnemonic.split(" ")) == words
        assert Mnemonic(Language.ENGLISH).is_mnemonic_valid(mnemonic)
        assert hd.derive(mnemonic).address == account.address

    def test_two_new_mnemonics_differ(self):
        assert hd.generate()[1] != hd.generate()[1]

    def test_a_word_count_bip39_does_not_define_is_refused(self):
        with pytest.raises(ValueError, match="not 13"):
            hd.generate(13)
