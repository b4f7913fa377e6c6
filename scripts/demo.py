"""The demo campaign the main job seeds: one funded campaign, a few consumers, every path of the ledger once.

A grocery chain pays $1-style rewards for installing its app and turning on location, a little for daily opens
and ad views, nothing for email opens (mail proxies fire them with no one present) and a little for clicks.
Consent is granted by signature (gasless), engagements are settled in one batch (one rejected for missing
consent, one for a cap), a reward is claimed gaslessly, and the campaign is closed with its refund while the
unclaimed rewards stay escrowed. Each step reports its transaction hash and gas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3.types import TxReceipt

from ledger.contracts import events, read, transact
from ledger.model import Action, CampaignStatus, Purpose, RejectReason
from ledger.settlement.batch import Engagement, encode_batch
from ledger.suite import TOKEN_DECIMALS, CampaignTerms, Suite

UNIT = 10**TOKEN_DECIMALS
BUDGET = 100 * UNIT
MARKETER_FLOAT = 10_000 * UNIT
CAMPAIGN_SECONDS = 3_600
REAL_TIME_SECONDS = 4  # the main job's demo campaign: its end is waited for, not travelled to
REWARDS = {
    Action.INSTALL: 1 * UNIT,
    Action.LOCATION_OPT_IN: 1 * UNIT,
    Action.DAILY_OPEN: 5 * UNIT // 100,
    Action.AD_VIEW: UNIT // 100,
    Action.AD_CLICK: 2 * UNIT // 100,
    Action.EMAIL_OPEN: 0,  # opens are fired by mail proxies (Apple MPP): recorded, never paid
    Action.EMAIL_CLICK: 2 * UNIT // 100,
    Action.SUBSCRIBE: UNIT // 10,
}


@dataclass(frozen=True)
class Step:
    """One thing the demo did on chain."""

    title: str
    tx_hash: str
    gas: int
    detail: str = ""


@dataclass
class DemoResult:
    campaign_id: int
    paid: list[dict[str, object]] = field(default_factory=list)
    rejected: dict[int, RejectReason] = field(default_factory=dict)
    claimed: int = 0
    refund: int = 0
    owed_after_close: int = 0
    steps: list[Step] = field(default_factory=list)


def tokens(amount: int) -> str:
    """Base units as tokens, exactly (no floats)."""
    whole, frac = divmod(amount, UNIT)
    return f"{whole}.{frac:0{TOKEN_DECIMALS}d}".rstrip("0").rstrip(".") + " ADR"


def run_demo(suite: Suite, report: Callable[[Step], None] = lambda _: None, *, real_time: bool = False) -> DemoResult:
    """Runs the demo on a deployed suite; a devnet is needed. The campaign's end is reached by moving the chain's
    clock an hour ahead, or with ``real_time`` (the main job) by a campaign of ``REAL_TIME_SECONDS`` whose end is
    waited for: the devnet's clock then stays with the wall clock, which is the clock attesters report times in
    and wallets sign deadlines by (a devnet an hour ahead would refuse them both)."""
    chain = suite.chain
    accounts = chain.accounts
    relayer, marketer, attester = accounts.deployer, accounts.marketer, accounts.attester
    alice, bob, carol = accounts.consumers[:3]
    steps: list[Step] = []

    def record(title: str, receipt: TxReceipt, detail: str = "") -> None:
        step = Step(title, "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["gasUsed"]), detail)
        steps.append(step)
        report(step)

    if suite.balance(marketer.address) < BUDGET:
        record("fund the marketer", suite.transfer(relayer, marketer.address, MARKETER_FLOAT), tokens(MARKETER_FLOAT))

    now = chain.latest_timestamp()
    # a devnet well ahead of the wall clock (old state, travelled in time) can only move on; a restarted one runs
    # a second or two ahead (ledger.chain._resume_clock)
    real_time = real_time and now <= time.time() + 10
    terms = CampaignTerms(
        token=suite.token.address,
        brand=marketer.address,
        starts_at=now - 60,
        ends_at=now + (REAL_TIME_SECONDS if real_time else CAMPAIGN_SECONDS),
        rewards=dict(REWARDS),
    )
    campaign_id, receipt = suite.create_campaign(marketer, terms, BUDGET, [attester.address])
    record("marketer creates and funds campaign (permit)", receipt, f"campaign {campaign_id}, {tokens(BUDGET)}")

    deadline = now + 600
    expires = now + 90 * 86_400
    grants = {
        alice: Purpose.ANALYTICS | Purpose.LOCATION | Purpose.ADS | Purpose.EMAIL,
        bob: Purpose.ANALYTICS | Purpose.ADS,
    }
    for consumer, purposes in grants.items():
        signature = suite.sign_grant(consumer, marketer.address, int(purposes), expires, deadline)
        call = suite.registry.functions.grantBySig(
            consumer.address, marketer.address, int(purposes), expires, deadline, signature
        )
        names = ",".join(p.name.lower() for p in Purpose if p in purposes and p.name)
        record(f"{_short(consumer)} consents by signature (relayed)", transact(chain, relayer, call), names)

    at = chain.latest_timestamp() if real_time else chain.increase_time(5)  # at or after the grants
    batch = _engagements(campaign_id, at, alice, bob, carol)
    receipt = transact(chain, attester, suite.escrow.functions.settle(campaign_id, encode_batch(batch)))
    result = DemoResult(campaign_id=campaign_id)
    result.rejected = {int(e["eventId"]): RejectReason(e["reason"]) for e in events(suite.escrow, "Rejected", receipt)}
    result.paid = events(suite.escrow, "Rewarded", receipt)
    reasons = ", ".join(f"#{eid} {reason.name.lower()}" for eid, reason in sorted(result.rejected.items()))
    record(
        f"attester settles {len(batch)} engagements",
        receipt,
        f"{len(result.paid)} paid, {len(result.rejected)} rejected ({reasons})",
    )

    owed = suite.accrued(campaign_id, alice.address)
    claim_deadline = chain.latest_timestamp() + 600
    signature = suite.sign_claim(alice, [campaign_id], alice.address, claim_deadline)
    call = suite.escrow.functions.claimBySig(alice.address, [campaign_id], alice.address, claim_deadline, signature)
    record(f"{_short(alice)} claims gaslessly (relayed)", transact(chain, relayer, call), tokens(owed))
    result.claimed = owed

    if real_time:
        time.sleep(max(0.0, terms.ends_at + 1 - time.time()))
        chain.mine()  # a block at the wall clock's time: the close is estimated against the latest block
    else:
        chain.increase_time(CAMPAIGN_SECONDS + 60)
    receipt = transact(chain, marketer, suite.escrow.functions.close(campaign_id))
    (closed,) = events(suite.escrow, "CampaignClosed", receipt)
    result.refund, result.owed_after_close = int(closed["refund"]), int(closed["owed"])
    record(
        "marketer closes after the end",
        receipt,
        f"refund {tokens(result.refund)}; {tokens(result.owed_after_close)} stays escrowed for unclaimed rewards",
    )
    result.steps = steps
    return result


def _engagements(
    campaign_id: int, at: int, alice: LocalAccount, bob: LocalAccount, carol: LocalAccount
) -> list[Engagement]:
    """What the grocery app, ad server and email service observed: dense event ids from 0, as intake assigns."""
    observed = [
        (alice, Action.INSTALL),
        (alice, Action.LOCATION_OPT_IN),
        (alice, Action.DAILY_OPEN),
        (alice, Action.AD_VIEW),
        (alice, Action.EMAIL_OPEN),
        (bob, Action.INSTALL),
        (bob, Action.INSTALL),  # a second install: the lifetime cap (once) refuses it
        (bob, Action.AD_VIEW),
        (carol, Action.AD_VIEW),  # carol never consented: refused
    ]
    return [
        Engagement(who.address, action, event_id, at, keccak(text=f"demo {campaign_id} {event_id}"))
        for event_id, (who, action) in enumerate(observed)
    ]


def _short(account: LocalAccount) -> str:
    return account.address[:8] + "…"


#: The campaign the main job leaves open for the API: attesters can post engagements to it right away.
OPEN_CAMPAIGN_BUDGET = 1_000 * UNIT
OPEN_CAMPAIGN_SECONDS = 365 * 86_400
_OPEN_CAMPAIGN_MIN_LEFT = 86_400  # a campaign ending sooner than this is not worth reusing


def ensure_open_campaign(suite: Suite) -> tuple[int, bool]:
    """The devnet marketer's active campaign with the attester registered and a day or more to run, creating one
    (a year long, every action offered) when there is none; returns (campaign id, created)."""
    chain = suite.chain
    marketer, attester = chain.accounts.marketer, chain.accounts.attester
    now = chain.latest_timestamp()
    for campaign_id in range(int(read(suite.escrow.functions.campaignCount())), 0, -1):
        state = suite.campaign_state(campaign_id)
        ends_at = int(read(suite.escrow.functions.terms(campaign_id))[3])
        if (
            state.marketer == marketer.address
            and state.status == CampaignStatus.ACTIVE
            and ends_at > now + _OPEN_CAMPAIGN_MIN_LEFT
            and read(suite.escrow.functions.isAttester(campaign_id, attester.address))
        ):
            return campaign_id, False
    if suite.balance(marketer.address) < OPEN_CAMPAIGN_BUDGET:
        suite.transfer(chain.accounts.deployer, marketer.address, MARKETER_FLOAT)
    terms = CampaignTerms(
        token=suite.token.address,
        brand=marketer.address,
        # the demo moved the devnet's clock ahead; attesters stamp engagements with the wall clock
        starts_at=min(now, int(time.time())) - 60,
        ends_at=now + OPEN_CAMPAIGN_SECONDS,
        rewards=dict(REWARDS),
    )
    campaign_id, _ = suite.create_campaign(marketer, terms, OPEN_CAMPAIGN_BUDGET, [attester.address])
    return campaign_id, True
