"""Every failure adledger reports, rooted in ``LedgerError``, each with a stable ``code``.

Contract reverts arrive here by name: ``ledger.contracts`` decodes a custom error's selector and arguments into
the ``ContractRevert`` subclass of the same name, with the arguments as snake_case attributes, so a caller
catches ``EscrowBudgetTooLarge`` and reads ``.total`` and ``.max`` whichever chain backend reported it.
The API maps ``code`` to problem+json, the CLIs to one red line and an exit code; neither lives in ``ledger/``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar


class LedgerError(Exception):
    """Root of every expected adledger failure; ``code`` is stable and ``help`` says how to fix it, if known."""

    code: ClassVar[str] = "ledger_error"
    help: ClassVar[str | None] = None


class ConfigurationError(LedgerError, ValueError):
    """Raised when settings or the environment cannot work (unknown chain backend, missing binary)."""

    code = "configuration_error"


class DeploymentNotFound(LedgerError):
    """Raised when no deployment manifest matches the connected chain."""

    code = "deployment_not_found"
    help = "deploy the contracts first with `adledger deploy`"


class ChainError(LedgerError):
    """Raised for a chain-level failure that is not a contract revert (node down, stalled, tx dropped)."""

    code = "chain_unavailable"


class ChainStalled(ChainError):
    """Raised when transactions stay pending and no block appears (the anvil automine stall, foundry #10122)."""

    code = "chain_stalled"
    help = "restart the devnet; bulk sends should go through Chain.send_raw_batch"


class DevnetRunning(ChainError):
    """Raised when another process's anvil already owns the data dir; ``url`` is where it answers."""

    code = "devnet_running"
    help = "other adledger commands on this data dir join it; stop it with Ctrl-C where it runs"

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"an anvil devnet already serves this data dir at {url or 'an unknown URL'}")


class TransactionFailed(ChainError):
    """Raised when a mined transaction has status 0; carries the receipt and, if a replay finds it, the revert data."""

    code = "transaction_failed"

    def __init__(self, receipt: Any, revert: bytes | None = None) -> None:
        self.receipt = receipt
        self.revert = revert
        detail = f", revert data 0x{revert.hex()}" if revert is not None else ""
        super().__init__(
            f"transaction 0x{bytes(receipt['transactionHash']).hex()} failed in block "
            f"{receipt['blockNumber']} (gas used {receipt['gasUsed']}{detail})"
        )


class ReorgTooDeep(LedgerError):
    """Raised when the chain reorganised below the indexer's window of block hashes: no common ancestor is known."""

    code = "reorg_too_deep"
    help = "rebuild with `adledger index --rebuild`"


# Engagement intake (ledger.settlement.outbox)
class CampaignNotIndexed(LedgerError, LookupError):
    """Raised when engagements name a campaign the indexer has not stored: a wrong id or escrow, or one so new that
    its creation is not indexed yet."""

    code = "campaign_not_indexed"
    help = "check the campaign id; a new campaign takes engagements once the indexer has seen it (a few blocks)"

    def __init__(self, chain_id: int, escrow: str, campaign_id: object) -> None:
        self.chain_id = chain_id
        self.escrow = escrow
        self.campaign_id = campaign_id
        super().__init__(f"campaign {campaign_id!r} of escrow {escrow} on chain {chain_id} is not indexed")


class CampaignNotOpen(LedgerError):
    """Raised when engagements are reported for a closed campaign: nothing more can be settled in it."""

    code = "campaign_not_open"

    def __init__(self, campaign_id: int, status: str) -> None:
        self.campaign_id = campaign_id
        self.status = status
        super().__init__(f"campaign {campaign_id} is {status}: it takes no more engagements")


class TooManyEngagements(LedgerError, ValueError):
    """Raised when one intake call carries more engagements than ``ledger.settlement.outbox.MAX_PER_CALL``."""

    code = "too_many_engagements"
    help = "split the engagements over several calls"


class EventIdsExhausted(LedgerError):
    """Raised when a campaign's dense event ids would pass the contract's 48 bits."""

    code = "event_ids_exhausted"


