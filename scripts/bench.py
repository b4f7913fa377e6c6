"""Benchmarks, never timed tests. ``gas``: what settlement and the signed actions cost on chain.

Gas per engagement is a settle() receipt's gasUsed (base and calldata included) divided by the engagements in
the batch, for batches of 500 with k engagements per consumer, for returning consumers (their account word in
the campaign is already nonzero) and new ones; beside two baselines measured in the same run: one ERC-20
transfer per engagement in its own transaction, and NaiveEscrow (contracts/mocks). Gas is deterministic: the
run pins the chain clock, keys and evidence, so the figures are committed in snapshots/gas.json and a test
compares a fresh run with them exactly.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.types import TxReceipt

from ledger.chain import Chain, connect
from ledger.contracts import deploy, events, transact
from ledger.model import Action, Purpose
from ledger.settings import Settings
from ledger.settlement.batch import Engagement, encode_batch
from ledger.suite import CampaignTerms, Suite

Progress = Callable[[str], None]

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "snapshots" / "gas.json"

BATCH = 500
KS = (1, 5, 10)
GENESIS_TIME = 1_800_000_000  # pinned so calldata (engagement times) is identical on every run
ENGAGEMENT_TIME = GENESIS_TIME + 10_000
REWARD = 10**15
BUDGET = 10**24
FAR_FUTURE = GENESIS_TIME + 10 * 365 * 86_400
BULK_GAS = 300_000  # a fixed gas limit for pre-signed bulk transactions (grants, transfers, claims)

# Targets from the foundation issue: gas per engagement, and the ratio to the naive batch.
TARGETS = {
    "settle 500: returning consumers, 5 each (gas/engagement)": 5_200,
    "settle 500: returning consumers, 1 each (gas/engagement)": 12_500,
    "settle 500: new consumers, 5 each (gas/engagement)": 8_800,
    "settle 500: returning consumers, 10 each (gas/engagement)": 4_400,
    "claim one campaign: returning consumer": 60_000,
}
MIN_NAIVE_RATIO = 6.0


def lean_key(kind: str, k: int) -> str:
    return f"settle 500: {kind} consumers, {k} each (gas/engagement)"


def naive_key(kind: str, k: int) -> str:
    return f"naive batch 500: {kind} consumers, {k} each (gas/engagement)"


@dataclass
class Bench:
    chain: Chain
    suite: Suite
    naive: Contract
    relayer: LocalAccount
    next_key: int = 0

    def consumers(self, count: int) -> list[LocalAccount]:
        """Fresh deterministic accounts (the same on every run)."""
        start, self.next_key = self.next_key, self.next_key + count
        return [Account.from_key(keccak(text=f"adledger bench consumer {i}")) for i in range(start, start + count)]

    def bulk(self, sender: LocalAccount, calls: Sequence[ContractFunction]) -> list[TxReceipt]:
        """Pre-signed transactions from one sender, mined in bulk (anvil's stall-safe path)."""
        nonce = self.chain.w3.eth.get_transaction_count(sender.address, "pending")
        fee = 2 * int(self.chain.w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9
        raw = []
        for i, call in enumerate(calls):
            tx = {
                "to": call.address,
                "data": call._encode_transaction_data(),
                "nonce": nonce + i,
                "gas": BULK_GAS,
                "maxFeePerGas": fee,
                "maxPriorityFeePerGas": 10**9,
                "chainId": self.chain.chain_id,
            }
            raw.append(bytes(sender.sign_transaction(tx).raw_transaction))
        receipts = self.chain.send_raw_batch(raw)
        failed = [r for r in receipts if r["status"] != 1]
        if failed:
            raise RuntimeError(f"{len(failed)} bulk transactions failed, first {failed[0]['transactionHash'].hex()}")
        return receipts

    def grant_consent(self, consumers: Sequence[LocalAccount]) -> list[TxReceipt]:
        """Every consumer consents to ADS for the brand, by signature the relayer submits (gasless)."""
        brand = self.chain.accounts.marketer.address
        deadline = FAR_FUTURE
        calls = [
            self.suite.registry.functions.grantBySig(
                c.address,
                brand,
                int(Purpose.ADS),
                FAR_FUTURE,
                deadline,
                self.suite.sign_grant(c, brand, int(Purpose.ADS), FAR_FUTURE, deadline),
            )
            for c in consumers
        ]
        return self.bulk(self.relayer, calls)

    def campaign(self) -> int:
        return self.create_campaign()[0]

    def create_campaign(self) -> tuple[int, TxReceipt]:
        marketer = self.chain.accounts.marketer
        terms = CampaignTerms(
            token=self.suite.token.address,
            brand=marketer.address,
            starts_at=GENESIS_TIME,
            ends_at=FAR_FUTURE,
            rewards={Action.AD_VIEW: REWARD},
            purposes={Action.AD_VIEW: int(Purpose.ADS)},
            lifetime_caps={},
            daily_caps={},
        )
        # a pinned permit deadline keeps the calldata, and so the gas, identical on every run
        attesters = [self.chain.accounts.attester.address]
        return self.suite.create_campaign(marketer, terms, BUDGET, attesters, deadline=FAR_FUTURE)

    def engagements(self, consumers: Sequence[LocalAccount], k: int, first_id: int) -> list[Engagement]:
        out = []
        for i, consumer in enumerate(consumers):
            for j in range(k):
                event_id = first_id + i * k + j
                out.append(
                    Engagement(
                        consumer.address,
                        Action.AD_VIEW,
                        event_id,
                        ENGAGEMENT_TIME + j,
                        keccak(text=f"evidence {event_id}"),
                    )
                )
        return out

    def settle(self, campaign_id: int, engagements: list[Engagement]) -> TxReceipt:
        attester = self.chain.accounts.attester
        return transact(
            self.chain, attester, self.suite.escrow.functions.settle(campaign_id, encode_batch(engagements))
        )

    def naive_settle(self, campaign_id: int, engagements: list[Engagement]) -> TxReceipt:
        rows = [(e.consumer, int(e.action), e.event_id.to_bytes(32, "big"), e.time, e.evidence) for e in engagements]
        attester = self.chain.accounts.attester
        return transact(self.chain, attester, self.naive.functions.settle(campaign_id, rows))

    def naive_campaign(self) -> int:
        marketer = self.chain.accounts.marketer
        transact(self.chain, marketer, self.suite.token.functions.approve(self.naive.address, BUDGET))
        rewards = [REWARD if a == Action.AD_VIEW else 0 for a in Action]
        purposes = [int(Purpose.ADS) if a == Action.AD_VIEW else 0 for a in Action]
        call = self.naive.functions.createCampaign(
            self.suite.token.address, marketer.address, self.chain.accounts.attester.address, BUDGET, rewards, purposes
        )
        transact(self.chain, marketer, call)
        return int(self.naive.functions.campaignCount().call())


def per_engagement(receipt: TxReceipt, count: int) -> int:
    return round(int(receipt["gasUsed"]) / count)


def _measure_settlement(
    bench: Bench, cohorts: dict[tuple[str, int], list[LocalAccount]], results: dict[str, int], progress: Progress
) -> None:
    for (kind, k), consumers in cohorts.items():
        progress(f"settle 500: {kind} consumers, {k} each")
        lean, naive = bench.campaign(), bench.naive_campaign()
        next_id = 0
        if kind == "returning":
            warm = bench.engagements(consumers, 1, 0)
            bench.settle(lean, warm)
            bench.naive_settle(naive, warm)
            next_id = len(warm)
        batch = bench.engagements(consumers, k, next_id)
        receipt = bench.settle(lean, batch)
        paid = len(events(bench.suite.escrow, "Rewarded", receipt))
        if paid != BATCH:
            raise RuntimeError(f"expected {BATCH} paid engagements, got {paid}")
        results[lean_key(kind, k)] = per_engagement(receipt, BATCH)
        results[naive_key(kind, k)] = per_engagement(bench.naive_settle(naive, batch), BATCH)


def _measure_transfers(bench: Bench, results: dict[str, int], progress: Progress) -> None:
    progress("baseline: one ERC-20 transfer per engagement")
    payer = bench.chain.accounts.marketer
    consumers = bench.consumers(BATCH)
    token = bench.suite.token.functions
    first = bench.bulk(payer, [token.transfer(c.address, REWARD) for c in consumers])
    again = bench.bulk(payer, [token.transfer(c.address, REWARD) for c in consumers])
    results["ERC-20 transfer per engagement, own transaction: new consumer"] = round(
        sum(int(r["gasUsed"]) for r in first) / len(first)
    )
    results["ERC-20 transfer per engagement, own transaction: returning consumer"] = round(
        sum(int(r["gasUsed"]) for r in again) / len(again)
    )


def _measure_operations(bench: Bench, consumer: LocalAccount, results: dict[str, int], progress: Progress) -> None:
    progress("claims and campaign creation")
    chain, suite = bench.chain, bench.suite
    # gas money for the direct claims; the relayed one shows the consumer needs none
    chain.send(chain.accounts.deployer, {"to": consumer.address, "value": 10**18})
    campaign_id, created = bench.create_campaign()
    results["createCampaignWithPermit"] = int(created["gasUsed"])
    first_id = 0
    for label in ("claim one campaign: first claim", "claim one campaign: returning consumer"):
        bench.settle(campaign_id, bench.engagements([consumer], 1, first_id))
        first_id += 1
        receipt = transact(chain, consumer, suite.escrow.functions.claim([campaign_id], consumer.address))
        results[label] = int(receipt["gasUsed"])
    bench.settle(campaign_id, bench.engagements([consumer], 1, first_id))
    deadline = FAR_FUTURE
    signature = suite.sign_claim(consumer, [campaign_id], consumer.address, deadline)
    call = suite.escrow.functions.claimBySig(consumer.address, [campaign_id], consumer.address, deadline, signature)
    results["claimBySig one campaign: returning consumer, relayed"] = int(
        transact(chain, bench.relayer, call)["gasUsed"]
    )


def measure_gas(progress: Progress = lambda _: None) -> dict[str, int]:
    """Runs the gas benchmark on a fresh anvil with a pinned clock; returns the figures by readable name."""
    with tempfile.TemporaryDirectory(prefix="adledger-bench-") as data_dir:
        settings = Settings(chain="anvil", data_dir=Path(data_dir), anvil_state=False)
        with connect(settings) as chain:
            chain.rpc("evm_setNextBlockTimestamp", [GENESIS_TIME])
            chain.mine()
            suite = Suite.deploy(chain)
            naive, _ = deploy(chain, chain.accounts.deployer, "NaiveEscrow", suite.registry.address)
            suite.transfer(chain.accounts.deployer, chain.accounts.marketer.address, 100 * BUDGET)
            bench = Bench(chain, suite, naive, relayer=chain.accounts.deployer)

            # Every consent is granted before the engagements' pinned time, then the clock moves past it.
            progress("consent by signature for every consumer")
            cohorts = {(kind, k): bench.consumers(BATCH // k) for k in KS for kind in ("returning", "new")}
            (claimer,) = bench.consumers(1)
            grants = bench.grant_consent([*[c for group in cohorts.values() for c in group], claimer])
            results = {"grantBySig: first consent to a brand, relayed": int(grants[-1]["gasUsed"])}
            chain.increase_time(ENGAGEMENT_TIME + 100 - chain.latest_timestamp())

            _measure_settlement(bench, cohorts, results, progress)
            _measure_transfers(bench, results, progress)
            _measure_operations(bench, claimer, results, progress)
    return dict(sorted(results.items()))


def check_targets(results: dict[str, int]) -> list[str]:
    """Every target the figures miss, as a sentence; empty when all hold."""
    misses = [f"{key}: {results[key]:,} > {target:,}" for key, target in TARGETS.items() if results[key] > target]
    ratio = results[naive_key("returning", 5)] / results[lean_key("returning", 5)]
    if ratio < MIN_NAIVE_RATIO:
        misses.append(f"naive/lean at returning k=5 is {ratio:.1f}x < {MIN_NAIVE_RATIO}x")
    return misses


def write_snapshot(results: dict[str, int], path: Path = SNAPSHOT) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def read_snapshot(path: Path = SNAPSHOT) -> dict[str, int]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return {key: int(value) for key, value in data.items()}


if __name__ == "__main__":
    figures = measure_gas(progress=lambda step: print(step, file=sys.stderr))
    write_snapshot(figures)
    print(json.dumps(figures, indent=2))
    for miss in check_targets(figures):
        print("MISSED:", miss, file=sys.stderr)
