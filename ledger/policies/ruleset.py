"""The rule set document (SPEC 2.10): its msgspec types, and the checks a version must pass.

A rule set is data. Types reject malformed documents field by field; `problems()` adds the
checks that span fields (unknown tier codes, windows that end before they start) and returns
them all, beancount-style, as (field path, message) pairs.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from ledger.domain.errors import InvalidRuleSet

AwareDatetime = Annotated[datetime, Meta(tz=True)]
Rate = Decimal  # multipliers: 0 ≤ rate ≤ RATE_MAX, checked by problems() (msgspec has no Decimal bounds)
RATE_MAX = Decimal(1000)
Code = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, Meta(min_length=1, max_length=64)]

DEFAULT_HOLD_MINUTES = 15


class _Doc(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every rule-set section: immutable, and a typo in a key is an error."""


class SkuPromotion(_Doc, frozen=True):
    sku: Name
    multiplier: Rate
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None


class MemberDay(_Doc, frozen=True):
    weekday: Annotated[int, Meta(ge=1, le=7)] | None = None
    day_of_month: Annotated[int, Meta(ge=1, le=31)] | None = None
    mode: Literal["multiplier", "no_points"] = "multiplier"
    multiplier: Rate | None = None
    discount: Decimal | None = None  # the POS discount that day (e.g. "0.88"), if any


class Birthday(_Doc, frozen=True):
    multiplier: Rate
    tiers: Annotated[list[Code], Meta(max_length=20)] | None = None
    scope: Literal["day", "month"] = "day"  # the birthday itself, or its whole month


class Campaign(_Doc, frozen=True):
    name: Name
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    multiplier: Rate


class Accrual(_Doc, frozen=True):
    fen_per_point: Annotated[int, Meta(gt=0, le=1_000_000)]
    points_per_unit: Annotated[int, Meta(gt=0, le=1_000)]
    category_multipliers: Annotated[dict[Name, Rate], Meta(max_length=1_000)] = {}
    sku_promotions: Annotated[list[SkuPromotion], Meta(max_length=10_000)] = []
    member_days: Annotated[list[MemberDay], Meta(max_length=64)] = []
    birthday: Birthday | None = None
    campaigns: Annotated[list[Campaign], Meta(max_length=1_000)] = []
    stacking: Literal["max", "multiply"] = "max"
    lock_days: Annotated[int, Meta(ge=0, le=365)] = 0


class TierLevel(_Doc, frozen=True):
    code: Code
    min_spend_fen: Annotated[int, Meta(ge=0)]
    discount: Decimal
    points_multiplier: Rate | None = None


class TierReview(_Doc, frozen=True):
    month: Annotated[int, Meta(ge=1, le=12)] = 12
    day: Annotated[int, Meta(ge=1, le=31)] = 31


class Tiers(_Doc, frozen=True):
    levels: Annotated[list[TierLevel], Meta(min_length=1, max_length=20)]
    window_months: Annotated[int, Meta(ge=1, le=120)] = 24
    review: TierReview = TierReview()


class VoucherStep(_Doc, frozen=True):
    points: Annotated[int, Meta(gt=0)]
    value_fen: Annotated[int, Meta(ge=0)]


Fen = Annotated[int, Meta(ge=0, le=10_000_000_000)]
PointsFigure = Annotated[int, Meta(gt=0, le=100_000_000)]
DrugClass = Literal["rx", "otc_a", "otc_b", "none"]
NOT_FOR_POINTS = (
    "rx",
    "otc_a",
)  # 药品流通监督管理办法 第二十条: never given away or sold for points


class CatalogueItem(_Doc, frozen=True):
    """A gift (兑换赠品) or an exchange (积分换购) the chain offers: its points, its cash price
    (an exchange's), and what it costs the chain (what settlement pays the redeeming store)."""

    sku: Name
    kind: Literal["gift", "exchange"]
    points: PointsFigure
    cost_fen: Fen
    cash_price_fen: Fen | None = None
    drug_class: DrugClass = "none"
    stores: Annotated[list[Name], Meta(max_length=10_000)] | None = None  # None: every store


class Redemption(_Doc, frozen=True):
    cash_offset_points_per_yuan: Annotated[int, Meta(gt=0)] | None = None
    max_offset_ratio: Decimal | None = None
    voucher_ladder: Annotated[list[VoucherStep], Meta(max_length=100)] = []
    stored_value_points_per_yuan: Annotated[int, Meta(gt=0)] | None = None
    hold_minutes: Annotated[int, Meta(gt=0, le=24 * 60)] = DEFAULT_HOLD_MINUTES
    catalogue: Annotated[list[CatalogueItem], Meta(max_length=10_000)] = []

    def item(self, sku: str) -> CatalogueItem | None:
        return next((item for item in self.catalogue if item.sku == sku), None)