class EngagementNotFound(LedgerError, LookupError):
    """Raised when no accepted engagement has the given campaign and event id."""

    code = "engagement_not_found"


class SettledEventNotFound(LedgerError, LookupError):
    """Raised when no indexed Rewarded or Rejected log settled the given campaign's event id."""

    code = "settled_event_not_found"
    help = "an engagement shows here once its settlement is mined and indexed; its attester sees it queued before"

    def __init__(self, campaign_id: int, event_id: int) -> None:
        self.campaign_id = campaign_id
        self.event_id = event_id
        super().__init__(f"no settlement of event {event_id} of campaign {campaign_id} is indexed")


# CRM
class InvalidContact(LedgerError, ValueError):
    """Raised when an email or phone number cannot be normalised; the message says what is wrong."""

    code = "invalid_contact"


class CustomerNotFound(LedgerError, LookupError):
    """Raised when no customer has the given id."""

    code = "customer_not_found"


class AmbiguousCustomer(LedgerError):
    """Raised when the email matches one customer and the phone another: merging them is a human decision."""

    code = "ambiguous_customer"
    help = "merge or correct the two customer records first"

    def __init__(self, customer_ids: list[int]) -> None:
        self.customer_ids = customer_ids
        super().__init__(f"the email and phone belong to different customers {customer_ids}")


class ContactInUse(LedgerError):
    """Raised when a customer's new email or phone (normalised) is already another customer's."""

    code = "contact_in_use"
    help = "correct the other customer's contact first, or keep this one's"

    def __init__(self, field: str, customer_id: int) -> None:
        self.field = field
        self.customer_id = customer_id
        super().__init__(f"that {field} already belongs to customer {customer_id}")


class InvalidLinkSignature(LedgerError):
    """Raised when a wallet-link signature is malformed or was not made by the wallet over this link (another key,
    customer, brand, nonce, deadline, chain or registry); ``signer`` is what it recovers to, None if nothing."""

    code = "invalid_signature"
    help = "sign the link with the wallet's own key, for this customer, brand and deployment"

    def __init__(self, wallet: str, signer: str | None, reason: str | None = None) -> None:
        self.wallet = wallet
        self.signer = signer
        super().__init__(reason or f"the link signature was made by {signer}, not by the wallet {wallet}")


class LinkExpired(LedgerError):
    """Raised when a wallet-link signature's deadline (unix seconds) is before ``now``."""

    code = "expired_signature"
    help = "sign the link again with a later deadline"

    def __init__(self, deadline: int, now: int) -> None:
        self.deadline = deadline
        self.now = now
        super().__init__(f"the link signature expired at {deadline} (now {now})")


class LinkNonceUsed(LedgerError):
    """Raised when the wallet already spent this nonce on a link, even one since unlinked or erased."""

    code = "nonce_used"
    help = "sign the link again with a fresh nonce"

    def __init__(self, wallet: str, nonce: int) -> None:
        self.wallet = wallet
        self.nonce = nonce
        super().__init__(f"the wallet {wallet} already used link nonce {nonce}")


class WalletLinkedElsewhere(LedgerError):
    """Raised when the wallet is already linked to another customer of the brand, who is not named to the caller."""

    code = "wallet_linked_elsewhere"
    help = "unlink the wallet from the other customer first"

    def __init__(self, wallet: str, brand: str) -> None:
        self.wallet = wallet
        self.brand = brand
        super().__init__(f"the wallet {wallet} is already linked to another customer of brand {brand}")


class InvalidAmount(LedgerError, ValueError):
    """Raised when a money value is not exact, negative, too large for BIGINT, or in an unknown currency."""

    code = "invalid_amount"


class InvalidConversion(LedgerError, ValueError):
    """Raised when a conversion's source, order ref, customer or time is unusable; the message says which."""

    code = "invalid_conversion"


class ConversionConflict(LedgerError):
    """Raised when (source, order_ref) is already recorded with other values: a stored purchase is never overwritten."""

    code = "conversion_conflict"
    help = "an order is recorded once per source: correct the row, or give a corrected order another order_ref"


