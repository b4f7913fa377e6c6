"""Escrow invariants under random operations: a hypothesis state machine on eth-tester.

The rules are what marketers, consumers and attesters do (create, top up, pause, close; grant and revoke consent;
claim; settle small random batches; time passing). A plain-Python model of the escrow's rules predicts every
outcome, and after each step the books must balance:
- the escrow holds exactly the sum of every campaign's budget and owed total;
- each campaign's owed total is the sum of its consumers' accruals;
- no (campaign, event id) is ever paid twice;
- everything funded is either claimed, refunded, still budgeted or still owed;
- and the chain agrees with the model on every budget, owed total, status and consumer account.
Each example runs in a chain snapshot taken by the machine and reverted at its teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.chain import Chain
from ledger.contracts import deploy, events, read, transact
from ledger.errors import (
    EscrowCampaignClosed,
    EscrowCampaignNotEnded,
    EscrowCampaignPaused,
    EscrowNothingToClaim,
)
from ledger.model import ACTION_COUNT, ALL_PURPOSES, DEFAULT_PURPOSES, Action, CampaignStatus, Purpose, RejectReason
from ledger.settlement.batch import Engagement, encode_batch, group_by_consumer
from ledger.settlement.records import AMOUNT_BITS, CAMPAIGN_SHIFT
from ledger.suite import CampaignTerms, Suite
from tests.contracts.helpers import DAY, MARKETER_FUNDS, block_time, next_timestamp, reverts

CONSUMERS = 3
MAX_CAMPAIGNS = 3
GAS = 3_000_000  # explicit, so eth-tester does not binary-search an estimate for every step
PAID = RejectReason.NONE
REWARDED_TOPIC = keccak(text="Rewarded(address,uint256,bytes32)")
REJECTED_TOPIC = keccak(text="Rejected(uint256,address,uint256,uint8)")
AMOUNT_MASK = (1 << AMOUNT_BITS) - 1


# --------------------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------------------


@dataclass
class ConsentModel:
    purposes: int = 0
    expires: int = 0
    granted: list[int] = field(default_factory=lambda: [0] * 6)

    def grant(self, added: int, expires: int, now: int) -> None:
        if now >= self.expires:  # a lapsed record starts afresh
            self.purposes, self.granted = 0, [0] * 6
        for i in range(6):
            if added & ~self.purposes & (1 << i):
                self.granted[i] = now
        self.purposes |= added
        self.expires = expires

    def revoke(self, removed: int) -> None:
        for i in range(6):
            if removed & (1 << i):
                self.granted[i] = 0
        self.purposes &= ~removed

    def covers(self, required: int, at: int, now: int) -> bool:
        if now >= self.expires or at >= self.expires or self.purposes & required != required:
            return False
        return all(self.granted[i] <= at for i in range(6) if required & (1 << i))


@dataclass
class AccountModel:
    accrued: int = 0
    day: int = 0
    lifetime: list[int] = field(default_factory=lambda: [0] * ACTION_COUNT)
    daily: list[int] = field(default_factory=lambda: [0] * ACTION_COUNT)


@dataclass
class CampaignModel:
    campaign_id: int
    terms: CampaignTerms
    budget: int
    owed: int = 0
    status: CampaignStatus = CampaignStatus.ACTIVE
    settled: set[int] = field(default_factory=set)
    submitted: list[int] = field(default_factory=list)
    next_id: int = 0
    accounts: dict[str, AccountModel] = field(default_factory=dict)

    def settle_one(self, consent: ConsentModel, e: Engagement, now: int) -> RejectReason:
        """The contract's rules for one engagement, in the contract's order; a paid one updates the books."""
        if e.event_id in self.settled:
            return RejectReason.DUPLICATE_EVENT
        self.settled.add(e.event_id)
        t, a = self.terms, e.action
        required = t.purposes.get(a, 0)
        if not required:
            return RejectReason.ACTION_NOT_OFFERED
        if e.time > now:
            return RejectReason.TIME_IN_FUTURE
        if not t.starts_at <= e.time <= t.ends_at:
            return RejectReason.OUTSIDE_CAMPAIGN_DATES
        if not consent.covers(required, e.time, now):
            return RejectReason.NO_CONSENT
        account = self.accounts.setdefault(e.consumer, AccountModel())
        cap = t.lifetime_caps.get(a, 0)
        if cap and account.lifetime[a] >= cap:
            return RejectReason.LIFETIME_CAP_REACHED
        daily_cap, day = t.daily_caps.get(a, 0), e.time // DAY
        if daily_cap:
            if day < account.day:
                return RejectReason.STALE_DAY
            if (0 if day > account.day else account.daily[a]) >= daily_cap:
                return RejectReason.DAILY_CAP_REACHED
        reward = t.rewards.get(a, 0)
        if reward > self.budget:
            return RejectReason.BUDGET_EXHAUSTED
        if daily_cap:
            if day > account.day:
                account.day, account.daily = day, [0] * ACTION_COUNT
            account.daily[a] += 1
        account.lifetime[a] = min(account.lifetime[a] + 1, 255)
        account.accrued += reward
        self.budget -= reward
        self.owed += reward
        return PAID


# --------------------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------------------

purposes_choice = st.sampled_from(["off", "default", "default", "double"])
# times relative to the latest block ("now"), or to the campaign's dates; mostly recent, so mostly consented
time_choice = st.one_of(
    st.integers(-600, 0).map(lambda d: ("now", d)),
    st.integers(-DAY - 3600, 0).map(lambda d: ("now", d)),  # often across a UTC midnight: stale days
    st.integers(-3 * DAY, 90).map(lambda d: ("now", d)),
    st.sampled_from([("start", -1), ("start", 0), ("end", 0), ("end", 1)]),
)
# an event id: fresh (None) three times in four, else one submitted before (index into the campaign's history)
event_choice = st.integers(0, 39).map(lambda n: None if n % 4 else n // 4)
engagement_spec = st.tuples(st.integers(0, CONSUMERS - 1), st.sampled_from(list(Action)), event_choice, time_choice)
# the happy path: a fresh id, a recent time
recent_spec = st.tuples(
    st.integers(0, CONSUMERS - 1),
    st.sampled_from(list(Action)),
    st.none(),
    st.integers(-300, 0).map(lambda d: ("now", d)),
)


class EscrowMachine(RuleBasedStateMachine):
    campaigns = Bundle("campaigns")

    def __init__(self, chain: Chain, suite: Suite, lens: Contract) -> None:
        super().__init__()
        self.chain, self.suite, self.lens = chain, suite, lens
        self.snapshot = chain.snapshot()
        accounts = chain.accounts
        self.marketer, self.attester = accounts.marketer, accounts.attester
        self.consumers: list[LocalAccount] = list(accounts.consumers[:CONSUMERS])
        self.sink = accounts.consumers[CONSUMERS].address  # where some claims are paid
        self.brand = accounts.marketer.address
        self.consents = {c.address: ConsentModel() for c in self.consumers}
        self.models: dict[int, CampaignModel] = {}
        self.escrow_start = suite.balance(suite.escrow.address)
        self.funded = self.claimed = self.refunded = 0  # from the chain's events
        self.paid_pairs: list[tuple[int, int]] = []
        self.evidence: dict[bytes, tuple[int, int, Action]] = {}  # evidence hash -> (campaign, event id, action)
        self.submissions = 0
        # the books are read again only after a step that sent something to the escrow: nothing else (consent,
        # time) can change its storage or balance, and the lens call is the slow part of a step
        self.escrow_touched = True
        self.last_books: tuple[int, dict[int, tuple]] = (0, {})

    def teardown(self) -> None:
        self.chain.revert(self.snapshot)

    def send(self, sender: LocalAccount, call: ContractFunction) -> TxReceipt:
        self.escrow_touched |= call.address == self.suite.escrow.address
        return transact(self.chain, sender, call, gas=GAS)

    def refused(self, sender: LocalAccount, call: ContractFunction) -> None:
        """Sends a call expected to revert; without a fixed gas, so the estimate stops it and names the error."""
        self.escrow_touched |= call.address == self.suite.escrow.address
        transact(self.chain, sender, call)

    # -- campaigns --------------------------------------------------------------------------------------

    @initialize(target=campaigns)
    def first_campaign_and_consents(self) -> int:
        """Every consumer consents to everything, then a day and a half passes, so that engagements of the last
        day or so are consented to; the first campaign offers every action with the default caps."""
        for consumer in range(CONSUMERS):
            self.grant_consent(consumer, int(ALL_PURPOSES), 6)
        self.chain.increase_time(DAY + DAY // 2)
        return self._create(
            budget=12,  # runs out after a dozen rewards or so, until a top-up
            rewards=[1, 1, 1, 1, 1, 0, 1, 2],
            purposes=["default"] * ACTION_COUNT,
            lifetime=[1, 1, 0, 0, 0, 0, 0, 1],
            daily=[0, 0, 1, 0, 0, 0, 0, 0],
            started=2 * DAY,
            lasts=3 * DAY,
        )

    @precondition(lambda self: len(self.models) < MAX_CAMPAIGNS)
    @rule(
        target=campaigns,
        budget=st.integers(1, 40),
        rewards=st.lists(st.sampled_from([0, 1, 2, 5]), min_size=ACTION_COUNT, max_size=ACTION_COUNT),
        purposes=st.lists(purposes_choice, min_size=ACTION_COUNT, max_size=ACTION_COUNT).filter(
            lambda p: any(x != "off" for x in p)
        ),
        lifetime=st.lists(st.sampled_from([0, 1, 2]), min_size=ACTION_COUNT, max_size=ACTION_COUNT),
        daily=st.lists(st.sampled_from([0, 0, 1, 2]), min_size=ACTION_COUNT, max_size=ACTION_COUNT),
        started=st.integers(0, 2 * DAY),
        lasts=st.integers(DAY // 2, 4 * DAY),
    )
    def create_campaign(self, budget, rewards, purposes, lifetime, daily, started, lasts) -> int:
        return self._create(budget, rewards, purposes, lifetime, daily, started, lasts)

    def _create(self, budget, rewards, purposes, lifetime, daily, started, lasts) -> int:
        now = self.chain.latest_timestamp()
        required = {
            "off": lambda a: 0,
            "default": lambda a: int(DEFAULT_PURPOSES[a]),
            "double": lambda a: int(DEFAULT_PURPOSES[a] | Purpose.PROFILE),
        }
        terms = CampaignTerms(
            token=self.suite.token.address,
            brand=self.brand,
            starts_at=now - started,
            ends_at=now + lasts,
            rewards={Action(a): r for a, r in enumerate(rewards)},
            purposes={Action(a): required[p](Action(a)) for a, p in enumerate(purposes) if p != "off"},
            lifetime_caps={Action(a): c for a, c in enumerate(lifetime)},
            daily_caps={Action(a): c for a, c in enumerate(daily)},
        )
        call = self.suite.escrow.functions.createCampaign(terms.as_abi(), [self.attester.address], budget)
        receipt = self.send(self.marketer, call)
        (event,) = events(self.suite.escrow, "CampaignCreated", receipt)
        campaign_id = int(event["campaignId"])
        self.funded += int(event["budget"])
        self.models[campaign_id] = CampaignModel(campaign_id, terms, budget)
        return campaign_id

    @rule(campaign=campaigns, amount=st.integers(1, 30))
    def top_up(self, campaign: int, amount: int) -> None:
        model, call = self.models[campaign], self.suite.escrow.functions.topUp(campaign, amount)
        if model.status == CampaignStatus.CLOSED:
            with reverts(EscrowCampaignClosed, campaign_id=campaign):
                self.refused(self.marketer, call)
            return
        (event,) = events(self.suite.escrow, "CampaignFunded", self.send(self.marketer, call))
        self.funded += int(event["amount"])
        model.budget += amount
        assert event["budget"] == model.budget

    @rule(campaign=campaigns)
    def pause_or_unpause(self, campaign: int) -> None:
        model, escrow = self.models[campaign], self.suite.escrow
        if model.status == CampaignStatus.CLOSED:
            with reverts(EscrowCampaignClosed, campaign_id=campaign):
                self.refused(self.marketer, escrow.functions.pause(campaign))
        elif model.status == CampaignStatus.ACTIVE:
            self.send(self.marketer, escrow.functions.pause(campaign))
            model.status = CampaignStatus.PAUSED
        else:
            self.send(self.marketer, escrow.functions.unpause(campaign))
            model.status = CampaignStatus.ACTIVE

    @rule(campaign=campaigns)
    def close(self, campaign: int) -> None:
        model, call = self.models[campaign], self.suite.escrow.functions.close(campaign)
        now = next_timestamp(self.chain)
        if model.status == CampaignStatus.CLOSED:
            with reverts(EscrowCampaignClosed, campaign_id=campaign):
                self.refused(self.marketer, call)
        elif now <= model.terms.ends_at:
            with reverts(EscrowCampaignNotEnded, campaign_id=campaign, ends_at=model.terms.ends_at, now=now):
                self.refused(self.marketer, call)
        else:
            (event,) = events(self.suite.escrow, "CampaignClosed", self.send(self.marketer, call))
            assert (event["refund"], event["owed"]) == (model.budget, model.owed)
            self.refunded += int(event["refund"])
            model.budget, model.status = 0, CampaignStatus.CLOSED

    # -- consumers --------------------------------------------------------------------------------------

    @rule(consumer=st.integers(0, CONSUMERS - 1), purposes=st.integers(1, 63), days=st.integers(1, 4))
    def grant_consent(self, consumer: int, purposes: int, days: int) -> None:
        account = self.consumers[consumer]
        expires = self.chain.latest_timestamp() + days * DAY
        receipt = self.send(account, self.suite.registry.functions.grant(self.brand, purposes, expires))
        self.consents[account.address].grant(purposes, expires, block_time(self.chain, receipt))

    @rule(consumer=st.integers(0, CONSUMERS - 1), purposes=st.sampled_from([1, 2, 4, 8, 16, 32, 63]))
    def revoke_consent(self, consumer: int, purposes: int) -> None:
        account = self.consumers[consumer]
        self.send(account, self.suite.registry.functions.revoke(self.brand, purposes))
        self.consents[account.address].revoke(purposes)

    @rule(
        consumer=st.integers(0, CONSUMERS - 1),
        picks=st.lists(st.integers(0, MAX_CAMPAIGNS - 1), max_size=3),
        to_sink=st.booleans(),
    )
    def claim(self, consumer: int, picks: list[int], to_sink: bool) -> None:
        account, ids = self.consumers[consumer], sorted(self.models)
        campaign_ids = [ids[p] for p in picks if p < len(ids)]
        to = self.sink if to_sink else account.address
        expected = []
        for campaign_id in dict.fromkeys(campaign_ids):  # a repeated id pays once
            state = self.models[campaign_id].accounts.get(account.address)
            if state is not None and state.accrued:
                expected.append((campaign_id, state.accrued))
        call = self.suite.escrow.functions.claim(campaign_ids, to)
        if not expected:
            with reverts(EscrowNothingToClaim, consumer=account.address):
                self.refused(account, call)
            return
        before = self.suite.balance(to)
        claimed = events(self.suite.escrow, "Claimed", self.send(account, call))
        assert [(e["campaignId"], e["amount"]) for e in claimed] == expected
        total = sum(amount for _, amount in expected)
        assert self.suite.balance(to) == before + total
        self.claimed += sum(int(e["amount"]) for e in claimed)
        for campaign_id, amount in expected:
            self.models[campaign_id].accounts[account.address].accrued = 0
            self.models[campaign_id].owed -= amount

    @rule(seconds=st.integers(1, 2 * DAY))
    def advance_time(self, seconds: int) -> None:
        self.chain.increase_time(seconds)

    # -- attesters --------------------------------------------------------------------------------------

    @rule(campaign=campaigns, parts=st.lists(st.lists(engagement_spec, min_size=1, max_size=4), min_size=1, max_size=3))
    def settle(self, campaign: int, parts: list[list[tuple]]) -> None:
        """Parts are encoded one after the other, so a consumer may appear in several groups of one batch."""
        self._settle(campaign, parts)

    @rule(campaign=campaigns, part=st.lists(recent_spec, min_size=1, max_size=6))
    def settle_recent_engagements(self, campaign: int, part: list[tuple]) -> None:
        self._settle(campaign, [part])

    @rule(
        campaign=campaigns,
        consumer=st.integers(0, CONSUMERS - 1),
        times=st.lists(st.integers(-2 * DAY, 0), min_size=2, max_size=5),
    )
    def settle_daily_opens(self, campaign: int, consumer: int, times: list[int]) -> None:
        """One consumer's daily opens over the last two days, in any order: daily caps and stale days."""
        self._settle(campaign, [[(consumer, Action.DAILY_OPEN, None, ("now", t)) for t in times]])

    def _settle(self, campaign: int, parts: list[list[tuple]]) -> None:
        model, latest = self.models[campaign], self.chain.latest_timestamp()
        engagement_parts = [[self._engagement(model, spec, latest) for spec in part] for part in parts]
        batch = b"".join(encode_batch(part) for part in engagement_parts)
        call = self.suite.escrow.functions.settle(campaign, batch)
        if model.status != CampaignStatus.ACTIVE:
            error = EscrowCampaignPaused if model.status == CampaignStatus.PAUSED else EscrowCampaignClosed
            with reverts(error, campaign_id=campaign):
                self.refused(self.attester, call)
            return
        receipt = self.send(self.attester, call)
        now = block_time(self.chain, receipt)
        expected = [
            (e.event_id, model.settle_one(self.consents[consumer], e, now))
            for part in engagement_parts
            for consumer, items in group_by_consumer(part).items()
            for e in items
        ]
        assert self._outcomes(receipt, campaign) == expected
        (settled,) = events(self.suite.escrow, "BatchSettled", receipt)
        paid = sum(1 for _, reason in expected if reason == PAID)
        assert (settled["paid"], settled["rejected"], settled["budget"]) == (paid, len(expected) - paid, model.budget)

    def _engagement(self, model: CampaignModel, spec: tuple, latest: int) -> Engagement:
        consumer, action, reuse, (anchor, offset) = spec
        if reuse is None or not model.submitted:
            event_id, model.next_id = model.next_id, model.next_id + 1
        else:
            event_id = model.submitted[reuse % len(model.submitted)]
        model.submitted.append(event_id)
        base = {"now": latest, "start": model.terms.starts_at, "end": model.terms.ends_at}[anchor]
        self.submissions += 1
        evidence = keccak(text=f"submission-{self.submissions}")
        self.evidence[evidence] = (model.campaign_id, event_id, action)
        return Engagement(self.consumers[consumer].address, action, event_id, max(base + offset, 0), evidence)

    def _outcomes(self, receipt: TxReceipt, campaign: int) -> list[tuple[int, RejectReason]]:
        """Every engagement's outcome from the logs; each payment is checked and recorded as a paid pair."""
        found = []
        for log in receipt["logs"]:
            topic, data = bytes(log["topics"][0]), bytes(log["data"])
            if topic == REWARDED_TOPIC:
                # the engagement is named by its (unique) evidence hash; the record's amount and campaign fields
                # are checked here, its full layout by the settlement tests
                campaign_id, event_id, action = self.evidence[data[32:64]]
                record = int.from_bytes(data[:32], "big")
                assert record >> CAMPAIGN_SHIFT == campaign_id == campaign
                assert record & AMOUNT_MASK == self.models[campaign].terms.rewards[action]
                pair = (campaign_id, event_id)
                assert pair not in self.paid_pairs, f"event {pair} paid twice"
                self.paid_pairs.append(pair)
                found.append((event_id, PAID))
            elif topic == REJECTED_TOPIC:
                found.append((int.from_bytes(data[:32], "big"), RejectReason(int.from_bytes(data[32:], "big"))))
        return found

    # -- invariants -------------------------------------------------------------------------------------

    def books(self) -> tuple[int, dict[int, tuple]]:
        ids = sorted(self.models)
        balance, campaigns = read(
            self.lens.functions.books(
                self.suite.escrow.address, self.suite.token.address, ids, [c.address for c in self.consumers]
            )
        )
        return int(balance), dict(zip(ids, campaigns, strict=True))

    @invariant()
    def books_balance(self) -> None:
        """All the invariants, from one read of the books per step that touched the escrow."""
        if self.escrow_touched:
            self.last_books, self.escrow_touched = self.books(), False
        balance, books = self.last_books
        self.escrow_holds_every_budget_and_every_owed_reward(balance, books)
        self.owed_is_the_sum_of_the_consumers_accruals(books)
        self.everything_funded_is_claimed_refunded_budgeted_or_owed(books)
        self.no_event_is_paid_twice()
        self.the_chain_agrees_with_the_model(books)

    def escrow_holds_every_budget_and_every_owed_reward(self, balance: int, books: dict[int, tuple]) -> None:
        assert balance - self.escrow_start == sum(budget + owed for _, budget, owed, _ in books.values())

    def owed_is_the_sum_of_the_consumers_accruals(self, books: dict[int, tuple]) -> None:
        for _, _, owed, accounts in books.values():
            assert owed == sum(account[0] for account in accounts)

    def everything_funded_is_claimed_refunded_budgeted_or_owed(self, books: dict[int, tuple]) -> None:
        outstanding = sum(budget + owed for _, budget, owed, _ in books.values())
        assert self.funded == self.claimed + self.refunded + outstanding

    def no_event_is_paid_twice(self) -> None:
        assert len(self.paid_pairs) == len(set(self.paid_pairs))

    def the_chain_agrees_with_the_model(self, books: dict[int, tuple]) -> None:
        for campaign_id, (status, budget, owed, accounts) in books.items():
            model = self.models[campaign_id]
            assert (status, budget, owed) == (model.status, model.budget, model.owed)
            for consumer, (accrued, day, lifetime, daily) in zip(self.consumers, accounts, strict=True):
                expected = model.accounts.get(consumer.address, AccountModel())
                assert (accrued, day, list(lifetime), list(daily)) == (
                    expected.accrued,
                    expected.day,
                    expected.lifetime,
                    expected.daily,
                )


def test_escrow_books_balance_under_random_operations(chain: Chain, suite: Suite) -> None:
    lens, _ = deploy(chain, chain.accounts.deployer, "EscrowLens")
    transact(chain, chain.accounts.marketer, suite.token.functions.approve(suite.escrow.address, MARKETER_FUNDS))
    run_state_machine_as_test(
        lambda: EscrowMachine(chain, suite, lens),
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
