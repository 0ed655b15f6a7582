"""Rule-set documents for tests: the SPEC's example, and a plain one built up per test."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from ledger.policies.ruleset import RuleSet, check

SPEC_EXAMPLE: dict[str, Any] = {
    "effective_from": "2026-01-01T00:00:00+08:00",
    "timezone": "Asia/Shanghai",
    "accrual": {
        "fen_per_point": 100,
        "points_per_unit": 1,
        "category_multipliers": {"tcm": "2", "supplement": "3"},
        "sku_promotions": [
            {
                "sku": "BRAND-X",
                "multiplier": "20",
                "starts_at": "2026-06-01T00:00:00+08:00",
                "ends_at": "2026-07-01T00:00:00+08:00",
            }
        ],
        "member_days": [
            {"weekday": 6, "mode": "multiplier", "multiplier": "2"},
            {"day_of_month": 8, "mode": "no_points"},
        ],
        "birthday": {"multiplier": "2", "tiers": ["gold", "vip"]},
        "campaigns": [
            {
                "name": "店庆",
                "starts_at": "2026-10-01T00:00:00+08:00",
                "ends_at": "2026-10-08T00:00:00+08:00",
                "multiplier": "3",
            }
        ],
        "stacking": "max",
    },
    "tiers": {
        "window_months": 24,
        "review": {"month": 12, "day": 31},
        "levels": [
            {"code": "normal", "min_spend_fen": 0, "discount": "0.97"},
            {"code": "silver", "min_spend_fen": 200000, "discount": "0.95"},
            {"code": "gold", "min_spend_fen": 1000000, "discount": "0.92"},
            {
                "code": "vip",
                "min_spend_fen": 3000000,
                "discount": "0.90",
                "points_multiplier": "1.5",
            },
        ],
    },
    "redemption": {
        "cash_offset_points_per_yuan": 100,
        "max_offset_ratio": "0.5",
        "voucher_ladder": [
            {"points": 100, "value_fen": 200},
            {"points": 500, "value_fen": 1500},
            {"points": 1000, "value_fen": 4000},
            {"points": 2000, "value_fen": 10000},
        ],
        "stored_value_points_per_yuan": 100,
    },
    "expiry": {"rolling_months": 12, "clearance_month": 3, "clearance_day": 31},
    "settlement": {"cost_per_point_fen": "3"},
}

PLAIN: dict[str, Any] = {
    "effective_from": "2020-01-01T00:00:00+08:00",
    "timezone": "Asia/Shanghai",
    "accrual": {"fen_per_point": 100, "points_per_unit": 1},
}


def doc(base: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    """A copy of `base` (default PLAIN) with top-level sections replaced."""
    out = copy.deepcopy(base if base is not None else PLAIN)
    out.update(copy.deepcopy(sections))
    return out


def accrual(**fields: Any) -> dict[str, Any]:
    return {"fen_per_point": 100, "points_per_unit": 1} | fields


def ruleset(document: dict[str, Any]) -> RuleSet:
    return check(msgspec.json.decode(msgspec.json.encode(document), type=RuleSet))
