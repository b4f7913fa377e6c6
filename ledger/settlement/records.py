"""The packed ``record`` word of CampaignEscrow's ``Rewarded`` log (layout in ICampaignEscrow).

One log per paid engagement carries the consumer as a topic and two data words (record, evidence hash), the
smallest shape that still rebuilds every payment from the chain alone; this module is its one decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.model import Action

AMOUNT_BITS = 104
TIME_SHIFT, TIME_BITS = 104, 40
EVENT_SHIFT, EVENT_BITS = 144, 48
ACTION_SHIFT = 192
CAMPAIGN_SHIFT = 200


@dataclass(frozen=True)
class RewardRecord:
    campaign_id: int
    event_id: int
    action: Action
    time: int
    amount: int

    @classmethod
    def unpack(cls, record: int) -> RewardRecord:
        return cls(
            campaign_id=record >> CAMPAIGN_SHIFT,
            event_id=(record >> EVENT_SHIFT) & ((1 << EVENT_BITS) - 1),
            action=Action((record >> ACTION_SHIFT) & 0xFF),
            time=(record >> TIME_SHIFT) & ((1 << TIME_BITS) - 1),
            amount=record & ((1 << AMOUNT_BITS) - 1),
        )

    def pack(self) -> int:
        for name, value, bits in (
            ("campaign_id", self.campaign_id, 48),
            ("event_id", self.event_id, EVENT_BITS),
            ("time", self.time, TIME_BITS),
            ("amount", self.amount, AMOUNT_BITS),
        ):
            if not 0 <= value < 1 << bits:
                raise ValueError(f"{name} {value} does not fit its {bits}-bit field")
        return (
            (self.campaign_id << CAMPAIGN_SHIFT)
            | (self.event_id << EVENT_SHIFT)
            | (int(self.action) << ACTION_SHIFT)
            | (self.time << TIME_SHIFT)
            | self.amount
        )
