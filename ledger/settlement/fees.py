"""Fees for settle() transactions: the policy (tip, headroom over the base fee, an optional cap) and the bump a
replacement needs, in integers of wei."""

from __future__ import annotations

from dataclasses import dataclass

#: Nodes accept a transaction replacing a pending one with the same nonce only if both fee fields rise by at least
#: this much (geth's txpool PriceBump default is 10%; 12.5% also clears nodes that require one base-fee step).
MIN_REPLACEMENT_BUMP_BPS = 1_250


@dataclass(frozen=True)
class GasPolicy:
    """How the batcher prices its EIP-1559 transactions.

    ``max_fee_per_gas`` = ``base_fee_multiplier`` x the latest base fee + the tip: a multiplier of 2 survives about
    six full blocks of base-fee growth (12.5% each) before the transaction stops being includable. ``priority_fee``
    None means 1 gwei on devnets and the node's ``eth_maxPriorityFeePerGas`` elsewhere. ``max_fee_cap`` (wei per
    gas), when set, holds new batches while the market asks more and stops replacements from passing it.
    """

    priority_fee: int | None = None
    base_fee_multiplier: int = 2
    max_fee_cap: int | None = None
    replacement_bump_bps: int = 2_500

    def __post_init__(self) -> None:
        if self.replacement_bump_bps < MIN_REPLACEMENT_BUMP_BPS:
            raise ValueError(f"a replacement must raise fees by at least {MIN_REPLACEMENT_BUMP_BPS / 100}%")
        if self.base_fee_multiplier < 1:
            raise ValueError("base_fee_multiplier must be at least 1")
        if self.priority_fee is not None and self.priority_fee < 0:
            raise ValueError("priority_fee cannot be negative")


@dataclass(frozen=True)
class Fees:
    max_fee_per_gas: int
    max_priority_fee_per_gas: int


def bump(fee: int, bps: int) -> int:
    """``fee`` raised by ``bps`` basis points, rounded up, and by at least 1 wei."""
    return max(fee + 1, -(-fee * (10_000 + bps) // 10_000))


def replacement_fees(old: Fees, market: Fees, bps: int) -> Fees:
    """Fees for a transaction replacing ``old`` (same nonce): each field bumped by ``bps``, or the market's, if
    higher; the max fee never below the tip."""
    tip = max(bump(old.max_priority_fee_per_gas, bps), market.max_priority_fee_per_gas)
    return Fees(max(bump(old.max_fee_per_gas, bps), market.max_fee_per_gas, tip), tip)
