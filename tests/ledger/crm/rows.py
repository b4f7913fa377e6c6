"""Chain-derived rows with plausible defaults, so a test states only what it is about."""

from __future__ import annotations

from typing import Any

from ledger.crm.models import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    Claim,
    ConsentChange,
    ConsentEvent,
    Rejection,
    Touchpoint,
)
from ledger.model import Action, CampaignStatus, RejectReason

CHAIN_ID = 31337
ESCROW = "0x" + "e5" * 20
REGISTRY = "0x" + "7e" * 20
BRAND = "0x" + "b0" * 20
CONSUMER = "0x" + "c1" * 20


def hash32(n: int) -> str:
    """A distinct, valid bytes32 per integer."""
    return "0x" + f"{n:064x}"


def position(log: int, *, tx: int = 1, block: int = 100, chain_id: int = CHAIN_ID) -> dict[str, Any]:
    """Where a log sits: block, tx hash and log index."""
    return {
        "chain_id": chain_id,
        "block_number": block,
        "block_hash": hash32(10_000 + block),
        "tx_hash": hash32(tx),
        "log_index": log,
    }


def touchpoint(log: int = 0, **fields: Any) -> Touchpoint:
    values: dict[str, Any] = {
        **position(log),
        "escrow": ESCROW,
        "campaign_id": 1,
        "event_id": log,
        "action": Action.AD_VIEW,
        "consumer": CONSUMER,
        "amount": 10**18,
        "evidence_hash": hash32(20_000 + log),
        "occurred_at": 1_750_000_000,
    }
    return Touchpoint(**(values | fields))


def rejection(log: int = 0, **fields: Any) -> Rejection:
    values: dict[str, Any] = {
        **position(log),
        "escrow": ESCROW,
        "campaign_id": 1,
        "event_id": log,
        "consumer": CONSUMER,
        "reason": RejectReason.NO_CONSENT,
    }
    return Rejection(**(values | fields))


def claim(log: int = 0, **fields: Any) -> Claim:
    values: dict[str, Any] = {
        **position(log),
        "escrow": ESCROW,
        "campaign_id": 1,
        "consumer": CONSUMER,
        "recipient": CONSUMER,
        "amount": 3 * 10**18,
    }
    return Claim(**(values | fields))


def consent_event(log: int = 0, **fields: Any) -> ConsentEvent:
    values: dict[str, Any] = {
        **position(log),
        "registry_address": REGISTRY,
        "consumer": CONSUMER,
        "brand": BRAND,
        "change": ConsentChange.GRANT,
        "purposes": 1,
        "all_purposes": 1,
        "expires_at": 1_900_000_000,
    }
    return ConsentEvent(**(values | fields))


def campaign_event(log: int = 0, **fields: Any) -> CampaignEvent:
    values: dict[str, Any] = {
        **position(log),
        "escrow": ESCROW,
        "campaign_id": 1,
        "kind": CampaignEventKind.FUNDED,
        "account": BRAND,
        "amount": 5 * 10**18,
        "budget": 15 * 10**18,
    }
    return CampaignEvent(**(values | fields))


def campaign(log: int = 0, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        **position(log),
        "escrow": ESCROW,
        "campaign_id": log + 1,
        "marketer": BRAND,
        "token": "0x" + "70" * 20,
        "brand": BRAND,
        "starts_at": 1_700_000_000,
        "ends_at": 2**40 - 1,
        "status": CampaignStatus.ACTIVE,
        "budget": 10 * 10**18,
        "owed": 0,
        "updated_block": 100,
    }
    return Campaign(**(values | fields))
