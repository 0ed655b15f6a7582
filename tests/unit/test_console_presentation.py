"""The console's pure presentation: yuan with two decimals, labels in both languages, chart
geometry, and the analytics table that takes whatever Struct the analytics query returns."""

from __future__ import annotations

import string
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import msgspec
import pytest

from api.console import text
from api.console.charts import HEIGHT, LEFT, RIGHT, TOP, WIDTH, Scale, balance_line, grouped_bars
from api.console.operations import analytics_table
from api.console.render import template_config
from projections.queries import LagReport

pytestmark = pytest.mark.unit
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("fen", "shown"),
    [(0, "¥0.00"), (5, "¥0.05"), (100, "¥1.00"), (123456, "¥1,234.56"), (-1050, "-¥10.50")],
)
def test_amounts_are_yuan_with_two_decimals(fen: int, shown: str) -> None:
    assert text.yuan(fen) == shown


def test_every_label_exists_in_both_languages_with_the_same_placeholders() -> None:
    chinese, english = text.labels("zh-CN"), text.labels("en")
    assert chinese.keys() == english.keys()
    for key in chinese:
        fields = [
            {f for _, f, _, _ in string.Formatter().parse(s) if f}
            for s in (chinese[key], english[key])
        ]
        assert fields[0] == fields[1], key
        assert chinese[key] and english[key], key
    assert text.language("fr") == text.DEFAULT_LANGUAGE == "zh-CN"


def test_a_date_means_the_end_of_that_day_in_chain_time() -> None:
    end = text.end_of_day(date(2026, 3, 31), SHANGHAI)
    assert end.isoformat() == "2026-03-31T23:59:59.999999+08:00"
    assert text.months_back("2026-01", 1) == "2025-12"
    assert text.months_back("2026-12", 11) == "2026-01"
    assert text.local(datetime(2026, 3, 31, 16, 30, tzinfo=UTC), SHANGHAI) == "2026-04-01 00:30"


@pytest.mark.parametrize("values", [[0], [7], [-120, 900], [3, 1_000_003], [-5, -1]])
def test_the_scale_covers_every_value_and_zero_with_round_ticks(values: list[int]) -> None:
    scale = Scale.around(values)
    assert scale.low <= min(0, *values) and scale.high >= max(0, *values)
    assert all(TOP <= scale.y(v) <= HEIGHT for v in values)
    labels = [t.label for t in scale.ticks(str)]
    assert "0" in labels


def test_the_balance_line_steps_through_each_balance_up_to_now() -> None:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    steps = [(now - timedelta(days=30), 100), (now - timedelta(days=10), -20)]
    chart = balance_line(steps, now, lambda d: d.date().isoformat())
    assert chart is not None
    assert chart.path.startswith(f"M {LEFT} ") and chart.path.endswith(f"H {WIDTH - RIGHT}")
    assert chart.path.count("V") == 2 and chart.last == -20
    assert (
        chart.frame.x_ticks[0].label == "2026-10-24"
        and chart.frame.x_ticks[-1].label == "2026-11-23"
    )
    assert balance_line([], now, str) is None


def test_bars_stand_on_zero_and_negative_ones_hang_below_it() -> None:
    chart = grouped_bars([("10", [100, 40]), ("11", [-30, 0])], ["issued", "redeemed"])
    assert len(chart.bars) == 4 and len(chart.frame.x_ticks) == 2
    up, _, down, empty = chart.bars
    assert up.y + up.height == chart.frame.zero
    assert down.y == chart.frame.zero and down.height > 0
    assert empty.height == 0
    assert all(b.height >= 0 for b in chart.bars)


class StoreFigures(msgspec.Struct, frozen=True, kw_only=True):
    """A stand-in for a row of the analytics Struct (its real fields come with the query)."""

    store_id: str
    active_members: int
    active_ratio: Decimal
    churn_rate: str
    member_sales_fen: int
    ticket_size_fen: int | None


class Report(msgspec.Struct, frozen=True, kw_only=True):
    period: str
    stores: list[StoreFigures]


def test_the_analytics_table_formats_whatever_rows_it_is_given() -> None:
    row = StoreFigures(
        store_id="S1",
        active_members=1234,
        active_ratio=Decimal("0.4567"),
        churn_rate="0.1",
        member_sales_fen=987654,
        ticket_size_fen=None,
    )
    table = analytics_table(Report(period="2026-11", stores=[row]))
    assert table.columns == list(msgspec.structs.asdict(row))
    assert table.rows == [["S1", "1,234", "45.7%", "10.0%", "¥9,876.54", "—"]]
    assert analytics_table([row]) == table
    assert analytics_table(Report(period="2026-11", stores=[])).rows == []


def test_the_operations_page_draws_the_analytics_table_in_its_block() -> None:
    template = template_config(SHANGHAI).engine_instance.get_template("operations.html")
    row = StoreFigures(
        store_id="S1",
        active_members=3,
        active_ratio=Decimal("0.5"),
        churn_rate="0.25",
        member_sales_fen=100,
        ticket_size_fen=50,
    )
    shared: dict[str, object] = {"t": text.labels("en"), "lang": "en", "here": "/console"}
    shared["other_lang"] = "zh-CN"
    shared |= {"viewer": None, "role": None, "nav": [], "csrf": "x", "flash": None}
    shared |= {"projection_name": str, "lag": LagReport(head=0, views=[])}
    shared |= {"period": "2026-11", "report": None, "error": None}
    html = template.render(**shared, analytics=analytics_table([row]))
    assert "<th>Churn rate</th>" in html and '<td class="num">25.0%</td>' in html
    assert "<th>active_members</th>" in html  # a column without a label shows its field name
    assert "Nothing was sold" not in html
    assert "Nothing was sold" in template.render(**shared, analytics=None)


@pytest.mark.parametrize(
    ("kind", "difference_fen", "zh", "en"),
    [
        ("franchise", 391, "门店付总部 ¥3.91", "store pays HQ ¥3.91"),
        ("franchise", -1250, "总部付门店 ¥12.50", "HQ pays the store ¥12.50"),
        ("franchise", 0, "无需结算", "nothing to settle"),
        (
            "direct",
            391,
            "直营店：内部核算，不付款",
            "direct store: internal accounting, no payment",
        ),
        ("direct", -5, "直营店：内部核算，不付款", "direct store: internal accounting, no payment"),
    ],
)
def test_a_settlement_row_says_who_pays_whom(
    kind: str, difference_fen: int, zh: str, en: str
) -> None:
    assert text.who_pays(kind, difference_fen, "zh-CN") == zh
    assert text.who_pays(kind, difference_fen, "en") == en
