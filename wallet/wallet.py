"""``Wallet``: a consumer's key in memory, and every signature adledger asks of a consumer.

Each signer builds its message with ``ledger.typed_data`` (or ``ledger.siwe``) and signs with ``typed_data.sign``,
the functions the contract tests and the API's verifiers use, so the bytes are the ones the contracts and
``ledger.gasless`` / ``ledger.crm.links`` accept. Signatures are returned as 0x-hex, the form the API's request
bodies take (``bytes.fromhex(signature[2:])`` gives the bytes a contract call takes).

Nonces and domains come from the caller (the API's GET /v1/consents/nonce, or the contracts): the wallet signs what
it is given and reads nothing from the network. Addresses are accepted in any case and signed checksummed, as the
API and relay build the messages they verify.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import siwe, typed_data
from ledger.siwe import SiweMessage
from ledger.typed_data import Domain
from wallet import hd
from wallet.address import checksummed
from wallet.errors import SignerMismatch
from wallet.keystore import Keystore, KeystoreEntry, WalletDir, parse_private_key


class Wallet:
    """One consumer key. Build it with ``create``, ``load``, ``from_key`` or ``from_mnemonic``; ``save`` stores it.

    Its repr shows the address only; it keeps no password and never writes the key unencrypted.
    """

    __slots__ = ("_account",)

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    def __repr__(self) -> str:
        return f"Wallet({self.address})"

    # -- making one ------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, password: str, wallet_dir: WalletDir = None, *, iterations: int | None = None) -> Wallet:
        """A new random key, stored encrypted with ``password`` in the wallet dir (see ``wallet.keystore``)."""
        wallet = cls(Account.create())
        wallet.save(password, wallet_dir, iterations=iterations)
        return wallet

    @classmethod
    def create_with_mnemonic(
        cls, password: str, wallet_dir: WalletDir = None, *, words: int = 12, iterations: int | None = None
    ) -> tuple[Wallet, str]:
        """A new key from a new BIP-39 mnemonic, stored; the mnemonic (its only backup) is returned, not stored."""
        account, mnemonic = hd.generate(words)
        wallet = cls(account)
        wallet.save(password, wallet_dir, iterations=iterations)
        return wallet, mnemonic

    @classmethod
    def from_key(cls, private_key: str | bytes) -> Wallet:
        """The wallet of a private key (bytes, or 64 hex digits with or without 0x), in memory only."""
        return cls(parse_private_key(private_key))

    @classmethod
    def from_mnemonic(cls, mnemonic: str, index: int = 0, passphrase: str = "") -> Wallet:
        """Account m/44'/60'/0'/0/index of a BIP-39 mnemonic (as MetaMask and anvil number them), in memory only."""
        return cls(hd.derive(mnemonic, index, passphrase))

    @classmethod
    def load(cls, address: str, password: str, wallet_dir: WalletDir = None) -> Wallet:
        """The stored wallet of ``address``. Raises KeystoreNotFound, WrongPassword, CorruptKeystore, ..."""
        return cls(Keystore(wallet_dir).load(address, password))

    def save(self, password: str, wallet_dir: WalletDir = None, *, iterations: int | None = None) -> KeystoreEntry:
        """Stores the key in a new keystore (scrypt n = ``iterations``, default 2**18); KeystoreExists if stored."""
        return Keystore(wallet_dir).add(self._account, password, iterations=iterations)

    # -- who ------------------------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The wallet's EIP-55 address."""
        return str(self._account.address)

    @property
    def account(self) -> LocalAccount:
        """The eth-account signer, for sending transactions directly (``ledger.contracts.transact``)."""
        return self._account

    # -- signatures -----------------------------------------------------------------------------------------

    def sign_consent(
        self, domain: Domain, brand: str, purposes: int, expires_at: int, nonce: int, deadline: int
    ) -> str:
        """A Grant of ``purposes`` (the registry's bitmask, ``ledger.model.Purpose``) to ``brand`` until
        ``expires_at``, in the registry's domain, with the registry's current nonce for this wallet."""
        mask = int(purposes)  # a Purpose flag iterates over its members, which encoders mistake for an array
        message = typed_data.grant_message(self.address, checksummed(brand), mask, expires_at, nonce, deadline)
        return self._sign_typed(domain, "Grant", message)

    def sign_revoke(self, domain: Domain, brand: str, purposes: int, nonce: int, deadline: int) -> str:
        """A Revoke of ``purposes`` from ``brand``, in the registry's domain, with the registry's current nonce."""
        message = typed_data.revoke_message(self.address, checksummed(brand), int(purposes), nonce, deadline)
        return self._sign_typed(domain, "Revoke", message)

    def sign_link(self, domain: Domain, customer_id: int, brand: str, nonce: int, deadline: int) -> str:
        """A Link of this wallet to the brand's CRM customer, in the registry's domain; the nonce is any unused
        uint256 (``secrets.randbits(256)``), since the CRM, not a contract, remembers spent ones."""
        message = typed_data.link_message(self.address, customer_id, checksummed(brand), nonce, deadline)
        return self._sign_typed(domain, "Link", message)

    def sign_claim(self, domain: Domain, campaign_ids: Sequence[int], to: str, nonce: int, deadline: int) -> str:
        """A Claim of this wallet's accruals in ``campaign_ids``, paid to ``to``, in the escrow's domain, with the
        escrow's current nonce for this wallet."""
        message = typed_data.claim_message(self.address, list(campaign_ids), checksummed(to), nonce, deadline)
        return self._sign_typed(domain, "Claim", message)

    def sign_permit(self, domain: Domain, spender: str, value: int, nonce: int, deadline: int) -> str:
        """An EIP-2612 Permit letting ``spender`` move ``value`` base units of the token; the domain is the token's
        (its ``name()``, version "1") and the nonce the token's ``nonces(wallet)``."""
        message = typed_data.permit_message(self.address, checksummed(spender), value, nonce, deadline)
        return self._sign_typed(domain, "Permit", message)

    def sign_in(self, message: SiweMessage) -> str:
        """The EIP-191 signature of a Sign-In with Ethereum message naming this wallet; SignerMismatch otherwise."""
        if message.address != self.address:
            raise SignerMismatch(self.address, message.address)
        return "0x" + siwe.sign(self._account, message).hex()

    def _sign_typed(self, domain: Domain, primary: str, message: dict[str, object]) -> str:
        return "0x" + typed_data.sign(self._account, domain, primary, message).hex()
