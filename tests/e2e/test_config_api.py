"""Rules, stores, API keys, health, metrics and schema over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chain import ADMIN, Chain
from tests.rulesets import SPEC_EXAMPLE, accrual, doc

pytestmark = pytest.mark.e2e


def test_publishing_rules_numbers_versions_and_serves_the_one_in_force(chain: Chain) -> None:
    assert chain.client.get("/v1/rules/current", headers=ADMIN).status_code == 404
    first = chain.publish(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00"))
    assert first.status_code == 201
    assert first.json()["version"] == 1
    future = chain.publish(doc(effective_from="2099-01-01T00:00:00+08:00"))
    assert future.json()["version"] == 2
    current = chain.client.get("/v1/rules/current", headers=ADMIN).json()
    assert current["version"] == 1
    assert current["rules"]["accrual"]["category_multipliers"] == {"tcm": "2", "supplement": "3"}


def test_a_rule_set_pins_the_chain_time_zone_when_it_names_none(chain: Chain) -> None:
    document = doc()
    del document["timezone"]
    assert chain.publish(document).status_code == 201
    current = chain.client.get("/v1/rules/current", headers=ADMIN).json()
    assert current["rules"]["timezone"] == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (
            doc(SPEC_EXAMPLE, accrual=accrual(birthday={"multiplier": "2", "tiers": ["diamond"]})),
            "accrual.birthday.tiers[0]",
        ),
        (doc(accrual={"fen_per_point": -1, "points_per_unit": 1}), "accrual.fen_per_point"),
        (
            doc(accrual=accrual(category_multipliers={"tcm": "-1"})),
            "accrual.category_multipliers.tcm",
        ),
        (doc(effective_from="2026-01-01"), "effective_from"),
        (doc(accrual=accrual(surprise=True)), "accrual"),
    ],
)
def test_a_bad_rule_set_is_422_naming_the_field_and_publishes_nothing(
    chain: Chain, document: dict[str, Any], field: str
) -> None:
    response = chain.publish(document)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in (response.json().get("field") or "") + response.json()["detail"]
    assert chain.client.get("/v1/rules/current", headers=ADMIN).status_code == 404


def test_only_admin_publishes_rules_but_any_role_reads_them(chain: Chain) -> None:
    chain.standard()
    document = doc(effective_from="2021-01-01T00:00:00+08:00")
    for role, store in (("pos", "S1"), ("service", None), ("finance", None)):
        key = chain.key(role, store)
        assert chain.client.put("/v1/rules", json=document, headers=key).status_code == 403
        assert chain.client.get("/v1/rules/current", headers=key).status_code == 200
    assert chain.client.put("/v1/rules", json=document).status_code == 401


def test_stores_are_created_then_changed_then_replayed(chain: Chain) -> None:
    body = {"name": "Riverside", "kind": "franchise", "franchisee": "Li"}
    created = chain.client.put("/v1/stores/S7", json=body, headers=ADMIN)
    assert created.status_code == 201
    assert created.json() == {"store_id": "S7"} | body
    assert chain.client.put("/v1/stores/S7", json=body, headers=ADMIN).status_code == 200
    changed = chain.client.put("/v1/stores/S7", json=body | {"kind": "direct"}, headers=ADMIN)
    assert changed.status_code == 200
    assert changed.json()["kind"] == "direct"


def test_a_bad_store_is_422(chain: Chain) -> None:
    response = chain.client.put("/v1/stores/S7", json={"name": "X", "kind": "mall"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.json()["field"] == "kind"
    bad_id = chain.client.put(
        "/v1/stores/bad id!", json={"name": "X", "kind": "direct"}, headers=ADMIN
    )
    assert bad_id.status_code in (404, 422)


def test_api_keys_are_shown_once_and_bound_to_a_known_store(chain: Chain) -> None:
    chain.standard()
    issued = chain.client.post(
        "/v1/admin/api-keys",
        json={"role": "pos", "store_id": "S1", "holder": "till 1"},
        headers=ADMIN,
    )
    assert issued.status_code == 201
    key = issued.json()["key"]
    assert issued.json()["role"] == "pos"
    assert (
        chain.client.get(
            "/v1/rules/current", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 200
    )
    unbound = chain.client.post(
        "/v1/admin/api-keys", json={"role": "pos", "holder": "till"}, headers=ADMIN
    )
    assert unbound.status_code == 422
    assert unbound.json()["field"] == "store_id"
    unknown = chain.client.post(
        "/v1/admin/api-keys",
        json={"role": "pos", "store_id": "S99", "holder": "till"},
        headers=ADMIN,
    )
    assert unknown.status_code == 404
    bad_role = chain.client.post(
        "/v1/admin/api-keys", json={"role": "root", "holder": "x"}, headers=ADMIN
    )
    assert bad_role.status_code == 422
    service = chain.key("service")
    assert (
        chain.client.post(
            "/v1/admin/api-keys", json={"role": "admin", "holder": "x"}, headers=service
        ).status_code
        == 403
    )


def test_health_metrics_and_schema_need_no_key(chain: Chain) -> None:
    chain.standard()
    chain.enrol("M1")
    assert chain.sale("R1").status_code == 201
    health = chain.client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["store"], body["reasons"]) == ("ok", "up", [])
    assert body["version"] and {v["projection"] for v in body["projections"]} == {
        "history",
        "settlement",
        "members",
        "analytics",
        "daily",
    }
    assert chain.client.get("/health/ready").json()["status"] == "ok"
    assert chain.client.get("/health/live").json()["status"] == "live"
    metrics = chain.client.get("/metrics")
    assert metrics.status_code == 200
    assert "ledger_events_appended_total" in metrics.text
    assert 'path="/v1/sales"' in metrics.text
    schema = chain.client.get("/schema")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/v1/sales", "/v1/members", "/v1/members/{member_id}", "/v1/rules"} <= set(paths)
    assert schema.json()["paths"]["/v1/sales"]["post"]["operationId"] == "postSale"


def test_every_response_carries_a_request_id(chain: Chain) -> None:
    response = chain.client.get("/health", headers={"X-Request-ID": "till-42-abc"})
    assert response.headers["x-request-id"] == "till-42-abc"
    problem = chain.client.get("/v1/members/M1")
    assert problem.status_code == 401
    assert problem.json()["request_id"] == problem.headers["x-request-id"]


def test_an_unknown_route_is_a_404_problem(chain: Chain) -> None:
    response = chain.client.get("/v1/nowhere", headers=ADMIN)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
