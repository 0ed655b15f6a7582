"""A small driver for the HTTP API in tests: a chain with rules, stores, keys and members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY
from tests.rulesets import SPEC_EXAMPLE

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

# The SPEC example without member days and campaigns: a sale "now" earns the same on any date.
STEADY: dict[str, Any] = SPEC_EXAMPLE | {
    "accrual": {
        k: v for k, v in SPEC_EXAMPLE["accrual"].items() if k not in ("member_days", "campaigns")
    }
}


def now_iso(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def sale_body(
    receipt_no: str,
    member_id: str | None = "M1",
    store_id: str = "S1",
    lines: list[dict[str, Any]] | None = None,
    occurred_at: str | None = None,
) -> dict[str, Any]:
    return {
        "store_id": store_id,
        "receipt_no": receipt_no,
        "member_id": member_id,
        "occurred_at": occurred_at or now_iso(),
        "lines": lines or [{"sku": "A", "category": "otc", "amount_fen": 10000, "quantity": 1}],
    }


class Chain:
    """Sets up a chain over HTTP: `Chain(client).standard()` publishes the SPEC example rules
    without its calendar multipliers (from 2020, so "now" earns the same any day), registers franchise store S1 and direct store S2, and issues their keys."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.keys: dict[str, dict[str, str]] = {}

    def publish(self, document: dict[str, Any]) -> httpx.Response:
        return self.client.put("/v1/rules", json=document, headers=ADMIN)

    def store(self, store_id: str, kind: str = "franchise") -> None:
        body = {"name": f"Store {store_id}", "kind": kind}
        if kind == "franchise":
            body["franchisee"] = f"F-{store_id}"
        assert self.client.put(f"/v1/stores/{store_id}", json=body, headers=ADMIN).status_code in (
            200,
            201,
        )

    def key(
        self, role: str, store_id: str | None = None, holder: str | None = None
    ) -> dict[str, str]:
        name = holder or (f"till {store_id}" if store_id else f"{role} desk")
        body: dict[str, Any] = {"role": role, "holder": name}
        body |= {"store_id": store_id} if store_id else {}
        response = self.client.post("/v1/admin/api-keys", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}

    def pos(self, store_id: str = "S1") -> dict[str, str]:
        if store_id not in self.keys:
            self.keys[store_id] = self.key("pos", store_id)
        return self.keys[store_id]

    def standard(self, document: dict[str, Any] | None = None) -> Chain:
        rules = dict(document or STEADY)
        rules["effective_from"] = "2020-01-01T00:00:00+08:00"
        assert self.publish(rules).status_code == 201
        self.store("S1", "franchise")
        self.store("S2", "direct")
        return self

    def enrol(self, member_id: str = "M1", store_id: str = "S1", **fields: Any) -> httpx.Response:
        body = {"member_id": member_id, "store_id": store_id} | fields
        return self.client.post("/v1/members", json=body, headers=self.pos(store_id))

    def sale(self, receipt_no: str, **fields: Any) -> httpx.Response:
        body = sale_body(receipt_no, **fields)
        return self.client.post("/v1/sales", json=body, headers=self.pos(body["store_id"]))

    def member(self, member_id: str = "M1") -> dict[str, Any]:
        response = self.client.get(f"/v1/members/{member_id}", headers=self.pos())
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def finance(self) -> dict[str, str]:
        if "finance" not in self.keys:
            self.keys["finance"] = self.key("finance")
        return self.keys["finance"]

    def service(self) -> dict[str, str]:
        if "service" not in self.keys:
            self.keys["service"] = self.key("service")
        return self.keys["service"]

    def refund(
        self, receipt_no: str, refund_no: str, lines: list[tuple[int, int]], store_id: str = "S1"
    ) -> httpx.Response:
        body = {
            "refund_no": refund_no,
            "occurred_at": now_iso(),
            "lines": [{"line_no": n, "amount_fen": fen} for n, fen in lines],
        }
        return self.client.post(
            f"/v1/sales/{store_id}/{receipt_no}/refunds", json=body, headers=self.pos(store_id)
        )

    def redeem(
        self, redemption_no: str, kind: str, points: int, store_id: str = "S1", **fields: Any
    ) -> httpx.Response:
        """A redemption; a cash offset states a receipt twice its points' value in fen unless
        `receipt_amount_fen` is given (the SPEC example allows offsetting half a receipt)."""
        if kind == "cash_offset":
            fields.setdefault("receipt_amount_fen", 2 * points)
        body = {
            "store_id": store_id,
            "redemption_no": redemption_no,
            "member_id": "M1",
            "occurred_at": now_iso(),
            "kind": kind,
            "points": points,
        } | fields
        return self.client.post("/v1/redemptions", json=body, headers=self.pos(store_id))

    def redemption_action(
        self, redemption_no: str, action: str, store_id: str = "S1"
    ) -> httpx.Response:
        return self.client.post(
            f"/v1/redemptions/{store_id}/{redemption_no}/{action}", headers=self.pos(store_id)
        )

    def stored_value(
        self, action: str, member_id: str = "M1", store_id: str = "S1", **fields: Any
    ) -> httpx.Response:
        body = {"store_id": store_id, "occurred_at": now_iso()} | fields
        return self.client.post(
            f"/v1/members/{member_id}/stored-value/{action}", json=body, headers=self.pos(store_id)
        )

    def adjust(
        self, adjustment_no: str, points: int, member_id: str = "M1", **fields: Any
    ) -> httpx.Response:
        body = {
            "adjustment_no": adjustment_no,
            "points": points,
            "reason": "goodwill",
            "ticket": "T-1",
        }
        return self.client.post(
            f"/v1/members/{member_id}/adjustments", json=body | fields, headers=self.service()
        )
