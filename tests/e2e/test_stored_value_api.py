"""Stored value over HTTP on both stores: conversions, payments and their refunds."""

from __future__ import annotations

import pytest

from tests.chain import Chain, now_iso
from tests.rulesets import PLAIN

pytestmark = pytest.mark.e2e


@pytest.fixture
def member(chain: Chain) -> Chain:
    """M1 with 1,000 points under the SPEC example (100 points per yuan of stored value)."""
    chain.standard()
    chain.enrol("M1")
    chain.sale("R1", lines=[{"sku": "A", "category": "otc", "amount_fen": 100_000}])
    return chain


def test_a_conversion_turns_points_into_stored_value(member: Chain) -> None:
    response = member.stored_value("conversions", conversion_no="C1", points=500)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["credited_fen"], body["stored_value_fen"]) == (500, 500)
    assert body["balance"] == {
        "points": 500,
        "pending_points": 0,
        "stored_value_fen": 500,
        "held_points": 0,
    }
    view = member.member()
    assert (view["points"], view["stored_value_fen"]) == (500, 500)


def test_a_conversion_retry_replays_and_beyond_the_balance_is_409(member: Chain) -> None:
    at = now_iso()
    first = member.stored_value("conversions", conversion_no="C1", points=300, occurred_at=at)
    again = member.stored_value("conversions", conversion_no="C1", points=300, occurred_at=at)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    too_much = member.stored_value("conversions", conversion_no="C2", points=701)
    assert too_much.status_code == 409 and too_much.json()["type"] == "insufficient-points"
    assert member.member()["stored_value_fen"] == 300


def test_a_conversion_without_a_configured_rate_is_422(chain: Chain) -> None:
    chain.standard(PLAIN)
    chain.enrol("M1")
    chain.sale("R1")
    response = chain.stored_value("conversions", conversion_no="C1", points=100)
    assert response.status_code == 422
    assert response.json()["type"] == "not-offered"
    assert chain.member()["points"] == 100


def test_paying_and_refunding_stored_value(member: Chain) -> None:
    member.stored_value("conversions", conversion_no="C1", points=1000)  # 1,000 fen
    paid = member.stored_value("payments", payment_no="P1", amount_fen=700)
    assert paid.status_code == 201 and paid.json()["stored_value_fen"] == 300
    short = member.stored_value("payments", payment_no="P2", amount_fen=301)
    assert short.status_code == 409 and short.json()["type"] == "insufficient-stored-value"
    back = member.stored_value("refunds", refund_no="B1", payment_no="P1", amount_fen=500)
    assert back.status_code == 201 and back.json()["stored_value_fen"] == 800
    beyond = member.stored_value("refunds", refund_no="B2", payment_no="P1", amount_fen=201)
    assert beyond.status_code == 409 and beyond.json()["type"] == "refund-exceeds-sale"
    unknown = member.stored_value("refunds", refund_no="B3", payment_no="NOPE", amount_fen=1)
    assert unknown.status_code == 404 and unknown.json()["type"] == "payment-not-found"
    assert member.member()["stored_value_fen"] == 800


def test_payment_retries_replay(member: Chain) -> None:
    member.stored_value("conversions", conversion_no="C1", points=1000)
    at = now_iso()
    first = member.stored_value("payments", payment_no="P1", amount_fen=100, occurred_at=at)
    again = member.stored_value("payments", payment_no="P1", amount_fen=100, occurred_at=at)
    assert (first.status_code, again.status_code) == (201, 200)
    other = member.stored_value("payments", payment_no="P1", amount_fen=200, occurred_at=at)
    assert other.status_code == 409
    assert member.member()["stored_value_fen"] == 900


@pytest.mark.parametrize("amount", [0, -1, "100"])
def test_bad_amounts_are_422(member: Chain, amount: object) -> None:
    response = member.stored_value("payments", payment_no="P1", amount_fen=amount)
    assert response.status_code == 422 and response.json()["field"] == "amount_fen"


def test_unknown_member_is_404(member: Chain) -> None:
    response = member.stored_value("conversions", member_id="NOPE", conversion_no="C1", points=1)
    assert response.status_code == 404
