"""The console in headless Chromium on a served demo chain, on both stores: customer service
signs in, finds a member and reads why an accrual earned what it did; finance downloads the
settlement CSV and its totals are the API's, reads who pays whom, and closes last month after a
confirmation step (a second submit, from another tab, closes nothing twice); customer service
finds a member by phone, merges a duplicate and replaces a lost card through the forms."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.server import DemoServer, chain_today

pytestmark = pytest.mark.browser
MEMBERS = 40


def sign_in(page: Page, demo: DemoServer, role: str) -> None:
    page.goto(f"{demo.url}/console/login")
    page.fill("input[name=key]", demo.keys[role])
    page.click("button[type=submit]")
    expect(page.locator(".role")).to_have_attribute("data-role", role)


def member_with_an_accrual(demo: DemoServer) -> tuple[str, dict[str, Any]]:
    """A demo card and its newest accrual, as the API tells them."""
    with demo.api("service") as api:
        for n in range(1, MEMBERS + 1):
            card = f"{n:012d}"
            items = api.get(f"/v1/members/{card}/history", params={"limit": 20}).json()["items"]
            accruals = [e for e in items if e["type"] == "PointsAccrued" and e["breakdown"]]
            if accruals:
                return card, accruals[0]
    raise AssertionError("no demo member has an accrual")


def test_service_finds_a_member_and_reads_the_explanation_of_an_accrual(
    page: Page, demo: DemoServer
) -> None:
    card, accrual = member_with_an_accrual(demo)
    with demo.api("service") as api:
        points = api.get(f"/v1/members/{card}").json()["points"]

    sign_in(page, demo, "service")
    expect(page.locator("header nav a")).to_have_count(2)  # members and operations, no finance
    page.fill("input[name=card]", card)
    page.click("form.search button")
    expect(page.locator("#points")).to_have_text(f"{points:,}")
    expect(page.locator("#balance-chart svg path.line")).to_have_count(1)

    entry = page.locator(f'article.entry[data-reference="{accrual["reference"]}"]').first
    expect(entry.locator(".explanation")).to_have_text(accrual["explanation"])
    entry.locator("details summary").click()
    rows = entry.locator("table.breakdown tbody tr")
    expect(rows).to_have_count(len(accrual["breakdown"]))
    expect(rows.first).to_contain_text(accrual["breakdown"][0]["reason"])


def test_service_adjusts_points_through_the_form(page: Page, demo: DemoServer) -> None:
    card, _ = member_with_an_accrual(demo)
    with demo.api("service") as api:
        before = api.get(f"/v1/members/{card}").json()["points"]
    sign_in(page, demo, "service")
    page.goto(f"{demo.url}/console/members?card={card}")
    form = page.locator("#adjust form")
    form.locator("input[name=points]").fill("15")
    form.locator("input[name=reason]").fill("goodwill after a complaint")
    form.locator("input[name=ticket]").fill("T-2026-1")
    form.locator("button").click()
    expect(page.locator(".flash")).to_contain_text("+15")
    expect(page.locator("#points")).to_have_text(f"{before + 15:,}")


def _period_with_points(demo: DemoServer) -> tuple[str, dict[str, Any]]:
    with demo.api("finance") as api:
        for back in (20, 5, 35):
            period = (chain_today() - timedelta(days=back)).strftime("%Y-%m")
            report = api.get(f"/v1/settlements/{period}").json()
            if report["totals"]["points_issued"]:
                return period, report
    raise AssertionError("no demo month has points issued")


def test_finance_downloads_the_settlement_csv_and_its_totals_are_the_apis(
    page: Page, demo: DemoServer
) -> None:
    period, report = _period_with_points(demo)
    sign_in(page, demo, "finance")
    page.goto(f"{demo.url}/console/finance?period={period}")
    expect(page.locator('#totals [data-field="points_issued"]')).to_have_text(
        f"{report['totals']['points_issued']:,}"
    )
    with page.expect_download() as download:
        page.click("#csv")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text("utf-8"))))
    assert len(rows) == len(report["rows"])
    for column, total in report["totals"].items():
        if column == "hq_bonus_points":  # headquarters' bonuses: in no store's row
            expect(page.locator('[data-field="hq_bonus_points"]')).to_have_text(f"{total:,}")
            continue
        assert sum(int(row[column]) for row in rows) == total, column
    expect(page.locator("#months svg rect")).not_to_have_count(0)

    forbidden = page.goto(f"{demo.url}/console/members?card=000000000001")
    assert forbidden is not None and forbidden.status == 403
    expect(page.locator("header nav a")).to_have_count(2)  # finance and operations


def who_pays(kind: str, difference_fen: int) -> str:
    """What the finance page should say of a settlement row (written out, not the console's
    own function)."""
    amount = f"¥{abs(difference_fen) // 100:,}.{abs(difference_fen) % 100:02d}"
    if kind == "direct":
        return "直营店：内部核算，不付款"
    if difference_fen > 0:
        return f"门店付总部 {amount}"
    return f"总部付门店 {amount}" if difference_fen < 0 else "无需结算"


def test_finance_reads_who_pays_whom_and_closes_last_month_after_confirming_once(
    page: Page, demo: DemoServer
) -> None:
    period = (chain_today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    with demo.api("finance") as api:
        rows = api.get(f"/v1/settlements/{period}").json()["rows"]
    assert rows, "the demo has last month's settlement"
    sign_in(page, demo, "finance")
    page.goto(f"{demo.url}/console/finance?period={period}")
    expect(page.locator("#settlement h1")).to_contain_text("门店积分结算（加盟店与直营店）")
    expect(page.locator("#settlement .badge")).to_have_text("未关账")
    for row in rows:
        expected = who_pays(row["kind"], row["difference_fen"])
        expect(page.locator(f'tr[data-store="{row["store_id"]}"] td.who')).to_have_text(expected)

    page.click("#close")  # the confirmation step, in two tabs: a double submit
    expect(page.locator("#close-confirm h1")).to_contain_text(period)
    other = page.context.new_page()
    other.goto(page.url)
    page.click("#confirm-close")
    expect(page.locator(".flash")).to_contain_text(f"已关账 {period}")
    expect(page.locator("#settlement .badge")).to_have_text("已关账")
    other.click("#confirm-close")
    expect(other.locator(".flash")).to_contain_text(f"{period} 已关账，未重复操作")
    with demo.api("finance") as api:
        closed = api.get(f"/v1/settlements/{period}").json()
        replay = api.post(f"/v1/settlements/{period}/close")
    assert closed["closed"] and replay.status_code == 200
    assert replay.json()["closed_at"] == closed["closed_at"]


def test_service_finds_by_phone_merges_a_duplicate_and_replaces_a_lost_card(
    page: Page, demo: DemoServer
) -> None:
    """Two new members with their phones (and points from customer service): the duplicate is
    found by phone, merged into the other through the form (a second submit from the page the
    browser goes back to merges nothing twice), and the member's lost card is replaced."""
    suffix = secrets.token_hex(3)
    keep, duplicate, new = f"KEEP{suffix}", f"DUP{suffix}", f"NEW{suffix}"
    phone = f"139{int(suffix, 16) % 10**8:08d}"
    with demo.api("admin") as api:
        store = api.get("/v1/members/000000000001").json()["store_id"]
        for card, number in ((keep, None), (duplicate, phone)):
            body = {"member_id": card, "store_id": store} | ({"phone": number} if number else {})
            assert api.post("/v1/members", json=body).status_code == 201
            credit = {
                "adjustment_no": f"B-{card}",
                "points": 50,
                "reason": "opening",
                "ticket": "T",
            }
            assert api.post(f"/v1/members/{card}/adjustments", json=credit).status_code == 201

    sign_in(page, demo, "service")
    page.fill("#phone-search input[name=phone]", f"+86 {phone[:3]} {phone[3:7]} {phone[7:]}")
    page.click("#phone-search button")
    expect(page.locator("#member-id")).to_have_text(duplicate)

    page.goto(f"{demo.url}/console/members?card={keep}")
    merge = page.locator("#merge form")
    merge.locator("input[name=from_member_id]").fill(duplicate)
    merge.locator("input[name=reason]").fill("one person, two cards")
    merge.locator("button").click()
    expect(page.locator("#points")).to_have_text("100")
    page.go_back()
    page.locator("#merge form button").click()  # the same form again: acts once
    expect(page.locator(".flash")).to_be_visible()
    expect(page.locator("#points")).to_have_text("100")

    replace = page.locator("#replace-card form")
    replace.locator("input[name=new_member_id]").fill(new)
    replace.locator("input[name=reason]").fill("lost at the station")
    replace.locator("button").click()
    expect(page.locator("#member-id")).to_have_text(new)
    expect(page.locator("#points")).to_have_text("100")
    page.goto(f"{demo.url}/console/members?card={keep}")
    expect(page.locator("#replaced-notice")).to_contain_text(new)
    with demo.api("service") as api:
        assert api.get(f"/v1/members/{keep}").json()["replaced_by"] == new
        assert api.get(f"/v1/members/{duplicate}").json()["type"] == "member-merged"