class InvalidConversionFile(LedgerError, ValueError):
    """Raised when a conversions CSV cannot be read as a whole (no header, unknown or missing columns)."""

    code = "invalid_conversion_file"
    help = "the first line must name order_ref, value, currency, occurred_at, and customer_id, email or phone"


# Sign-In with Ethereum (ledger.siwe)
class SiweError(LedgerError):
    """Raised, as one of its subclasses, when a Sign-In with Ethereum message does not prove a sign-in."""

    code = "siwe_error"


class SiweMalformed(SiweError, ValueError):
    """Raised when a message's text or a field breaks EIP-4361's grammar; ``line`` (1-based) and ``field`` say
    where, when known."""

    code = "siwe_malformed"
    help = "sign the unmodified text of an EIP-4361 message; the error names the line or field at fault"

    def __init__(self, reason: str, *, field: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.field = field
        self.line = line
        location = f"line {line}" if line is not None else ""
        if field is not None:
            location = f"{location} ({field})" if location else field
        super().__init__(f"{location}: {reason}" if location else reason)


class SiweInvalidSignature(SiweError):
    """Raised when a sign-in signature is malformed or was not made by the message's address (EOAs only: ERC-1271
    contract wallets are not supported); ``signer`` is what it recovers to, None if nothing."""

    code = "siwe_invalid_signature"
    help = "sign the message's exact text (personal_sign) with the key of the address it names"

    def __init__(self, address: str, signer: str | None, reason: str | None = None) -> None:
        self.address = address
        self.signer = signer
        super().__init__(reason or f"the message was signed by {signer}, not by {address}")


class SiweDomainMismatch(SiweError):
    """Raised when a sign-in message names another domain than the verifier's (a site relaying it, or phishing)."""

    code = "siwe_domain_mismatch"
    help = "sign a message for this service's domain"

    def __init__(self, *, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"the message signs in to {actual!r}, not {expected!r}")


class SiweUriMismatch(SiweError):
    """Raised when a sign-in message's URI is not the one the verifier expects."""

    code = "siwe_uri_mismatch"
    help = "sign a message for this service's sign-in URI"

    def __init__(self, *, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"the message's URI is {actual!r}, not {expected!r}")


class SiweChainMismatch(SiweError):
    """Raised when a sign-in message is bound to another chain id than the verifier's."""

    code = "siwe_chain_mismatch"
    help = "switch the wallet to this service's chain and sign again"

    def __init__(self, *, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"the message is for chain {actual}, not {expected}")


class SiweIssuedInFuture(SiweError):
    """Raised when a sign-in message's Issued At is later than the verifier's clock plus the allowed skew."""

    code = "siwe_issued_in_future"
    help = "check the wallet's clock, then sign a fresh message"

    def __init__(self, issued_at: str, now: str) -> None:
        self.issued_at = issued_at
        self.now = now
        super().__init__(f"the message says it was issued at {issued_at}, after now ({now})")


class SiweExpired(SiweError):
    """Raised when a sign-in message's Expiration Time is not after the verifier's clock."""

    code = "siwe_expired"
    help = "request a fresh nonce and sign a new message"

    def __init__(self, expiration_time: str, now: str) -> None:
        self.expiration_time = expiration_time
        self.now = now
        super().__init__(f"the message expired at {expiration_time} (now {now})")


class SiweNotYetValid(SiweError):
    """Raised when a sign-in message's Not Before is after the verifier's clock."""

    code = "siwe_not_yet_valid"
    help = "wait until the message's Not Before time, or sign one without it"

    def __init__(self, not_before: str, now: str) -> None:
        self.not_before = not_before
        self.now = now
        super().__init__(f"the message is not valid before {not_before} (now {now})")


class SiweNonceUsed(SiweError):
    """Raised when a sign-in message's nonce is unknown to the verifier or already spent (a replay)."""

    code = "siwe_nonce_used"
    help = "request a fresh nonce from the service and sign a new message"

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        super().__init__(f"the nonce {nonce!r} is unknown or already used")


# Gasless actions (ledger.gasless): a consumer's EIP-712 signature, checked off chain before it is relayed
class SignatureExpired(LedgerError):
    """Raised when a signed action's deadline (unix seconds) has passed before it could be relayed."""

    code = "expired_signature"
    help = "sign the action again with a later deadline"

    def __init__(self, action: str, deadline: int, now: int) -> None:
        self.action = action
        self.deadline = deadline
        self.now = now
        super().__init__(f"the {action} signature expired at {deadline} (now {now})")


class InvalidActionSignature(LedgerError):
    """Raised when a signed action's signature is malformed or was not made by the signed-in wallet over this
    message (another key, nonce, deadline, chain or contract); ``signer`` is what it recovers to, None if nothing."""

    code = "invalid_signature"
    help = "read the nonce and domain from GET /v1/consents/nonce and sign with the signed-in wallet's own key"

    def __init__(self, action: str, wallet: str, signer: str | None, reason: str | None = None) -> None:
        self.action = action
        self.wallet = wallet
        self.signer = signer
        super().__init__(reason or f"the {action} signature was made by {signer}, not by the wallet {wallet}")


class InvalidTransferRecipient(LedgerError, ValueError):
    """Raised when a gasless transfer names the zero address or the sender itself as the recipient."""

    code = "invalid_recipient"
    help = "name the other wallet's address"

    def __init__(self, to: str) -> None:
        self.to = to
        super().__init__(f"a transfer goes to another wallet, not to {to}")


class InvalidCursor(LedgerError, ValueError):
    """Raised when a page cursor is not one this service handed out."""

    code = "invalid_cursor"
    help = "pass the next_cursor of the previous page unchanged, or no cursor for the first page"


# Callers of the API (ledger.auth): wallet sessions and attester API keys
class CredentialsRequired(LedgerError):
    """Raised when a request that needs a caller carries neither a session token nor an API key."""

    code = "credentials_required"
    help = "send `Authorization: Bearer <session token or API key>`, or an API key as `X-API-Key: <key>`"


class InvalidSession(LedgerError):
    """Raised when a session token is unknown, ended by logout, or past its expiry (one code: the fix is the same)."""

    code = "invalid_session"
    help = "sign in again with a fresh Sign-In with Ethereum message"


class InvalidApiKey(LedgerError):
    """Raised when an API key is unknown or revoked, or its attester is no longer on the campaign on chain."""

    code = "invalid_api_key"
    help = "ask the campaign's marketer for a new key"


class AccessDenied(LedgerError):
    """Raised when a known caller asks for what its credential does not cover (another campaign, another
    attester's engagement); the message says which."""

    code = "access_denied"


class NotCampaignMarketer(AccessDenied):
    """Raised when a wallet manages a campaign (its attesters' API keys) that another marketer created."""

    code = "not_marketer"
    help = "sign in with the wallet that created the campaign"

    def __init__(self, campaign_id: int, caller: str) -> None:
        self.campaign_id = campaign_id
        self.caller = caller
        super().__init__(f"{caller} is not the marketer of campaign {campaign_id}")


class AttesterNotRegistered(LedgerError):
    """Raised when an API key is asked for an address that is not an attester of the campaign on chain (as indexed)."""

    code = "attester_not_registered"
    help = "add the attester to the campaign on chain first; it counts once the indexer has seen the block"

    def __init__(self, campaign_id: int, attester: str) -> None:
        self.campaign_id = campaign_id
        self.attester = attester
        super().__init__(f"{attester} is not an attester of campaign {campaign_id}")


class ApiKeyNotFound(LedgerError, LookupError):
    """Raised when a campaign has no API key with the given id."""

    code = "api_key_not_found"

    def __init__(self, campaign_id: int, key_id: int) -> None:
        self.campaign_id = campaign_id
        self.key_id = key_id
        super().__init__(f"campaign {campaign_id} has no API key {key_id}")


class InvalidTransaction(LedgerError, ValueError):
    """Raised when a signed transaction given to relay cannot be relayed: not a signed EIP-1559 transaction, for
    another chain, not addressed to the escrow, carrying ether, or with calldata no escrow function decodes."""

    code = "invalid_transaction"
    help = "sign an EIP-1559 (type 2) transaction to the escrow on this chain, as POST /v1/campaigns/prepare returns"


class FunctionNotAllowed(LedgerError):
    """Raised when a signed transaction calls an escrow function the route does not relay (a transfer, a settle,
    a create on a campaign's route)."""

    code = "function_not_allowed"

    def __init__(self, function: str, allowed: tuple[str, ...]) -> None:
        self.function = function
        self.allowed = allowed
        super().__init__(f"{function} is not relayed here; this route relays {', '.join(allowed)}")


class WrongSigner(AccessDenied):
    """Raised when a signed transaction given to relay is signed by another wallet than the signed-in one."""

    code = "wrong_signer"
    help = "sign the transaction with the wallet you signed in with"

    def __init__(self, signer: str, caller: str) -> None:
        self.signer = signer
        self.caller = caller
        super().__init__(f"the transaction is signed by {signer}, not by the signed-in wallet {caller}")


class CampaignMismatch(AccessDenied):
    """Raised when a signed transaction acts on another campaign than the one its route names."""

    code = "campaign_mismatch"

    def __init__(self, campaign_id: int, calldata_campaign_id: int) -> None:
        self.campaign_id = campaign_id
        self.calldata_campaign_id = calldata_campaign_id
        super().__init__(f"the transaction acts on campaign {calldata_campaign_id}, not on campaign {campaign_id}")


class RelayedTransactionNotFound(LedgerError, LookupError):
    """Raised when the chain knows no transaction with the given hash (never relayed, or dropped)."""

    code = "transaction_not_found"

    def __init__(self, tx_hash: str) -> None:
        self.tx_hash = tx_hash
        super().__init__(f"the chain knows no transaction {tx_hash}")


class RateLimited(LedgerError):
    """Raised when a caller (an API key, a wallet, or a client address signing in) sends requests faster than its
    limit allows; ``per`` names the limit and ``retry_after`` the whole seconds until a request can go through."""

    code = "rate_limited"
    help = "wait retry_after seconds (the Retry-After header), then keep under the limit's rate"

    def __init__(self, per: str, retry_after: int) -> None:
        self.per = per
        self.retry_after = retry_after
        super().__init__(f"too many requests per {per.replace('_', ' ')}; retry in {retry_after} s")


class ContractRevert(LedgerError):
    """Raised when a contract reverts with a custom error; subclasses are named after the Solidity error."""

    code = "contract_revert"
    #: the Solidity error's ABI input names, in order; the attributes are their snake_case forms
    solidity_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *values: Any) -> None:
        self.values = values
        self.fields = {_snake(name): value for name, value in zip(self.solidity_inputs, values, strict=True)}
        for name, value in self.fields.items():
            setattr(self, name, value)
        shown = ", ".join(f"{k}={_show(v)}" for k, v in self.fields.items())
        super().__init__(f"{type(self).__name__}({shown})")


