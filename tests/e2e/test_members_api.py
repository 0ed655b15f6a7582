"""Enrolment and member reads over HTTP, on SQLite and PostgreSQL (SPEC 2.8 and 3)."""

from __future__ import annotations

import pytest

from tests.chain import Chain

pytestmark = pytest.mark.e2e


@pytest.fixture
def ready(chain: Chain) -> Chain:
    return chain.standard()


def test_enrolment_shows_the_lowest_tier_and_the_way_to_the_next(ready: Chain) -> None:
    response = ready.enrol("M1", name="张三", phone="13800000000", birthday="1990-03-07")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tier"] == "normal"
    assert body["discount"] == "0.97"
    assert body["points"] == 0
    assert body["pending_points"] == 0
    assert body["stored_value_fen"] == 0
    assert body["tier_spend_fen"] == 0
    assert body["next_tier"] == {
        "code": "silver",
        "min_spend_fen": 200000,
        "spend_needed_fen": 200000,
    }
    assert body["expiring"] == []
    assert "name" not in body and "phone" not in body


def test_re_enrolling_the_same_card_with_the_same_body_is_a_200_replay(ready: Chain) -> None:
    assert ready.enrol("M1", name="A").status_code == 201
    assert ready.enrol("M1", name="A").status_code == 200
    other = ready.enrol("M1", name="B")
    assert other.status_code == 409
    assert other.json()["type"] == "member-exists"


def test_an_id_number_can_belong_to_one_member_only(ready: Chain) -> None:
    assert ready.enrol("M1", id_number="110101199003071233").status_code == 201
    second = ready.enrol("M2", id_number="110101900307123")
    assert second.status_code == 409
    assert second.json()["type"] == "id-number-taken"
    assert ready.client.get("/v1/members/M2", headers=ready.pos()).status_code == 404


def test_a_malformed_id_number_or_phone_is_422(ready: Chain) -> None:
    assert ready.enrol("M1", id_number="12345").json()["field"] == "id_number"
    assert ready.enrol("M1", phone="call me").json()["field"] == "phone"
    assert ready.enrol("M1", birthday="1990-02-30").status_code == 422


def test_a_pos_enrols_at_its_own_store_only_and_service_anywhere(ready: Chain) -> None:
    body = {"member_id": "M1", "store_id": "S2"}
    assert ready.client.post("/v1/members", json=body, headers=ready.pos("S1")).status_code == 403
    service = ready.key("service")
    assert ready.client.post("/v1/members", json=body, headers=service).status_code == 201
    finance = ready.key("finance")
    assert ready.client.get("/v1/members/M1", headers=finance).status_code == 403


def test_enrolling_at_an_unknown_store_is_404(ready: Chain) -> None:
    service = ready.key("service")
    response = ready.client.post(
        "/v1/members", json={"member_id": "M1", "store_id": "S9"}, headers=service
    )
    assert response.status_code == 404
    assert response.json()["type"] == "store-not-found"


def test_an_unknown_member_is_404(ready: Chain) -> None:
    response = ready.client.get("/v1/members/NOBODY", headers=ready.pos())
    assert response.status_code == 404
    assert response.json()["type"] == "member-not-found"


def test_the_member_shows_points_expiring_soonest_first(ready: Chain) -> None:
    ready.enrol("M1")
    ready.sale("R1", occurred_at="2025-11-10T10:00:00+08:00")  # clears 2026-04-01
    ready.sale("R2", occurred_at="2025-02-10T10:00:00+08:00")  # rolls off 2026-02-10 10:00
    member = ready.member()
    assert member["points"] == 200
    expiring = member["expiring"]
    assert [e["points"] for e in expiring] == [100, 100]
    assert expiring[0]["expires_at"].startswith("2026-02-10T10:00:00")
    assert expiring[1]["expires_at"].startswith("2026-04-01T00:00:00")
    assert all(e["overdue"] for e in expiring)  # due, but only an expiry run takes them


def test_birthday_points_double_for_gold_members(ready: Chain) -> None:
    ready.enrol("M1", birthday="1990-03-10")
    gold_spend = [{"sku": "A", "category": "otc", "amount_fen": 1_000_000}]
    assert (
        ready.sale("R1", lines=gold_spend, occurred_at="2026-03-03T10:00:00+08:00").json()["tier"]
        == "gold"
    )
    birthday = ready.sale("R2", occurred_at="2026-03-10T10:00:00+08:00").json()
    assert birthday["points_earned"] == 200
    assert [f["kind"] for f in birthday["factors"]] == ["birthday"]
