"""The demo chain's rule set (SPEC 2.10) as documents: version 1, in force since two years before
the period, and version 2 from mid-period with changed multipliers and settlement cost. Both
carry the catalogue of gifts and exchanges (SPEC 2.3), the bonuses for registration (at
headquarters' cost) and referral (at the store's), and the member day's discount (会员日88折);
version 2 doubles points for the whole birthday month."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from replay_tools.demo.plan import BONUSES, EXCHANGES, GIFTS, DemoPlan


def _iso(day: date, zone: ZoneInfo) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=zone).isoformat()


def _yearly(
    years: range, zone: ZoneInfo, starts: tuple[int, int], ends: tuple[int, int], **fields: str
) -> list[dict[str, str]]:
    """One window a year (an end before the start falls in the next year); a `name` gets the
    year appended."""
    return [
        fields
        | ({"name": f"{fields['name']} {y}"} if "name" in fields else {})
        | {
            "starts_at": _iso(date(y, *starts), zone),
            "ends_at": _iso(date(y + (ends < starts), *ends), zone),
        }
        for y in years
    ]


def catalogue() -> list[dict[str, Any]]:
    """The gifts and exchanges, with their points, cash prices and costs to the chain."""
    gifts = [
        {"sku": sku, "kind": "gift", "points": points, "cost_fen": cost}
        for sku, points, cost in GIFTS
    ]
    exchanges = [
        {"sku": sku, "kind": "exchange", "points": points, "cash_price_fen": cash, "cost_fen": cost}
        for sku, points, cash, cost in EXCHANGES
    ]
    return gifts + exchanges


def redemption() -> dict[str, Any]:
    return {
        "cash_offset_points_per_yuan": 100,
        "max_offset_ratio": "0.5",
        "voucher_ladder": [
            {"points": 100, "value_fen": 200},
            {"points": 500, "value_fen": 1_500},
            {"points": 1_000, "value_fen": 4_000},
            {"points": 2_000, "value_fen": 10_000},
        ],
        "stored_value_points_per_yuan": 100,
        "catalogue": catalogue(),
    }


def rule_documents(plan: DemoPlan) -> list[dict[str, Any]]:
    """Version 1, in force since two years before the start; version 2 from mid-period."""
    zone = ZoneInfo(plan.timezone)
    years = range(plan.start.year, (plan.start + timedelta(days=plan.days - 1)).year + 1)
    winters = range(years.start - 1, years.stop)  # last year's flu season runs into this one
    first: dict[str, Any] = {
        "effective_from": _iso(date(plan.start.year - 2, 1, 1), zone),
        "timezone": plan.timezone,
        "accrual": {
            "fen_per_point": 100,
            "points_per_unit": 1,
            "category_multipliers": {"tcm": "2", "supplement": "3"},
            "sku_promotions": _yearly(years, zone, (6, 1), (7, 1), sku="BRAND-X", multiplier="20")
            + _yearly(winters, zone, (12, 1), (3, 1), sku="OTC-FLU", multiplier="5"),
            "member_days": [
                {"weekday": 6, "mode": "multiplier", "multiplier": "2", "discount": "0.88"},
                {"day_of_month": 8, "mode": "no_points"},
            ],
            "birthday": {"multiplier": "2", "tiers": ["gold", "vip"]},
            "campaigns": [
                *_yearly(years, zone, (10, 1), (10, 8), name="店庆", multiplier="3"),
                *_yearly(years, zone, (11, 11), (11, 12), name="双十一", multiplier="2"),
            ],
            "stacking": "max",
        },
        "tiers": {
            "window_months": 24,
            "review": {"month": 12, "day": 31},
            "levels": [
                {"code": "normal", "min_spend_fen": 0, "discount": "0.97"},
                {"code": "silver", "min_spend_fen": 200_000, "discount": "0.95"},
                {"code": "gold", "min_spend_fen": 1_000_000, "discount": "0.92"},
                {"code": "vip", "min_spend_fen": 3_000_000, "discount": "0.90"},
            ],
        },
        "redemption": redemption(),
        "expiry": {"rolling_months": 12, "clearance_month": 3, "clearance_day": 31},
        "settlement": {"cost_per_point_fen": "3"},
        "bonuses": [
            {"code": code, "points": points, "cost_to": cost_to}
            for code, points, cost_to in BONUSES
        ],
    }
    first["tiers"]["levels"][3]["points_multiplier"] = "1.5"
    if plan.days < 2:
        return [first]
    second = msgspec.json.decode(msgspec.json.encode(first))  # a deep copy
    second["effective_from"] = _iso(plan.start + timedelta(days=plan.days // 2), zone)
    second["accrual"]["category_multipliers"] = {"tcm": "2", "supplement": "2.5", "device": "1.5"}
    second["tiers"]["levels"][3]["points_multiplier"] = "2"
    second["redemption"]["voucher_ladder"].append({"points": 5_000, "value_fen": 30_000})
    second["settlement"]["cost_per_point_fen"] = "2.8"
    second["accrual"]["birthday"]["scope"] = "month"
    return [first, second]
