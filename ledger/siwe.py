"""Sign-In with Ethereum (EIP-4361): the message, its exact text, and its verification.

The ``siwe`` package cannot be installed beside web3 8 (TOOLCHAIN.md), so this module implements the EIP itself.
It lives in ``ledger/`` because the API verifies sign-ins and the wallet creates and signs them.

Parsing is strict, by the EIP's ABNF: the exact line structure and field order, LF line ends only, no trailing
newline, EIP-55 checksummed address, RFC 3986 authority and URIs (checked in full by the RFC's ABNF; IPv6
literals by ``ipaddress``), RFC 3339 date-times (``T``/``Z`` in either case, as ABNF strings are). A
``SiweMessage`` validates its fields however it is built, so ``prepare()`` always renders a parseable text and
``parse(prepare(m)) == m``, ``prepare(parse(t)) == t``. Date-times are kept as the text that was signed.
The statement may be empty (the EIP's ``*( reserved / unreserved / " " )``; spruceid's grammar says ``1*``).
Deliberate departures from the bare ABNF, each the reference implementations' behaviour or needed for the round
trip: an empty domain is refused; a chain id with leading zeros is refused (``01`` would not render back);
a leap second (``:60``) is read as the next second; dates Python cannot hold (year 0000) are refused.

``verify`` checks, in order: domain and URI (exact string equality; the URI only if given), chain id, issued-at
not beyond ``now`` + ``issued_at_skew`` (the EIP defines issued-at but asks no check of it; adledger's API hands
out the nonce just before sign-in, so a later issued-at means a wrong clock or a message prepared in advance),
expiration, not-before, the EIP-191 signature (EOA only: ERC-1271 contract wallets would need a chain call and
are not supported; high-s twins are refused, as by EIP-2 and OpenZeppelin's ECDSA), then the nonce through the
caller's ``nonce_is_fresh``, last, so a rejected message never spends a nonce. ``scheme`` is not compared: it is
for the wallet's phishing check (the EIP's wallet section).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils.address import is_checksum_address

from ledger.errors import (
    SiweChainMismatch,
    SiweDomainMismatch,
    SiweExpired,
    SiweInvalidSignature,
    SiweIssuedInFuture,
    SiweMalformed,
    SiweNonceUsed,
    SiweNotYetValid,
    SiweUriMismatch,
)

PREAMBLE_SUFFIX = " wants you to sign in with your Ethereum account:"
VERSION = "1"
# A message may say it was issued this far after the verifier's clock: wallet and server clocks drift apart by
# seconds when NTP-synced. A message from further ahead was prepared for later use or by a broken clock.
ISSUED_AT_SKEW = timedelta(seconds=60)
# 17 characters of [A-Za-z0-9], as the reference implementation's generateNonce: ~101 bits.
NONCE_LENGTH = 17
_NONCE_ALPHABET = string.ascii_letters + string.digits
# secp256k1's group order; a signature with s above N/2 is the malleated twin of a low-s one (EIP-2).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# RFC 3986 and EIP-4361 rules, ASCII only (character classes are spelled out; ``\d`` would admit other digits).
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT_ENCODED = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT_ENCODED})"
_SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT_ENCODED})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT_ENCODED})*"
_IPV_FUTURE = rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
_AUTHORITY = rf"(?:{_USERINFO}@)?(?P<host>\[[^\]]*\]|{_REG_NAME})(?::[0-9]*)?"
_SEGMENT_NZ = rf"{_PCHAR}+"
_HIER_PART = rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_SEGMENT_NZ}(?:/{_PCHAR}*)*)?|{_SEGMENT_NZ}(?:/{_PCHAR}*)*|)"
_FRAGMENT = rf"(?:{_PCHAR}|[/?])*"

#: the ABNF rules checked here, by their names in EIP-4361 and RFC 3986 (the IP literal inside a host is
#: checked separately, see ``_valid_host``)
RULES: dict[str, re.Pattern[str]] = {
    "scheme": re.compile(_SCHEME),
    "authority": re.compile(_AUTHORITY),
    "URI": re.compile(rf"{_SCHEME}:{_HIER_PART}(?:\?{_FRAGMENT})?(?:#{_FRAGMENT})?"),
    "userinfo": re.compile(_USERINFO),
    "reg-name": re.compile(_REG_NAME),
    "IPvFuture": re.compile(_IPV_FUTURE),
    "pct-encoded": re.compile(_PCT_ENCODED),
    "segment-nz": re.compile(_SEGMENT_NZ),
    "fragment": re.compile(_FRAGMENT),
    "address": re.compile(r"0x[0-9A-Fa-f]{40}"),
    "statement": re.compile(rf"[:/?#\[\]@{_SUB_DELIMS}{_UNRESERVED} ]*"),
    "nonce": re.compile(r"[A-Za-z0-9]{8,}"),
    "chain-id": re.compile(r"0|[1-9][0-9]*"),  # 1*DIGIT, canonical (see the module docstring)
    "request-id": re.compile(rf"{_PCHAR}*"),
    "date-time": re.compile(
        r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
        r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?P<fraction>\.[0-9]+)?"
        r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})"
    ),
}
_PREAMBLE = re.compile(rf"(?:(?P<scheme>{_SCHEME})://)?(?P<domain>.*){re.escape(PREAMBLE_SUFFIX)}")


@dataclass(frozen=True, kw_only=True)
class SiweMessage:
    """An EIP-4361 message; every field is checked on construction (``SiweMalformed`` names the one at fault).

    ``version`` has no default, as in the reference implementations (their "missing version" vector): pass
    ``VERSION``.

    ``statement=""`` and ``resources=()`` are present-but-empty (rendered as an empty line, a bare
    ``Resources:``), distinct from None (absent), as the ABNF distinguishes them.
    """

    scheme: str | None = None
    domain: str
    address: str
    statement: str | None = None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: str
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.resources, list):  # JSON gives lists; keep the frozen message hashable
            object.__setattr__(self, "resources", tuple(self.resources))
        if self.scheme is not None:
            _check_rule("scheme", self.scheme, "scheme", "an RFC 3986 scheme")
        _check_domain(self.domain)
        _check_address(self.address)
        if self.statement is not None:
            _check_rule("statement", self.statement, "statement", "reserved, unreserved or space characters")
        _check_uri(self.uri, "uri")
        if self.version != VERSION:
            raise SiweMalformed(f"the version must be {VERSION!r}, not {self.version!r}", field="version")
        if isinstance(self.chain_id, bool) or not isinstance(self.chain_id, int) or self.chain_id < 0:
            raise SiweMalformed(f"the chain id must be a non-negative int, not {self.chain_id!r}", field="chain_id")
        _check_rule("nonce", self.nonce, "nonce", "at least 8 letters and digits")
        for name in ("issued_at", "expiration_time", "not_before"):
            value = getattr(self, name)
            if value is not None or name == "issued_at":
                parse_datetime(value, name)
        if self.request_id is not None:
            _check_rule("request-id", self.request_id, "request_id", "RFC 3986 pchars")
        if self.resources is not None:
            if not isinstance(self.resources, tuple):
                raise SiweMalformed(f"resources must be a tuple of URIs, not {self.resources!r}", field="resources")
            for index, resource in enumerate(self.resources):
                _check_uri(resource, f"resources[{index}]")

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        """The message whose exact text is ``text``; SiweMalformed names the line (1-based) and field at fault."""
        lines = _Lines(text)
        preamble = lines.take("domain")
        head = _PREAMBLE.fullmatch(preamble)
        if head is None:
            raise SiweMalformed(f"the first line must end with {PREAMBLE_SUFFIX!r}", field="domain", line=1)
        values: dict[str, str | None] = {"scheme": head["scheme"], "domain": head["domain"]}
        where = {"scheme": 1, "domain": 1}
        values["address"], where["address"] = lines.take("address"), lines.number
        lines.blank("address")
        # address LF LF [ statement LF ] LF "URI: ": three LFs mean no statement, four an empty one
        if lines.peek() == "" and not lines.peek_is_blank_after():
            lines.blank("statement")
        else:
            values["statement"], where["statement"] = lines.take("statement"), lines.number
            lines.blank("statement")
        for name, prefix in (
            ("uri", "URI: "),
            ("version", "Version: "),
            ("chain_id", "Chain ID: "),
            ("nonce", "Nonce: "),
            ("issued_at", "Issued At: "),
        ):
            values[name], where[name] = lines.field(prefix, name), lines.number
        for name, prefix in (
            ("expiration_time", "Expiration Time: "),
            ("not_before", "Not Before: "),
            ("request_id", "Request ID: "),
        ):
            if lines.peek_starts(prefix):
                values[name], where[name] = lines.field(prefix, name), lines.number
        resources: list[str] | None = None
        if lines.peek() == "Resources:":
            lines.take("resources")
            resources = []
            while lines.peek() is not None:
                resources.append(lines.field("- ", f"resources[{len(resources)}]"))
                where[f"resources[{len(resources) - 1}]"] = lines.number
        if lines.peek() is not None:
            raise SiweMalformed(
                f"unexpected line {lines.peek()!r}: after Issued At come only Expiration Time, Not Before, "
                "Request ID and Resources, in that order",
                line=lines.number + 1,
            )
        chain_id = values.pop("chain_id") or ""
        if not RULES["chain-id"].fullmatch(chain_id):
            raise SiweMalformed(f"{chain_id!r} is not a decimal chain id", field="chain_id", line=where["chain_id"])
        try:
            return cls(
                **values,  # type: ignore[arg-type]
                chain_id=int(chain_id),
                resources=None if resources is None else tuple(resources),
            )
        except SiweMalformed as exc:
            if exc.line is None and exc.field in where:
                raise SiweMalformed(exc.reason, field=exc.field, line=where[exc.field]) from None
            raise

    def prepare(self) -> str:
        """The exact text to sign (EIP-191 ``personal_sign``), as the EIP's template lays it out."""
        origin = f"{self.scheme}://{self.domain}" if self.scheme is not None else self.domain
        lines = [origin + PREAMBLE_SUFFIX, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += [
            "",
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources is not None:
            lines += ["Resources:", *(f"- {resource}" for resource in self.resources)]
        return "\n".join(lines)


def generate_nonce(length: int = NONCE_LENGTH) -> str:
    """A random nonce of ``length`` (at least 8) letters and digits, from ``secrets``."""
    if length < 8:
        raise ValueError(f"an EIP-4361 nonce has at least 8 characters, not {length}")
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(length))


def format_datetime(moment: datetime) -> str:
    """``moment`` as an RFC 3339 UTC date-time with milliseconds (``2021-09-30T16:25:24.000Z``), as JS writes it."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no defined instant; give a timezone-aware one")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_datetime(text: str, field_name: str = "date-time") -> datetime:
    """The aware instant an RFC 3339 date-time names; fractions beyond microseconds are truncated."""
    match = RULES["date-time"].fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SiweMalformed(f"{text!r} is not an RFC 3339 date-time", field=field_name)
    part = {name: int(value) for name, value in match.groupdict().items() if name not in ("fraction", "offset")}
    fraction = (match["fraction"] or ".")[1:7].ljust(6, "0")
    offset = match["offset"]
    try:
        if offset in ("Z", "z"):
            zone = UTC
        else:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError(f"offset {offset} out of range")
            zone = timezone((-1 if offset[0] == "-" else 1) * timedelta(hours=hours, minutes=minutes))
        leap = part["second"] == 60  # RFC 3339 allows a leap second; Python cannot hold one
        moment = datetime(
            part["year"],
            part["month"],
            part["day"],
            part["hour"],
            part["minute"],
            59 if leap else part["second"],
            int(fraction),
            tzinfo=zone,
        )
    except ValueError as exc:
        raise SiweMalformed(f"{text!r} is not a valid date-time ({exc})", field=field_name) from None
    return moment + timedelta(seconds=1) if leap else moment


def sign(account: LocalAccount, message: SiweMessage) -> bytes:
    """A 65-byte EIP-191 signature of the message's text by ``account``."""
    return bytes(account.sign_message(encode_defunct(text=message.prepare())).signature)


def verify(
    message: str | SiweMessage,
    signature: bytes | str,
    *,
    domain: str,
    uri: str | None = None,
    chain_id: int,
    now: datetime | None = None,
    nonce_is_fresh: Callable[[str], bool] | None = None,
    issued_at_skew: timedelta | None = ISSUED_AT_SKEW,
) -> SiweMessage:
    """The message, once it proves its address signed in to ``domain`` on ``chain_id`` at ``now``.

    ``signature`` is 65 bytes or their hex (``0x`` optional). ``nonce_is_fresh`` is called only after every other
    check passed; it must atomically spend the nonce and return False if it was unknown or already used (without
    it, replay protection is the caller's job). ``issued_at_skew=None`` skips the issued-at check, as the
    reference implementations do. Raises the SiweError subclass naming the first failed check.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(message, SiweMessage):
        parsed, text = message, message.prepare()
    else:
        parsed, text = SiweMessage.parse(message), message
    if parsed.domain != domain:
        raise SiweDomainMismatch(expected=domain, actual=parsed.domain)
    if uri is not None and parsed.uri != uri:
        raise SiweUriMismatch(expected=uri, actual=parsed.uri)
    if parsed.chain_id != chain_id:
        raise SiweChainMismatch(expected=chain_id, actual=parsed.chain_id)
    at = datetime.now(UTC) if now is None else now
    if issued_at_skew is not None and parse_datetime(parsed.issued_at) > at + issued_at_skew:
        raise SiweIssuedInFuture(parsed.issued_at, format_datetime(at))
    if parsed.expiration_time is not None and at >= parse_datetime(parsed.expiration_time):
        raise SiweExpired(parsed.expiration_time, format_datetime(at))
    if parsed.not_before is not None and at < parse_datetime(parsed.not_before):
        raise SiweNotYetValid(parsed.not_before, format_datetime(at))
    signer = _recover(text, signature, parsed.address)
    if signer != parsed.address:
        raise SiweInvalidSignature(parsed.address, signer)
    if nonce_is_fresh is not None and not nonce_is_fresh(parsed.nonce):
        raise SiweNonceUsed(parsed.nonce)
    return parsed


def _recover(text: str, signature: bytes | str, address: str) -> str:
    """The address whose key made ``signature`` over ``text``; SiweInvalidSignature if no key could have."""
    raw = _signature_bytes(signature, address)
    v = raw[64] + 27 if raw[64] in (0, 1) else raw[64]  # some wallets give the recovery id as 0/1, not 27/28
    if v not in (27, 28):
        raise SiweInvalidSignature(address, None, f"the signature's v is {raw[64]}, not 27 or 28 (or 0 or 1)")
    if int.from_bytes(raw[32:64], "big") > _SECP256K1_N // 2:
        raise SiweInvalidSignature(address, None, "the signature's s is in the upper half of the curve order (EIP-2)")
    try:
        signer: str = Account.recover_message(encode_defunct(text=text), signature=raw[:64] + bytes([v]))
    except (BadSignature, ValueError) as exc:
        raise SiweInvalidSignature(address, None, f"no key made this signature ({exc})") from None
    return signer


def _signature_bytes(signature: bytes | str, address: str) -> bytes:
    if isinstance(signature, str):
        digits = signature[2:] if signature[:2] in ("0x", "0X") else signature
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})*", digits):
            raise SiweInvalidSignature(address, None, "the signature is not an even number of hex digits")
        signature = bytes.fromhex(digits)
    if not isinstance(signature, bytes | bytearray) or len(signature) != 65:
        size = len(signature) if isinstance(signature, bytes | bytearray) else type(signature).__name__
        raise SiweInvalidSignature(address, None, f"an EOA signature has 65 bytes, not {size}")
    return bytes(signature)


def _check_rule(rule: str, value: object, field_name: str, expected: str) -> None:
    if not isinstance(value, str) or not RULES[rule].fullmatch(value):
        raise SiweMalformed(f"{value!r} is not {expected}", field=field_name)


def _check_domain(domain: object) -> None:
    if domain == "":
        raise SiweMalformed("the domain is empty", field="domain")
    match = RULES["authority"].fullmatch(domain) if isinstance(domain, str) else None
    if match is None or not _valid_host(match["host"]):
        raise SiweMalformed(f"{domain!r} is not an RFC 3986 authority", field="domain")


def _check_address(address: object) -> None:
    _check_rule("address", address, "address", "0x and 40 hex digits")
    if not is_checksum_address(address):
        raise SiweMalformed(f"{address!r} is not EIP-55 checksummed", field="address")


def _check_uri(uri: object, field_name: str) -> None:
    match = RULES["URI"].fullmatch(uri) if isinstance(uri, str) else None
    if match is None or not _valid_host(match["host"]):
        raise SiweMalformed(f"{uri!r} is not an RFC 3986 URI", field=field_name)


def _valid_host(host: str | None) -> bool:
    """Whether an IP literal (``[...]``) holds an IPv6 address or IPvFuture; other hosts passed the regex."""
    if host is None or not host.startswith("["):
        return True
    inner = host[1:-1]
    if RULES["IPvFuture"].fullmatch(inner):
        return True
    if not re.fullmatch(r"[0-9A-Fa-f:.]+", inner):  # ipaddress would also take a zone id ("%eth0")
        return False
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        return False
    return True


class _Lines:
    """The message's lines (split on LF only), read in order; ``number`` is the last line taken, 1-based."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.number = 0

    def peek(self) -> str | None:
        return self.lines[self.number] if self.number < len(self.lines) else None

    def peek_is_blank_after(self) -> bool:
        return self.number + 1 < len(self.lines) and self.lines[self.number + 1] == ""

    def peek_starts(self, prefix: str) -> bool:
        line = self.peek()
        return line is not None and line.startswith(prefix)

    def take(self, field_name: str) -> str:
        line = self.peek()
        if line is None:
            raise SiweMalformed("the message ends too early", field=field_name, line=self.number + 1)
        self.number += 1
        return line

    def blank(self, after: str) -> None:
        line = self.take(after)
        if line != "":
            raise SiweMalformed(f"expected an empty line, found {line!r}", field=after, line=self.number)

    def field(self, prefix: str, field_name: str) -> str:
        line = self.take(field_name)
        if not line.startswith(prefix):
            raise SiweMalformed(
                f"expected a line starting {prefix!r}, found {line!r}", field=field_name, line=self.number
            )
        return line[len(prefix) :]