class BonusRule(_Doc, frozen=True):
    """A bonus (额外积分奖励) and who bears its cost: the granting store, or headquarters."""

    code: Code
    points: PointsFigure
    cost_to: Literal["store", "hq"]


class Expiry(_Doc, frozen=True):
    rolling_months: Annotated[int, Meta(ge=1, le=120)] | None = None
    clearance_month: Annotated[int, Meta(ge=1, le=12)] | None = None
    clearance_day: Annotated[int, Meta(ge=1, le=31)] | None = None


class Settlement(_Doc, frozen=True):
    cost_per_point_fen: Decimal


class Cards(_Doc, frozen=True):
    require_dispatch: bool = False


class RuleSet(_Doc, frozen=True):
    """One version of the chain's rules, in force from `effective_from`."""

    effective_from: AwareDatetime
    accrual: Accrual
    timezone: str | None = None
    tiers: Tiers | None = None
    redemption: Redemption | None = None
    expiry: Expiry | None = None
    settlement: Settlement | None = None
    cards: Cards | None = None
    bonuses: Annotated[list[BonusRule], Meta(max_length=100)] = []

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone or "Asia/Shanghai")

    def level(self, code: str | None) -> TierLevel | None:
        if self.tiers is None or code is None:
            return None
        return next((lv for lv in self.tiers.levels if lv.code == code), None)

    def bonus(self, code: str) -> BonusRule | None:
        return next((b for b in self.bonuses if b.code == code), None)


def _window_problem(path: str, starts: datetime | None, ends: datetime | None) -> list[str]:
    if starts is not None and ends is not None and ends <= starts:
        return [f"{path}: ends_at must be after starts_at"]
    return []


def _range_problem(path: str, value: Decimal | None, low: Decimal, high: Decimal) -> list[str]:
    if value is None:
        return []
    if not value.is_finite() or not low <= value <= high:
        return [f"{path}: must be a decimal from {low} to {high}"]
    return []


def _decimal_problems(rules: RuleSet) -> list[str]:
    """Bounds on every rate, multiplier, discount and cost."""
    zero, one = Decimal(0), Decimal(1)
    accrual = rules.accrual
    out: list[str] = []
    for category, rate in accrual.category_multipliers.items():
        out += _range_problem(f"accrual.category_multipliers.{category}", rate, zero, RATE_MAX)
    for i, promo in enumerate(accrual.sku_promotions):
        out += _range_problem(
            f"accrual.sku_promotions[{i}].multiplier", promo.multiplier, zero, RATE_MAX
        )
    for i, day in enumerate(accrual.member_days):
        out += _range_problem(
            f"accrual.member_days[{i}].multiplier", day.multiplier, zero, RATE_MAX
        )
        out += _range_problem(
            f"accrual.member_days[{i}].discount", day.discount, Decimal("0.01"), one
        )
    for i, campaign in enumerate(accrual.campaigns):
        out += _range_problem(
            f"accrual.campaigns[{i}].multiplier", campaign.multiplier, zero, RATE_MAX
        )
    if accrual.birthday is not None:
        out += _range_problem(
            "accrual.birthday.multiplier", accrual.birthday.multiplier, zero, RATE_MAX
        )
    for i, level in enumerate(rules.tiers.levels if rules.tiers else []):
        out += _range_problem(f"tiers.levels[{i}].discount", level.discount, Decimal("0.01"), one)
        out += _range_problem(
            f"tiers.levels[{i}].points_multiplier", level.points_multiplier, zero, RATE_MAX
        )
    if rules.redemption is not None:
        ratio = rules.redemption.max_offset_ratio
        out += _range_problem("redemption.max_offset_ratio", ratio, Decimal("0.01"), one)
    if rules.settlement is not None:
        cost = rules.settlement.cost_per_point_fen
        out += _range_problem("settlement.cost_per_point_fen", cost, zero, Decimal(10_000))
    return out


