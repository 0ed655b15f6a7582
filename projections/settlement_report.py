"""The settlement report's shape (SPEC 2.7) and its assembly from the view's store-month rows:
each row's fee rounded half-up once, its difference (fee − redemption cost − stored-value cost)
and the totals (the sums of the rows, plus the points of bonuses at headquarters' cost)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec

HQ = ""  # the store id under which the view keeps bonuses at headquarters' cost


class SettlementRow(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    kind: str | None
    franchisee: str | None
    points_issued: int
    fee_due_fen: int
    redemption_cost_fen: int
    stored_value_cost_fen: int  # stored value spent at the store, net of its refunds
    difference_fen: int  # fee_due − redemption_cost − stored_value_cost: > 0, the store pays
    late: bool
    points_redeemed: int
    points_converted: int
    converted_fen: int


class SettlementTotals(msgspec.Struct, frozen=True, kw_only=True):
    points_issued: int
    fee_due_fen: int
    redemption_cost_fen: int
    stored_value_cost_fen: int
    difference_fen: int
    hq_bonus_points: int  # bonuses at headquarters' cost: marketing, in no store's row


class SettlementReport(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    closed: bool
    closed_at: datetime | None
    rows: list[SettlementRow]
    totals: SettlementTotals


class MonthPoints(msgspec.Struct, frozen=True, kw_only=True):
    """A settlement month's points over all stores (late rows in the month they settle in)."""

    period: str
    points_issued: int  # net of refund reversals
    points_redeemed: int  # net of voids
    points_converted: int  # to stored value


def fen(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _row(
    r: tuple[Any, ...], store: tuple[str, str | None] | None, stored_value_cost: int
) -> SettlementRow:
    fee_due = fen(Decimal(r[3]))
    return SettlementRow(
        store_id=r[0],
        kind=store[0] if store else None,
        franchisee=store[1] if store else None,
        points_issued=r[2],
        fee_due_fen=fee_due,
        redemption_cost_fen=r[4],
        stored_value_cost_fen=stored_value_cost,
        difference_fen=fee_due - r[4] - stored_value_cost,
        late=bool(r[1]),
        points_redeemed=r[5],
        points_converted=r[6],
        converted_fen=r[7],
    )


def assemble(
    period: str,
    closed_at: datetime | None,
    stores: dict[str, tuple[str, str | None]],
    found: dict[tuple[str, bool], tuple[Any, ...]],
    extras: dict[tuple[str, bool], tuple[int, int]],
) -> SettlementReport:
    """The report of `period` from its rows (store, late) → (store_id, late, points_issued, fee,
    redemption_cost_fen, points_redeemed, points_converted, converted_fen) and its extras
    (store, late) → (stored_value_cost_fen, hq_bonus_points): every known store appears."""
    hq_bonus = sum(points for (store, _), (_, points) in extras.items() if store == HQ)
    keys = [(store, False) for store in stores] + [k for k in extras if k[0] != HQ]
    for store_id, late in keys:
        found.setdefault((store_id, late), (store_id, int(late), 0, "0", 0, 0, 0, 0))
    rows = [
        _row(r, stores.get(r[0]), extras.get(key, (0, 0))[0]) for key, r in sorted(found.items())
    ]
    return SettlementReport(
        period=period,
        closed=closed_at is not None,
        closed_at=closed_at,
        rows=rows,
        totals=SettlementTotals(
            points_issued=sum(r.points_issued for r in rows),
            fee_due_fen=sum(r.fee_due_fen for r in rows),
            redemption_cost_fen=sum(r.redemption_cost_fen for r in rows),
            stored_value_cost_fen=sum(r.stored_value_cost_fen for r in rows),
            difference_fen=sum(r.difference_fen for r in rows),
            hq_bonus_points=hq_bonus,
        ),
    )
