"""The suite's vocabulary on the Python side: actions, consent purposes, rejection reasons, campaign status.

Values mirror the Solidity enums and constants in contracts/interfaces/ (tests check them against the deployed
contracts), so an integer read from the chain maps onto a name here and nowhere else.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

SECONDS_PER_DAY = 86_400
ACTION_COUNT = 8


class Action(IntEnum):
    INSTALL = 0
    LOCATION_OPT_IN = 1
    DAILY_OPEN = 2
    AD_VIEW = 3
    AD_CLICK = 4
    EMAIL_OPEN = 5
    EMAIL_CLICK = 6
    SUBSCRIBE = 7


class Purpose(IntFlag):
    ADS = 1
    EMAIL = 2
    LOCATION = 4
    PROFILE = 8
    PURCHASES = 16
    ANALYTICS = 32

    @classmethod
    def parse(cls, text: str) -> Purpose:
        """``"ads,email"`` -> ADS | EMAIL; raises ValueError naming the valid purposes."""
        result = cls(0)
        for word in filter(None, (w.strip() for w in text.split(","))):
            try:
                result |= cls[word.upper()]
            except KeyError:
                valid = ", ".join(p.name.lower() for p in cls if p.name)
                raise ValueError(f"unknown purpose {word!r}; choose from {valid}") from None
        if not result:
            raise ValueError("at least one purpose is needed")
        return result


ALL_PURPOSES = Purpose(0x3F)

# The consent each action needs unless a campaign says otherwise (DESIGN.md: consent-based rewards).
DEFAULT_PURPOSES: dict[Action, Purpose] = {
    Action.INSTALL: Purpose.ANALYTICS,
    Action.LOCATION_OPT_IN: Purpose.LOCATION,
    Action.DAILY_OPEN: Purpose.ANALYTICS,
    Action.AD_VIEW: Purpose.ADS,
    Action.AD_CLICK: Purpose.ADS,
    Action.EMAIL_OPEN: Purpose.EMAIL,
    Action.EMAIL_CLICK: Purpose.EMAIL,
    Action.SUBSCRIBE: Purpose.EMAIL,
}


class RejectReason(IntEnum):
    NONE = 0
    DUPLICATE_EVENT = 1
    ACTION_NOT_OFFERED = 2
    TIME_IN_FUTURE = 3
    OUTSIDE_CAMPAIGN_DATES = 4
    NO_CONSENT = 5
    LIFETIME_CAP_REACHED = 6
    DAILY_CAP_REACHED = 7
    STALE_DAY = 8
    BUDGET_EXHAUSTED = 9


class CampaignStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    PAUSED = 2
    CLOSED = 3
