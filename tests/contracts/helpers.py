"""Builders the contract tests share: campaigns with sensible defaults, consent, engagements, settlement."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.types import TxReceipt

from ledger.chain import Chain
from ledger.contracts import events, read, transact
from ledger.errors import ContractRevert
from ledger.model import Action, Purpose, RejectReason
from ledger.settlement.batch import Engagement, encode_batch
from ledger.settlement.records import RewardRecord
from ledger.suite import CampaignTerms, Suite

TOKEN = 10**18
MARKETER_FUNDS = 1_000_000 * TOKEN
DAY = 86_400
REWARDS = {
    Action.INSTALL: 1 * TOKEN,
    Action.LOCATION_OPT_IN: 1 * TOKEN,
    Action.DAILY_OPEN: TOKEN // 100,
    Action.AD_VIEW: TOKEN // 1000,
    Action.AD_CLICK: TOKEN // 100,
    Action.EMAIL_OPEN: 0,  # opens are fired by mail proxies: recorded, not paid
    Action.EMAIL_CLICK: TOKEN // 100,
    Action.SUBSCRIBE: TOKEN // 10,
}


@contextmanager
def reverts(error: type[ContractRevert], **fields: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
    """Asserts the block reverts with ``error`` and, for each given field, that argument's value."""
    with pytest.raises(error) as info:
        yield info
    for name, expected in fields.items():
        assert getattr(info.value, name) == expected, f"{name}: {getattr(info.value, name)!r} != {expected!r}"


def evidence(n: int) -> bytes:
    return keccak(text=f"evidence-{n}")


class CampaignFactory:
    """Creates funded campaigns and settles engagements on them, numbering event ids densely per campaign."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.chain = suite.chain
        self._ids: dict[int, itertools.count[int]] = {}

    def terms(self, **overrides: Any) -> CampaignTerms:
        now = self.chain.latest_timestamp()
        base = CampaignTerms(
            token=self.suite.token.address,
            brand=self.chain.accounts.marketer.address,
            starts_at=now - DAY,
            ends_at=now + 30 * DAY,
            rewards=dict(REWARDS),
        )
        return replace(base, **overrides)

    def create(self, budget: int = 1_000 * TOKEN, attesters: list[str] | None = None, **overrides: Any) -> int:
        accounts = self.chain.accounts
        campaign_id, _ = self.suite.create_campaign(
            accounts.marketer,
            self.terms(**overrides),
            budget,
            attesters if attesters is not None else [accounts.attester.address],
        )
        return campaign_id

    def consent(
        self, consumer: LocalAccount, purposes: int = int(Purpose(0x3F)), days: int = 90, brand: str | None = None
    ) -> TxReceipt:
        """The consumer grants consent directly (tests of the signed path use ConsentRegistry.grantBySig)."""
        brand = brand or self.chain.accounts.marketer.address
        expires = self.chain.latest_timestamp() + days * DAY
        return transact(self.chain, consumer, self.suite.registry.functions.grant(brand, purposes, expires))

    def engagement(
        self, campaign_id: int, consumer: str, action: Action, time: int | None = None, event_id: int | None = None
    ) -> Engagement:
        counter = self._ids.setdefault(campaign_id, itertools.count())
        eid = next(counter) if event_id is None else event_id
        when = self.chain.latest_timestamp() if time is None else time
        return Engagement(consumer, action, eid, when, evidence(eid))

    def settle(
        self, campaign_id: int, engagements: list[Engagement], attester: LocalAccount | None = None
    ) -> TxReceipt:
        attester = attester or self.chain.accounts.attester
        call = self.suite.escrow.functions.settle(campaign_id, encode_batch(engagements))
        return transact(self.chain, attester, call)

    def rewarded(self, receipt: TxReceipt) -> list[dict[str, Any]]:
        """Rewarded events with the packed record unpacked (see ICampaignEscrow)."""
        out = []
        for event in events(self.suite.escrow, "Rewarded", receipt):
            record = RewardRecord.unpack(int(event["record"]))
            out.append(
                {
                    "consumer": event["consumer"],
                    "evidence": bytes(event["evidenceHash"]),
                    "amount": record.amount,
                    "time": record.time,
                    "action": record.action,
                    "event_id": record.event_id,
                    "campaign_id": record.campaign_id,
                }
            )
        return out

    def rejected(self, receipt: TxReceipt) -> dict[int, RejectReason]:
        """event id -> reason for each Rejected event."""
        return {int(e["eventId"]): RejectReason(e["reason"]) for e in events(self.suite.escrow, "Rejected", receipt)}


class PendingTime(int):
    """The next block's timestamp as eth-tester announces it. It opens the pending block on the wall clock, and a
    call made at a second's boundary just after reading it can run a second later (CI saw it once in ~1,800
    tests), so it equals that time or the next second; anything else still fails."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and int(self) <= other <= int(self) + 1

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = int.__hash__


def next_timestamp(chain: Chain) -> int:
    """``block.timestamp`` of the next transaction (see PendingTime for the one second it may move)."""
    return PendingTime(chain.w3.eth.get_block("pending")["timestamp"])


def pinned_next_timestamp(chain: Chain) -> int:
    """The next block's timestamp, exactly: the clock moved a minute ahead first, so eth-tester's pending block no
    longer follows the wall clock and cannot cross a second while a test uses the time inside a transaction."""
    chain.increase_time(60)
    return int(chain.w3.eth.get_block("pending")["timestamp"])


def block_time(chain: Chain, receipt: TxReceipt) -> int:
    """The timestamp of the block that mined ``receipt``."""
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


# Settlement outcomes, read from a receipt or from the escrow (the test_campaign_escrow_settlement_* files).
PAID = RejectReason.NONE
REWARDED_TOPIC = keccak(text="Rewarded(address,uint256,bytes32)")
REJECTED_TOPIC = keccak(text="Rejected(uint256,address,uint256,uint8)")

# The tests' engagements carry evidence(event id) (see evidence above), so a Rewarded log names its engagement by
# its evidence hash too: the rule tests then do not depend on the record packing, which has tests of its own.
EVIDENCE_IDS = {evidence(i): i for i in [*range(1024), 2**48 - 1]}


def outcomes(receipt: TxReceipt) -> list[tuple[int, RejectReason]]:
    """(event id, PAID or the reject reason) for every engagement, in the order the contract settled them."""
    found = []
    for log in receipt["logs"]:
        topic, data = bytes(log["topics"][0]), bytes(log["data"])
        if topic == REWARDED_TOPIC:
            found.append((EVIDENCE_IDS[data[32:64]], PAID))
        elif topic == REJECTED_TOPIC:
            found.append((int.from_bytes(data[:32], "big"), RejectReason(int.from_bytes(data[32:], "big"))))
    return found


def batch_settled(suite: Suite, receipt: TxReceipt) -> dict:
    (event,) = events(suite.escrow, "BatchSettled", receipt)
    return event


def account(suite: Suite, campaign_id: int, consumer: str) -> tuple[int, int, list[int], list[int]]:
    accrued, day, lifetime, daily = read(suite.escrow.functions.accountOf(campaign_id, consumer))
    return int(accrued), int(day), list(lifetime), list(daily)


def is_settled(suite: Suite, campaign_id: int, event_id: int) -> bool:
    return bool(read(suite.escrow.functions.isSettled(campaign_id, event_id)))


def settle_raw(suite: Suite, attester: LocalAccount, campaign_id: int, batch: bytes) -> TxReceipt:
    return transact(suite.chain, attester, suite.escrow.functions.settle(campaign_id, batch))