class UnknownRevert(LedgerError):
    """Raised when a revert carries a selector no known ABI defines, or a plain string reason."""

    code = "contract_revert"

    def __init__(self, data: bytes, reason: str | None = None) -> None:
        self.data = data
        self.reason = reason
        super().__init__(reason or f"execution reverted with data 0x{data.hex()}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.rstrip("_")).lower()


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


# ConsentRegistry
class ConsentInvalidPurposes(ContractRevert):
    """Raised when a purposes bitmask is empty or has bits beyond the six defined purposes."""

    code = "invalid_purposes"
    solidity_inputs = ("purposes",)


class ConsentInvalidExpiry(ContractRevert):
    """Raised when a consent's expiry is not in the future or beyond 2106."""

    code = "invalid_expiry"
    solidity_inputs = ("expiresAt", "now_")


class ConsentInvalidBrand(ContractRevert):
    """Raised when consent names the zero address as brand."""

    code = "invalid_brand"
    solidity_inputs = ("brand",)


class ConsentExpiredSignature(ContractRevert):
    """Raised when a relayed consent signature's deadline has passed; sign again."""

    code = "expired_signature"
    solidity_inputs = ("deadline",)


class ConsentInvalidSigner(ContractRevert):
    """Raised when a relayed consent signature was not made by the consumer (or for another chain or nonce)."""

    code = "invalid_signature"
    solidity_inputs = ("consumer",)


# CampaignEscrow
class EscrowUnknownCampaign(ContractRevert):
    """Raised when a campaign id does not exist."""

    code = "unknown_campaign"
    solidity_inputs = ("campaignId",)


class EscrowNotMarketer(ContractRevert):
    """Raised when someone other than the campaign's marketer tries to manage it."""

    code = "not_marketer"
    solidity_inputs = ("campaignId", "caller")


class EscrowNotAttester(ContractRevert):
    """Raised when a batch is settled by (or signed for) an address that is not the campaign's attester."""

    code = "not_attester"
    solidity_inputs = ("campaignId", "caller")


class EscrowCampaignPaused(ContractRevert):
    """Raised when settling or pausing a paused campaign; the marketer can unpause it."""

    code = "campaign_paused"
    solidity_inputs = ("campaignId",)


class EscrowCampaignClosed(ContractRevert):
    """Raised when changing or settling a closed campaign."""

    code = "campaign_closed"
    solidity_inputs = ("campaignId",)


class EscrowCampaignNotPaused(ContractRevert):
    """Raised when unpausing a campaign that is not paused."""

    code = "campaign_not_paused"
    solidity_inputs = ("campaignId",)


class EscrowCampaignNotEnded(ContractRevert):
    """Raised when closing a campaign before its end date."""

    code = "campaign_not_ended"
    solidity_inputs = ("campaignId", "endsAt", "now_")


class EscrowInvalidToken(ContractRevert):
    """Raised when a campaign's token is not a contract."""

    code = "invalid_token"
    solidity_inputs = ("token",)


class EscrowInvalidBrand(ContractRevert):
    """Raised when a campaign's brand is the zero address."""

    code = "invalid_brand"
    solidity_inputs = ("brand",)


class EscrowInvalidDates(ContractRevert):
    """Raised when a campaign starts after it ends, or has already ended."""

    code = "invalid_dates"
    solidity_inputs = ("startsAt", "endsAt")


class EscrowInvalidPurposes(ContractRevert):
    """Raised when an action requires undefined purposes, or no action is offered (action 8)."""

    code = "invalid_purposes"
    solidity_inputs = ("action", "purposes")


class EscrowInvalidAttester(ContractRevert):
    """Raised when an attester is the zero address."""

    code = "invalid_attester"
    solidity_inputs = ("attester",)


class EscrowAttesterAlreadyAdded(ContractRevert):
    """Raised when adding an attester the campaign already has."""

    code = "attester_already_added"
    solidity_inputs = ("campaignId", "attester")


class EscrowAttesterNotFound(ContractRevert):
    """Raised when removing an attester the campaign does not have."""

    code = "attester_not_found"
    solidity_inputs = ("campaignId", "attester")


class EscrowZeroAmount(ContractRevert):
    """Raised when funding a campaign with zero tokens."""

    code = "zero_amount"


class EscrowTransferShortfall(ContractRevert):
    """Raised when a token delivers less than the amount pulled (fee-on-transfer tokens are not supported)."""

    code = "transfer_shortfall"
    solidity_inputs = ("token", "expected", "received")


class EscrowBudgetTooLarge(ContractRevert):
    """Raised when a campaign's budget plus owed rewards would reach 2^104 base units."""

    code = "budget_too_large"
    solidity_inputs = ("campaignId", "total", "max")


class EscrowMalformedBatch(ContractRevert):
    """Raised when a packed settlement batch is truncated or has an empty group; ``offset`` is the bad byte."""

    code = "malformed_batch"
    solidity_inputs = ("offset",)


class EscrowInvalidAction(ContractRevert):
    """Raised when an engagement in a batch has an action code beyond SUBSCRIBE."""

    code = "invalid_action"
    solidity_inputs = ("offset", "action")


class EscrowExpiredSignature(ContractRevert):
    """Raised when a relayed settlement or claim signature's deadline has passed; sign again."""

    code = "expired_signature"
    solidity_inputs = ("deadline",)


class EscrowInvalidSigner(ContractRevert):
    """Raised when a relayed settlement or claim signature was not made by ``expected``."""

    code = "invalid_signature"
    solidity_inputs = ("expected",)


class EscrowInvalidRecipient(ContractRevert):
    """Raised when claiming to the zero address."""

    code = "invalid_recipient"
    solidity_inputs = ("to",)


class EscrowNothingToClaim(ContractRevert):
    """Raised when a consumer claims from campaigns where nothing is accrued."""

    code = "nothing_to_claim"
    solidity_inputs = ("consumer",)


# OpenZeppelin errors that reach callers through the suite
class ERC20InsufficientBalance(ContractRevert):
    """Raised when a token transfer exceeds the sender's balance."""

    code = "insufficient_balance"
    solidity_inputs = ("sender", "balance", "needed")


class ERC20InsufficientAllowance(ContractRevert):
    """Raised when the escrow may not pull enough tokens: approve or sign a permit first."""

    code = "insufficient_allowance"
    solidity_inputs = ("spender", "allowance", "needed")


class ERC20InvalidReceiver(ContractRevert):
    """Raised when tokens are sent to the zero address."""

    code = "invalid_receiver"
    solidity_inputs = ("receiver",)


class ERC20InvalidSender(ContractRevert):
    """Raised when tokens are sent from the zero address."""

    code = "invalid_sender"
    solidity_inputs = ("sender",)


class ERC20InvalidApprover(ContractRevert):
    """Raised when the zero address approves."""

    code = "invalid_approver"
    solidity_inputs = ("approver",)


class ERC20InvalidSpender(ContractRevert):
    """Raised when the zero address is approved as spender."""

    code = "invalid_spender"
    solidity_inputs = ("spender",)


class ERC2612ExpiredSignature(ContractRevert):
    """Raised when a permit's deadline has passed."""

    code = "expired_signature"
    solidity_inputs = ("deadline",)


class ERC2612InvalidSigner(ContractRevert):
    """Raised when a permit was signed by someone other than the owner."""

    code = "invalid_signature"
    solidity_inputs = ("signer", "owner")


class ECDSAInvalidSignature(ContractRevert):
    """Raised when a signature does not recover to any address."""

    code = "invalid_signature"


class ECDSAInvalidSignatureLength(ContractRevert):
    """Raised when a signature is not 64 or 65 bytes."""

    code = "invalid_signature"
    solidity_inputs = ("length",)


class ECDSAInvalidSignatureS(ContractRevert):
    """Raised when a signature's s value is in the upper half order (malleable)."""

    code = "invalid_signature"
    solidity_inputs = ("s",)


class InvalidAccountNonce(ContractRevert):
    """Raised when a signed message's nonce is not the account's current one."""

    code = "invalid_nonce"
    solidity_inputs = ("account", "currentNonce")


class ReentrancyGuardReentrantCall(ContractRevert):
    """Raised when a token calls back into the escrow during a transfer."""

    code = "reentrant_call"


class SafeERC20FailedOperation(ContractRevert):
    """Raised when a token's transfer returned false."""

    code = "token_transfer_failed"
    solidity_inputs = ("token",)


class InvalidShortString(ContractRevert):
    """Raised at deployment when an EIP-712 domain name is malformed."""

    code = "invalid_short_string"


class StringTooLong(ContractRevert):
    """Raised at deployment when an EIP-712 domain name is too long for a short string."""

    code = "string_too_long"
    solidity_inputs = ("str",)


def revert_classes() -> dict[str, type[ContractRevert]]:
    """Every ContractRevert subclass by its Solidity name, for the decoder."""
    return {cls.__name__: cls for cls in ContractRevert.__subclasses__()}