def _accrual_problems(rules: RuleSet) -> list[str]:
    out: list[str] = []
    accrual = rules.accrual
    for i, promo in enumerate(accrual.sku_promotions):
        out += _window_problem(f"accrual.sku_promotions[{i}]", promo.starts_at, promo.ends_at)
    for i, campaign in enumerate(accrual.campaigns):
        out += _window_problem(f"accrual.campaigns[{i}]", campaign.starts_at, campaign.ends_at)
    for i, day in enumerate(accrual.member_days):
        path = f"accrual.member_days[{i}]"
        if (day.weekday is None) == (day.day_of_month is None):
            out.append(f"{path}: give exactly one of weekday and day_of_month")
        if day.mode == "multiplier" and day.multiplier is None:
            out.append(f"{path}.multiplier: required when mode is 'multiplier'")
    known = {lv.code for lv in rules.tiers.levels} if rules.tiers else set()
    if accrual.birthday is not None:
        for i, code in enumerate(accrual.birthday.tiers or []):
            if code not in known:
                out.append(f"accrual.birthday.tiers[{i}]: unknown tier {code!r}")
    return out


def _tier_problems(tiers: Tiers) -> list[str]:
    out: list[str] = []
    codes = [lv.code for lv in tiers.levels]
    if len(set(codes)) != len(codes):
        out.append("tiers.levels: tier codes must be unique")
    if tiers.levels[0].min_spend_fen != 0:
        out.append("tiers.levels[0].min_spend_fen: the lowest level must start at 0")
    spends = [lv.min_spend_fen for lv in tiers.levels]
    if any(b <= a for a, b in itertools.pairwise(spends)):
        out.append("tiers.levels: min_spend_fen must strictly increase from level to level")
    if tiers.review.day > calendar.monthrange(2001, tiers.review.month)[1]:
        out.append("tiers.review.day: no such day in that month every year")
    return out


def _catalogue_problems(rules: RuleSet) -> list[str]:
    """Each SKU once; only an exchange has a cash price (and must); no prescription or class-A
    OTC drug given away or sold for points; bonus codes unique."""
    out: list[str] = []
    catalogue = rules.redemption.catalogue if rules.redemption else []
    skus = [item.sku for item in catalogue]
    if len(set(skus)) != len(skus):
        out.append("redemption.catalogue: each sku may be listed once")
    for i, item in enumerate(catalogue):
        path = f"redemption.catalogue[{i}]"
        if item.drug_class in NOT_FOR_POINTS:
            out.append(
                f"{path}.drug_class: {item.drug_class} drugs may not be given away or sold for "
                "points (药品流通监督管理办法 第二十条)"
            )
        if (item.kind == "exchange") != (item.cash_price_fen is not None):
            out.append(f"{path}.cash_price_fen: an exchange has a cash price, a gift has none")
    codes = [bonus.code for bonus in rules.bonuses]
    if len(set(codes)) != len(codes):
        out.append("bonuses: each code may be listed once")
    return out


def _other_problems(rules: RuleSet) -> list[str]:
    out: list[str] = _catalogue_problems(rules)
    if rules.redemption is not None:
        steps = [s.points for s in rules.redemption.voucher_ladder]
        if any(b <= a for a, b in itertools.pairwise(steps)):
            out.append("redemption.voucher_ladder: points must strictly increase")
    expiry = rules.expiry
    if expiry is not None:
        if (expiry.clearance_month is None) != (expiry.clearance_day is None):
            out.append("expiry: give both clearance_month and clearance_day, or neither")
        elif expiry.clearance_month is not None and expiry.clearance_day is not None:
            last_day = calendar.monthrange(2001, expiry.clearance_month)[1]
            if expiry.clearance_day > last_day:
                out.append("expiry.clearance_day: no such day in that month every year")
    if rules.timezone is not None:
        try:
            ZoneInfo(rules.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(f"timezone: unknown time zone {rules.timezone!r}")
    return out


def problems(rules: RuleSet) -> list[str]:
    """Every cross-field problem of a rule set, as 'field.path: message' strings."""
    out = _decimal_problems(rules) + _accrual_problems(rules) + _other_problems(rules)
    if rules.tiers is not None:
        out += _tier_problems(rules.tiers)
    return out


def check(rules: RuleSet) -> RuleSet:
    """Return the rule set if it is valid; raise `InvalidRuleSet` naming every problem."""
    found = problems(rules)
    if found:
        field = found[0].split(":", 1)[0]
        raise InvalidRuleSet("; ".join(found), field=field)
    return rules


class RuleVersion(msgspec.Struct, frozen=True, kw_only=True):
    """A published rule set with its version number (1, 2, ...)."""

    version: int
    published_at: datetime
    rules: RuleSet
