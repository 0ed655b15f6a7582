"""The console over HTTP (no browser): sign-in with a key into an encrypted, HttpOnly,
SameSite=Strict session cookie; CSRF on every form; each role sees only its pages; the member,
finance and operations pages show what the JSON API says."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from tests.chain import Chain, now_iso
from tests.conftest import ADMIN_KEY
from tests.polling import caught_up

pytestmark = pytest.mark.e2e
Client = TestClient[Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: Client, headers: dict[str, str]) -> None:
    """Sign in with the Bearer key in `headers`."""
    client.cookies.clear()
    form = client.get("/console/login")
    key = headers["Authorization"].removeprefix("Bearer ")
    response = client.post(
        "/console/login", data={"key": key, "_csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def test_sign_in_sets_a_strict_http_only_encrypted_cookie_and_lands_on_the_roles_page(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    key = chain.service()["Authorization"].removeprefix("Bearer ")
    form = client.get("/console/login")
    assert form.status_code == 200
    assert "会员积分控制台" in form.text  # zh-CN by default
    assert form.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in form.headers["content-security-policy"]

    response = client.post(
        "/console/login", data={"key": key, "_csrf": csrf_of(form.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http (local): a browser would drop a Secure cookie
    assert key not in cookie  # encrypted, not just encoded
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/members"


def test_a_bad_key_a_pos_key_and_a_missing_csrf_token_do_not_sign_in(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    form = client.get("/console/login")
    token = csrf_of(form.text)
    bad = client.post("/console/login", data={"key": "nope", "_csrf": token})
    assert bad.status_code == 401 and "密钥无效" in bad.text
    pos = chain.pos()["Authorization"].removeprefix("Bearer ")
    assert client.post("/console/login", data={"key": pos, "_csrf": token}).status_code == 401
    forged = client.post("/console/login", data={"key": ADMIN_KEY, "_csrf": "x" * 43})
    assert forged.status_code == 403
    assert client.get("/console/members", follow_redirects=False).status_code == 303


def test_each_role_sees_only_its_pages(client: Client, chain: Chain) -> None:
    chain.standard()
    sign_in(client, chain.finance())
    page = client.get("/console/finance")
    assert page.status_code == 200
    assert 'href="/console/members"' not in page.text
    assert client.get("/console/members?card=M1").status_code == 403
    sign_in(client, chain.service())
    assert client.get("/console/finance").status_code == 403
    assert client.get("/console/finance/settlement.csv?period=2026-01").status_code == 403
    assert client.get("/console/operations").status_code == 200
    sign_in(client, {"Authorization": f"Bearer {ADMIN_KEY}"})
    for path in ("/console/members", "/console/finance", "/console/operations"):
        assert client.get(path).status_code == 200


def test_the_member_page_explains_the_history_and_the_adjustment_form_posts_once(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    assert chain.sale("R1", member_id="M1").status_code == 201
    caught_up(client)
    history = client.get("/v1/members/M1/history", headers=chain.service()).json()["items"]
    accrual = next(e for e in history if e["type"] == "PointsAccrued")
    member = chain.member("M1")

    steps = client.app.state.queries.balance_steps("M1")
    assert [s.balance for s in steps][-1] == history[0]["balance_after"] == member["points"]

    sign_in(client, chain.service())
    page = client.get("/console/members?card=M1")
    assert page.status_code == 200
    assert f'id="points">{member["points"]:,}<' in page.text
    assert accrual["explanation"] in page.text.replace("&#39;", "'")
    assert "<svg" in page.text and "<script" not in page.text
    assert client.get("/console/members?card=NOPE").status_code == 404

    number = re.search(r'name="adjustment_no" value="([^"]+)"', page.text)
    assert number
    form = {"_csrf": csrf_of(page.text), "adjustment_no": number.group(1)}
    form |= {"points": "25", "reason": "goodwill", "ticket": "T-1"}
    for _ in range(2):  # a double submit of the same form posts once
        done = client.post("/console/members/M1/adjustments", data=form)
        assert done.status_code == 200
    assert chain.member("M1")["points"] == member["points"] + 25
    without = client.post("/console/members/M1/adjustments", data=form | {"_csrf": "forged"})
    assert without.status_code == 403


def test_the_finance_page_and_csv_match_the_api(client: Client, chain: Chain) -> None:
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    occurred_at = now_iso()
    sale = chain.sale("R1", member_id="M1", occurred_at=occurred_at).json()
    assert sale["points_earned"] > 0
    caught_up(client)
    period = datetime.fromisoformat(occurred_at).astimezone(SHANGHAI).strftime("%Y-%m")
    api = client.get(f"/v1/settlements/{period}", headers=chain.finance())
    api_csv = client.get(f"/v1/settlements/{period}?format=csv", headers=chain.finance()).text

    (month,) = client.app.state.queries.points_by_month(period, period)
    assert month.points_issued == api.json()["totals"]["points_issued"] == sale["points_earned"]

    sign_in(client, chain.finance())
    page = client.get(f"/console/finance?period={period}")
    assert page.status_code == 200
    assert f'data-field="points_issued">{api.json()["totals"]["points_issued"]:,}<' in page.text
    csv = client.get(f"/console/finance/settlement.csv?period={period}")
    assert csv.headers["content-disposition"].startswith("attachment")
    assert csv.text == api_csv
    assert client.get("/console/finance?period=2026-13").status_code == 422


def test_the_operations_page_shows_the_projection_lag_to_admins_only(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    caught_up(client)
    for staff in (chain.finance(), chain.service()):
        sign_in(client, staff)
        page = client.get("/console/operations").text
        assert 'id="analytics"' in page
        assert "data-projection" not in page
        assert "投影延迟" not in page and "日志最新位置" not in page
    sign_in(client, {"Authorization": f"Bearer {ADMIN_KEY}"})
    page = client.get("/console/operations").text
    assert "投影延迟" in page and "日志最新位置" in page
    for name in ("history", "settlement", "members", "analytics"):
        assert f'data-projection="{name}"' in page


def last_month_at_ten() -> tuple[str, str]:
    """Last month (chain time) and an instant on its last day, 10:00."""
    first = datetime.now(SHANGHAI).replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    at = first - timedelta(days=1)
    return at.strftime("%Y-%m"), at.isoformat()


def test_the_settlement_says_who_pays_whom_and_labels_direct_stores(
    client: Client, chain: Chain
) -> None:
    chain.standard()  # S1 franchise, S2 direct
    chain.enrol("M1", "S1")
    chain.enrol("M2", "S2")
    period, at = last_month_at_ten()
    assert chain.sale("R1", member_id="M1", occurred_at=at).status_code == 201
    assert chain.sale("R2", member_id="M2", store_id="S2", occurred_at=at).status_code == 201
    caught_up(client)
    rows = client.get(f"/v1/settlements/{period}", headers=chain.finance()).json()["rows"]
    difference = {row["store_id"]: row["difference_fen"] for row in rows}
    assert difference["S1"] > 0
    sign_in(client, chain.finance())
    page = client.get(f"/console/finance?period={period}").text
    assert "门店积分结算（加盟店与直营店）" in page and "加盟店积分结算" not in page
    shown = dict(re.findall(r'<tr data-store="(S\d)".*?<td class="who">([^<]*)</td>', page, re.S))
    assert shown == {
        "S1": f"门店付总部 ¥{difference['S1'] // 100}.{difference['S1'] % 100:02d}",
        "S2": "直营店：内部核算，不付款",
    }
    assert '<tr data-store="S2" data-kind="direct">' in page


def test_finance_closes_an_ended_month_after_confirming_and_a_double_submit_closes_once(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    chain.enrol("M1")
    period, at = last_month_at_ten()
    assert chain.sale("R1", member_id="M1", occurred_at=at).status_code == 201
    caught_up(client)
    api = f"/v1/settlements/{period}"
    sign_in(client, chain.finance())
    page = client.get(f"/console/finance?period={period}").text
    assert f'id="close" href="/console/finance/close?period={period}"' in page

    confirm = client.get(f"/console/finance/close?period={period}")
    assert confirm.status_code == 200 and 'id="confirm-close"' in confirm.text
    assert (
        client.get(api, headers=chain.finance()).json()["closed"] is False
    )  # a look closes nothing
    form = {"_csrf": csrf_of(confirm.text), "period": period}
    assert client.post("/console/finance/close", data=form | {"_csrf": "forged"}).status_code == 403
    assert client.get(api, headers=chain.finance()).json()["closed"] is False

    first = client.post("/console/finance/close", data=form)  # 303 to the finance page, followed
    assert first.status_code == 200 and f"已关账 {period}" in first.text
    closed = client.get(api, headers=chain.finance()).json()
    assert closed["closed"] and 'id="closed-at"' in first.text and 'id="close"' not in first.text
    again = client.post("/console/finance/close", data=form)  # the double submit
    assert f"{period} 已关账，未重复操作" in again.text
    replay = client.post(f"{api}/close", headers=chain.finance())  # the same command: a replay
    assert replay.status_code == 200 and replay.json()["closed_at"] == closed["closed_at"]

    this_month = datetime.now(SHANGHAI).strftime("%Y-%m")
    assert 'id="close"' not in client.get(f"/console/finance?period={this_month}").text
    early = client.post("/console/finance/close", data=form | {"period": this_month})
    assert "未完成" in early.text and "has not ended" in early.text
    assert (
        client.get(f"/v1/settlements/{this_month}", headers=chain.finance()).json()["closed"]
        is False
    )

    sign_in(client, chain.service())
    token = csrf_of(client.get("/console/members").text)
    refused = client.post("/console/finance/close", data={"_csrf": token, "period": period})
    assert refused.status_code == 403


def test_the_operations_page_shows_analytics_per_store_as_the_api_does(
    client: Client, chain: Chain
) -> None:
    chain.standard()
    chain.enrol("M1", "S1")
    chain.enrol("M2", "S2")
    chain.sale("R1", member_id="M1", store_id="S1")
    chain.sale("R2", member_id="M2", store_id="S2")
    chain.sale("R3", member_id=None, store_id="S2")
    caught_up(client)
    period = datetime.now(SHANGHAI).strftime("%Y-%m")
    api = client.get(f"/v1/analytics/{period}", headers=chain.finance()).json()
    s2 = client.get(f"/v1/analytics/{period}?store_id=S2", headers=chain.finance()).json()
    sign_in(client, chain.finance())
    page = client.get(f"/console/operations?period={period}").text
    rows = dict(re.findall(r'<tr data-store="([^"]+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"*", "S1", "S2"}
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows["S2"])
    share = f"{float(s2['sales']['member_sales_share']) * 100:.1f}%"
    assert cells[0] == "S2" and share in cells
    assert api["members"]["total_members"] == 2
    assert re.findall(r"<td[^>]*>([^<]*)</td>", rows["*"])[1] == "2"  # members, chain-wide
    assert client.get("/console/operations?period=2026-13").status_code == 422


def test_english_labels_on_request(client: Client, chain: Chain) -> None:
    chain.standard()
    sign_in(client, chain.finance())
    client.get("/console/language?to=en&back=/console/finance")
    assert "Store settlement (franchise and direct)" in client.get("/console/finance").text
    away = client.get("/console/language?to=en&back=//evil.example", follow_redirects=False)
    assert away.headers["location"] == "/console"


def test_over_https_the_session_cookie_is_secure(client: Client, chain: Chain) -> None:
    chain.standard()
    key = chain.finance()["Authorization"].removeprefix("Bearer ")
    with TestClient(client.app, base_url="https://console.example") as https:
        form = https.get("/console/login")
        assert "Secure" in form.headers["set-cookie"]
        signed_in = https.post(
            "/console/login",
            data={"key": key, "_csrf": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert "Secure" in signed_in.headers["set-cookie"]


def test_signing_out_ends_the_session_on_the_server(client: Client, chain: Chain) -> None:
    """Finding 8 of issue 14: a console cookie replayed after signing out worked for 8 hours."""
    chain.standard()
    sign_in(client, chain.service())
    page = client.get("/console/members")
    assert page.status_code == 200
    kept = dict(client.cookies)  # what someone copied from the browser
    out = client.post("/console/logout", data={"_csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    for name, value in kept.items():
        client.cookies.set(name, value, path="/console")
    replayed = client.get("/console/members", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/console/login")


def test_the_console_shows_stored_value_cost_liability_by_cost_and_refund_lines(
    client: Client, chain: Chain
) -> None:
    """Contract version 2 in the console: the settlement's stored-value cost column, the
    liability valued lot by lot (with the stored value outstanding), a refund's explanation."""
    chain.standard()
    assert chain.enrol("M1").status_code == 201
    tcm = [{"sku": "TCM-1", "category": "tcm", "amount_fen": 10_000}]
    assert chain.sale("R1", lines=tcm).status_code == 201  # 200 points
    assert chain.refund("R1", "F1", [(1, 2_500)]).json()["points_reversed"] == 50
    chain.stored_value("conversions", store_id="S2", conversion_no="C1", points=100)
    chain.stored_value("payments", payment_no="P1", amount_fen=60)
    caught_up(client)
    period = datetime.now(SHANGHAI).strftime("%Y-%m")
    sign_in(client, chain.finance())
    page = client.get(f"/console/finance?period={period}").text
    assert 'data-field="stored_value_cost_fen">¥0.60<' in page
    assert 'id="liability-stored-value">¥0.40<' in page and "liability-by-version" in page
    sign_in(client, chain.service())
    member = client.get("/console/members?card=M1").text
    assert "line 1 TCM-1: 2500 fen refunded ×2" in member
    assert "from the lot of receipt R1" in member
