"""BIP-39 mnemonics and BIP-44 derivation on Ethereum's path, m/44'/60'/0'/0/i (anvil, MetaMask, Ledger Live).

eth-account implements both but keeps them behind ``Account.enable_unaudited_hdwallet_features()``; adledger's devnet
already relies on them (``ledger.chain.DevAccounts``) and tests/wallet checks them against the published vectors.
eth-account's own errors quote the words back; these never do, since a message may end up in a log.
"""

from __future__ import annotations

import unicodedata

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.hdaccount.mnemonic import Mnemonic
from eth_account.signers.local import LocalAccount
from eth_account.types import Language
from eth_utils.exceptions import ValidationError

from wallet.errors import InvalidMnemonic

# The same prefix as ledger.chain.HD_PATH_PREFIX (a test compares them); not imported, since ledger.chain takes a
# second to import (eth-tester, py-evm) and key handling needs none of it.
ETHEREUM_PATH_PREFIX = "m/44'/60'/0'/0"
WORD_COUNTS = (12, 15, 18, 21, 24)
HARDENED = 2**31  # BIP-32 indices at or above this are hardened; the last level of the path is not

Account.enable_unaudited_hdwallet_features()


def account_path(index: int) -> str:
    """The BIP-44 path of the index-th Ethereum account, as anvil and MetaMask number them from 0."""
    if not 0 <= index < HARDENED:
        raise ValueError(f"an account index is 0 to {HARDENED - 1}, not {index}")
    return f"{ETHEREUM_PATH_PREFIX}/{index}"


def normalize(mnemonic: str) -> str:
    """The phrase as BIP-39 reads it (NFKD, single spaces, lower case), so pasted or retyped phrases are accepted."""
    return " ".join(unicodedata.normalize("NFKD", mnemonic).lower().split())


def derive(mnemonic: str, index: int = 0, passphrase: str = "") -> LocalAccount:
    """The account at m/44'/60'/0'/0/index of the phrase (and the optional BIP-39 passphrase, the "25th word")."""
    phrase = normalize(mnemonic)
    path = account_path(index)
    try:
        seed = seed_from_mnemonic(phrase, passphrase)
    except ValidationError:  # its message quotes the words: raised outside, so it is not even the __context__
        seed = None
    if seed is None:
        raise InvalidMnemonic(f"not a BIP-39 mnemonic: {_diagnose(phrase)}")
    account: LocalAccount = Account.from_key(key_from_seed(seed, path))
    return account


def generate(words: int = 12) -> tuple[LocalAccount, str]:
    """A new English mnemonic from the OS's randomness, and its account 0: the phrase is the key's paper backup."""
    if words not in WORD_COUNTS:
        raise ValueError(f"a mnemonic has {', '.join(map(str, WORD_COUNTS))} words, not {words}")
    phrase = Mnemonic(Language.ENGLISH).generate(words)
    return derive(phrase), phrase


def _diagnose(phrase: str) -> str:
    """Why a normalized phrase is refused, by word positions (1-based) and counts, never by the words themselves."""
    words = phrase.split(" ") if phrase else []
    if len(words) not in WORD_COUNTS:
        return f"it has {len(words)} words; a mnemonic has 12, 15, 18, 21 or 24"
    language, unknown = _closest_language(words)
    word_list = f"the BIP-39 {language.value.replace('_', ' ')} word list"
    if len(unknown) == 1:
        return f"word {unknown[0] + 1} is not in {word_list}"
    if unknown:
        return f"words {', '.join(str(i + 1) for i in unknown)} are not in {word_list}"
    return "its checksum fails, so a word is wrong or out of place"


def _closest_language(words: list[str]) -> tuple[Language, list[int]]:
    """The word list holding the most of the words, and the positions it lacks (0-based)."""
    best: tuple[Language, list[int]] | None = None
    languages = [Language.ENGLISH, *(lang for lang in Mnemonic.list_languages_enum() if lang != Language.ENGLISH)]
    for language in languages:  # English first: it wins ties
        wordlist = set(Mnemonic(language).wordlist)
        missing = [i for i, word in enumerate(words) if word not in wordlist]
        if best is None or len(missing) < len(best[1]):
            best = (language, missing)
    assert best is not None  # eth-account ships at least the English list
    return best
