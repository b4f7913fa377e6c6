"""What a page of raw logs becomes in the CRM: rows per table, created campaigns' terms, the state they touch.

One mapping serves the indexer and ``reconcile`` (the auditor's cross-check re-reads the chain and maps it the
same way). Rewarded logs, nearly all of a busy chain, take ``decode.rewarded_row`` straight to tuples; every
other log goes through ``decode_log`` to a dict of column values. ``customer_id`` is left out: linking a wallet
to a customer needs the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.crm.onchain import (
    Campaign,
    CampaignEvent,
    CampaignEventKind,
    Claim,
    ConsentChange,
    ConsentEvent,
    Rejection,
)
from ledger.indexer.decode import TOUCHPOINT_COLUMNS, DecodedLog, decode_log, rewarded_row
from ledger.indexer.folds import FoldItem
from ledger.model import CampaignStatus, RejectReason

#: Tables whose rows ``map_logs`` gives as dicts (touchpoints come as tuples).
DICT_TABLES: tuple[type[Any], ...] = (Campaign, Rejection, Claim, ConsentEvent, CampaignEvent)

_CAMPAIGN_KINDS = {
    "CampaignFunded": CampaignEventKind.FUNDED,
    "CampaignPaused": CampaignEventKind.PAUSED,
    "CampaignUnpaused": CampaignEventKind.UNPAUSED,
    "CampaignClosed": CampaignEventKind.CLOSED,
    "AttesterAdded": CampaignEventKind.ATTESTER_ADDED,
    "AttesterRemoved": CampaignEventKind.ATTESTER_REMOVED,
    "BatchSettled": CampaignEventKind.BATCH_SETTLED,
}


@dataclass
class MappedLogs:
    """A page of logs as rows, with what the indexer must update besides inserting them."""

    touchpoints: list[tuple[Any, ...]] = field(default_factory=list)  # TOUCHPOINT_COLUMNS order
    rows: dict[type[Any], list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in DICT_TABLES})
    actions: list[tuple[int, DecodedLog]] = field(default_factory=list)  # (campaign id, CampaignCreated)
    fold_items: dict[tuple[str, int], list[FoldItem]] = field(default_factory=dict)  # by (escrow, campaign)
    pairs: set[tuple[str, str, str]] = field(default_factory=set)  # (registry, consumer, brand) touched
    skipped: int = 0  # logs of other contracts, unknown events, malformed
    duplicates: int = 0  # the same log (tx hash, log index) served twice

    def touchpoint_dicts(self) -> list[dict[str, Any]]:
        """Touchpoints as dicts, for callers that compare column by column."""
        return [dict(zip(TOUCHPOINT_COLUMNS, row, strict=True)) for row in self.touchpoints]


def map_logs(chain_id: int, escrow: str, registry: str, raws: Iterable[Mapping[str, Any]]) -> MappedLogs:
    """Maps raw logs (JSON-RPC dicts) of the suite at ``escrow`` and ``registry`` (lowercase) to rows."""
    mapped = MappedLogs()
    contracts = {escrow: "CampaignEscrow", registry: "ConsentRegistry"}
    seen: set[tuple[str, str]] = set()
    for raw in raws:
        key = (str(raw["transactionHash"]).lower(), str(raw["logIndex"]))
        if key in seen:
            mapped.duplicates += 1
            continue
        seen.add(key)
        row = rewarded_row(raw, chain_id, escrow)
        if row is not None:
            mapped.touchpoints.append(row)
            continue
        log = decode_log(raw, contracts)
        if log is None:
            mapped.skipped += 1
        else:
            _map_one(mapped, chain_id, escrow, registry, log)
    return mapped


def _map_one(mapped: MappedLogs, chain_id: int, escrow: str, registry: str, log: DecodedLog) -> None:
    p, f, rows = log.position, log.fields, mapped.rows
    base = {"chain_id": chain_id, "block_number": p.block_number, "block_hash": p.block_hash,
            "tx_hash": p.tx_hash, "log_index": p.log_index}  # fmt: skip
    if log.name == "Rewarded":  # one the fast path refused (not JSON-RPC hex): same row, slower
        r = log.reward
        mapped.touchpoints.append((
            chain_id, p.block_number, p.block_hash, p.tx_hash, p.log_index, escrow, r.campaign_id, r.event_id,
            int(r.action), f["consumer"], r.amount, f["evidenceHash"], r.time,
        ))  # fmt: skip
    elif log.name == "Rejected":
        rows[Rejection].append(base | {
            "escrow": escrow, "campaign_id": f["campaignId"], "event_id": f["eventId"],
            "consumer": f["consumer"], "reason": RejectReason(f["reason"])})  # fmt: skip
    elif log.name == "Claimed":
        claim = base | {"escrow": escrow, "campaign_id": f["campaignId"], "consumer": f["consumer"],
                        "recipient": f["to"], "amount": f["amount"]}  # fmt: skip
        rows[Claim].append(claim)
        mapped.fold_items.setdefault((escrow, f["campaignId"]), []).append(FoldItem.of_row(claim, claim=True))
    elif log.name in ("ConsentGranted", "ConsentRevoked"):
        grant = log.name == "ConsentGranted"
        mapped.pairs.add((registry, f["consumer"], f["brand"]))
        rows[ConsentEvent].append(base | {
            "registry_address": registry, "consumer": f["consumer"], "brand": f["brand"],
            "change": ConsentChange.GRANT if grant else ConsentChange.REVOKE, "purposes": f["purposes"],
            "all_purposes": f["allPurposes"], "expires_at": f.get("expiresAt")})  # fmt: skip
    elif log.name == "CampaignCreated":
        token, brand, starts, ends = f["terms"][:4]
        mapped.actions.append((f["campaignId"], log))
        rows[Campaign].append(base | {
            "escrow": escrow, "campaign_id": f["campaignId"], "marketer": f["marketer"],
            "token": f["token"], "brand": str(brand).lower(), "starts_at": starts, "ends_at": ends,
            "status": CampaignStatus.ACTIVE, "budget": f["budget"], "owed": 0, "refunded": 0,
            "updated_block": p.block_number})  # fmt: skip
        _campaign_event(mapped, base | {
            "escrow": escrow, "campaign_id": f["campaignId"], "kind": CampaignEventKind.CREATED,
            "account": f["marketer"], "budget": f["budget"]})  # fmt: skip
    elif log.name in _CAMPAIGN_KINDS:
        _campaign_event(mapped, base | {
            "escrow": escrow, "campaign_id": f["campaignId"], "kind": _CAMPAIGN_KINDS[log.name],
            "account": f.get("funder", f.get("attester")),
            "amount": f.get("amount", f.get("refund")), "budget": f.get("budget"), "owed": f.get("owed"),
            "paid_count": f.get("paid"), "rejected_count": f.get("rejected")})  # fmt: skip


def _campaign_event(mapped: MappedLogs, row: dict[str, Any]) -> None:
    mapped.rows[CampaignEvent].append(row)
    key = (row["escrow"], row["campaign_id"])
    mapped.fold_items.setdefault(key, []).append(FoldItem.of_row(row, claim=False))
