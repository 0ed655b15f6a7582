"""What the OpenAPI document says about each operation: a summary, a description (with the role
it needs), and an example of its request body and of its answer.

The words are kept here, by operation id, rather than spread over the handlers, so that one
test (`tests/e2e/test_api_docs.py`) can hold every operation to them. The examples are drawn
from each body's own schema (so they never disagree with it), with the values a pharmacy chain
would send for the fields it names (`EXAMPLE_VALUES`).
"""

from __future__ import annotations

from typing import Any

PUBLIC = "No key needed."
OPERATIONS: dict[str, tuple[str, str]] = {
    "publishRules": (
        "Publish a rule set version",
        "Role admin. The rule set (SPEC 2) as JSON plus `effective_from`; versions are never "
        "changed, a new one takes over from its time. A bad document is 422 naming the field.",
    ),
    "getCurrentRules": ("Read the rule set in force", "Any role. The version in force now."),
    "putStore": (
        "Register or change a store",
        "Role admin. `kind` is `direct` or `franchise` (a franchise names its franchisee); "
        "201 when new, 200 when changed or unchanged.",
    ),
    "dispatchCards": (
        "Dispatch member cards to a store",
        "Role admin. A range `{from, to}` of one prefix and width, at most 100,000 cards; 409 "
        "if any of them was dispatched already.",
    ),
    "getCardStock": (
        "Read a store's card stock",
        "Roles pos (its own store), service, finance. Dispatched, on hand and activated cards, "
        "and those activated in `period`.",
    ),
    "listApiKeys": (
        "List API keys",
        "Role admin. Every key issued, revoked ones included; never the key itself.",
    ),
    "issueApiKey": (
        "Issue an API key",
        "Role admin. A key for a role (a `pos` key for one store); the key is shown once, only "
        "its hash is kept.",
    ),
    "revokeApiKey": (
        "Revoke an API key",
        "Role admin. Refused at once by this process and within a second by the others; "
        "revoking again changes nothing.",
    ),
    "rotateApiKey": (
        "Rotate an API key",
        "Role admin. A new key with the same role and store; the old one is revoked in the same "
        "transaction.",
    ),
    "enrolMember": (
        "Enrol a member",
        "Roles pos, service. A card of the store's stock, with optional personal data (kept "
        "encrypted with the member's own key). 201; 200 on an identical retry; 409 when the "
        "card or the ID number is taken.",
    ),
    "getMember": (
        "Read a member",
        "Roles pos, service. Tier, today's discount, points (spendable, pending, held), stored "
        "value, tier spend and points expiring; read from the member's own events, so always "
        "current. Never personal data.",
    ),
    "adjustPoints": (
        "Adjust a member's points",
        "Role service. A credit (a new lot expiring by the rules) or a debit with a reason and "
        "a ticket, once per `adjustment_no`; a debit beyond the balance is 409.",
    ),
    "grantBonus": (
        "Grant a bonus",
        "Roles pos, service. A bonus of the rule set (registration, referral, …), once per "
        "`(store_id, bonus_no)`; a registration once per member, a referral once per referred "
        "member.",
    ),
    "eraseMember": (
        "Erase a member's personal data",
        "Role admin. Destroys the member's key (crypto-shredding): their personal data reads "
        "as erased from then on, everywhere; points, history and settlements stay.",
    ),
    "exportMember": (
        "Export everything held on a member",
        "Role service. Personal data decrypted, the member now, every event and every earlier "
        "read of their personal data; this read is recorded first.",
    ),
    "getHistory": (
        "Read a member's history",
        "Role service. The audit trail, newest first, each entry with its rule version and an "
        "explanation; `next_cursor` pages back. May lag the log by the projection's lag.",
    ),
    "getBalanceAsOf": (
        "Read a member as of a time",
        "Role service. Points, lots and tier at business time `as_of` (default now), from the "
        "member's own events; with `recorded_as_of`, only what had been recorded by then.",
    ),
    "postSale": (
        "Post a sale",
        "Role pos (its own store). Values the receipt with the rules and the tier in force at "
        "`occurred_at`; 201 with the points earned and the new balance; 200 on an identical "
        "retry; 409 for the same receipt with another body. `member_id: null` is a sale "
        "without a member: it earns nothing.",
    ),
    "refundSale": (
        "Refund lines of a sale",
        "Role pos. Partial and repeated refunds by line; the points the lines earned are taken "
        "back (a debt if already spent); 409 beyond what was sold.",
    ),
    "redeem": (
        "Redeem points",
        "Role pos. A cash offset, a voucher, a gift or a catalogue exchange, taken from the "
        "oldest lots first; with `hold`, the points are held until captured or voided. 409 "
        "`insufficient-points` when the spendable points do not cover it.",
    ),
    "captureRedemption": (
        "Capture a held redemption",
        "Role pos. Turns a live hold into a redemption; 409 `hold-lapsed` after the rule set's "
        "`hold_minutes`.",
    ),
    "voidRedemption": (
        "Void a redemption",
        "Role pos. The points go back to the very lots they came from; voiding again replays.",
    ),
    "convertPoints": (
        "Convert points to stored value",
        "Role pos. At the rule set's rate; once per `conversion_no`.",
    ),
    "payWithStoredValue": (
        "Pay with stored value",
        "Role pos. Once per `payment_no`; 409 `insufficient-stored-value`.",
    ),
    "refundStoredValue": (
        "Refund a stored-value payment",
        "Role pos. Gives back part of a payment, never more than it took.",
    ),
    "runExpiry": (
        "Run the expiry run",
        "Role admin. Expires every lot due at `as_of` (the service runs it daily at 00:05 "
        "chain time in production; also `ledger expire`). Idempotent.",
    ),
    "reviewTiers": (
        "Run the tier review",
        "Role admin. The spend of the review window before `as_of` decides each member's tier "
        "(also `ledger review-tiers`). Idempotent.",
    ),
    "getSettlement": (
        "Read a month's franchise settlement",
        "Role finance. Per store: points issued, fee due, redemption and stored-value cost, "
        "and who pays whom (`difference_fen`); `?format=csv` for a spreadsheet.",
    ),
    "closeSettlement": (
        "Close a month's settlement",
        "Role finance. Closes an ended month (201; again 200; 409 `period-not-ended`); what "
        "arrives later for it is settled in the next open month. Keep the `digest`.",
    ),
    "getExpiring": (
        "List members with points expiring soon",
        "Role service. Soonest first, within `within_days` (who to remind).",
    ),
    "getLiability": (
        "Read the points liability",
        "Role finance. Outstanding points at `as_of`, each lot valued at the cost per point of "
        "the rule version it was earned under, and the stored value outstanding.",
    ),
    "getAnalytics": (
        "Read member analytics for a month",
        "Roles finance, service. Members, sales, RFM segments and anomalies for `YYYY-MM` "
        "(SPEC 2.9), for the chain or one store.",
    ),
    "health": ("Health (same as ready)", f"{PUBLIC} The same answer as `/health/ready`."),
    "healthLive": ("Is the process alive", f"{PUBLIC} 200 while the process runs; reads nothing."),
    "healthReady": (
        "Is the service ready",
        f"{PUBLIC} 200 when the store answers, no projection has failed and every view is "
        "within LEDGER_READY_MAX_LAG events of the log; 503 otherwise, saying why.",
    ),
    "findMembers": (
        "Find members by phone",
        "Roles pos, service. Any form of the number "
        "(+86, 0086, spaces); through a keyed hash; an erased member is never found.",
    ),
    "replaceCard": (
        "Replace a lost card",
        "Role service. The account moves to the new card "
        "(balance, lots, tier, history); the old card answers 409 `card-replaced`.",
    ),
    "mergeMember": (
        "Merge a duplicate member",
        "Role service. The duplicate's lots (each with "
        "its expiry), debt, stored value and tier spend move in; it answers 409.",
    ),
    "postSaleBatch": (
        "Post a batch of sales",
        "Role pos. Up to 500 sales of the key's store, "
        "each answered in order as if posted alone; never all-or-nothing.",
    ),
    "getStoreDay": (
        "Read a store's day",
        "Roles pos (its own store), finance. The day's sales, "
        "refunds, redemptions, conversions, stored value and receipts; `?format=csv`.",
    ),
}

# Values for fields by name, as a chain would send them (SPEC's own examples where it has one).
EXAMPLE_VALUES: dict[str, Any] = {
    "store_id": "S001",
    "member_id": "880000001234",
    "card": "880000001234",
    "referred_member_id": "880000005678",
    "receipt_no": "R20260401-0042",
    "redemption_no": "D20260401-0007",
    "refund_no": "F20260402-0003",
    "conversion_no": "C20260401-0001",
    "payment_no": "P20260401-0011",
    "adjustment_no": "A-2026-0019",
    "bonus_no": "B-2026-0102",
    "occurred_at": "2026-04-01T10:15:00+08:00",
    "as_of": "2026-04-01T00:00:00+08:00",
    "effective_from": "2026-01-01T00:00:00+08:00",
    "period": "2026-03",
    "sku": "6901234567890",
    "category": "otc",
    "amount_fen": 12_800,
    "receipt_amount_fen": 12_800,
    "insured_fen": 0,
    "points": 128,
    "points_earned": 128,
    "name": "张三",
    "phone": "13800138000",
    "birthday": "1980-05-17",
    "reason": "POS outage on 2026-03-30: receipt R20260330-0007 keyed by hand",
    "ticket": "OPS-1234",
    "role": "pos",
    "key": "pl_live_0123456789abcdef0123456789abcdef",
    "key_id": "k_01HV6Z5Q3K",
    "franchisee": "Hangzhou Kangjian Pharmacy Co.",
    "kind": "franchise",
    "status": "ok",
    "version": "0.1.0",
    "multiplier": "2",
    "discount": "0.95",
    "points_multiplier": "1.5",
    "max_offset_ratio": "0.5",
    "cost_per_point_fen": "0.5",
    "tier": "gold",
    "timezone": "Asia/Shanghai",
    "explanation": "12,800 fen at 100 fen a point, ×1 (normal tier): 128 points",
}
# Where a field's name is not enough: the rule set of the README's quick start
# (examples/rules.json; a test keeps the two equal), and a settlement (its answer is JSON or CSV).
RULES_EXAMPLE: dict[str, Any] = {
    "effective_from": "2026-01-01T00:00:00+08:00",
    "timezone": "Asia/Shanghai",
    "accrual": {
        "fen_per_point": 100,
        "points_per_unit": 1,
        "category_multipliers": {"tcm": "2", "supplement": "3"},
        "sku_promotions": [
            {
                "sku": "BRAND-X",
                "multiplier": "20",
                "starts_at": "2026-06-01T00:00:00+08:00",
                "ends_at": "2026-07-01T00:00:00+08:00",
            }
        ],
        "member_days": [
            {"weekday": 6, "mode": "multiplier", "multiplier": "2"},
            {"day_of_month": 8, "mode": "no_points"},
        ],
        "birthday": {"multiplier": "2", "tiers": ["gold", "vip"]},
        "campaigns": [
            {
                "name": "店庆",
                "starts_at": "2026-10-01T00:00:00+08:00",
                "ends_at": "2026-10-08T00:00:00+08:00",
                "multiplier": "3",
            }
        ],
        "stacking": "max",
    },
    "tiers": {
        "window_months": 24,
        "review": {"month": 12, "day": 31},
        "levels": [
            {"code": "normal", "min_spend_fen": 0, "discount": "0.97"},
            {"code": "silver", "min_spend_fen": 200000, "discount": "0.95"},
            {"code": "gold", "min_spend_fen": 1000000, "discount": "0.92"},
            {
                "code": "vip",
                "min_spend_fen": 3000000,
                "discount": "0.90",
                "points_multiplier": "1.5",
            },
        ],
    },
    "redemption": {
        "cash_offset_points_per_yuan": 100,
        "max_offset_ratio": "0.5",
        "voucher_ladder": [
            {"points": 100, "value_fen": 200},
            {"points": 500, "value_fen": 1500},
            {"points": 1000, "value_fen": 4000},
            {"points": 2000, "value_fen": 10000},
        ],
        "stored_value_points_per_yuan": 100,
    },
    "expiry": {"rolling_months": 12, "clearance_month": 3, "clearance_day": 31},
    "settlement": {"cost_per_point_fen": "3"},
}
SETTLEMENT_EXAMPLE: dict[str, Any] = {
    "period": "2026-03",
    "closed": False,
    "rows": [
        {
            "store_id": "S001",
            "kind": "franchise",
            "franchisee": "Hangzhou Kangjian Pharmacy Co.",
            "points_issued": 182_400,
            "fee_due_fen": 91_200,
            "redemption_cost_fen": 60_000,
            "stored_value_cost_fen": 5_000,
            "difference_fen": 26_200,
            "late": False,
        }
    ],
    "totals": {"points_issued": 182_400, "difference_fen": 26_200, "hq_bonus_points": 0},
}
REQUEST_EXAMPLES: dict[str, Any] = {"publishRules": RULES_EXAMPLE}
RESPONSE_EXAMPLES: dict[str, Any] = {"getSettlement": SETTLEMENT_EXAMPLE}
DEPTH_MAX = 6


def example(  # noqa: PLR0911 - one return per kind of schema reads best
    schema: dict[str, Any], components: dict[str, Any], name: str = "", depth: int = 0
) -> Any:
    """A value of `schema`: the field's example value if it fits, else one drawn from the
    schema (its own example, default, first enum value or constant, a bound)."""
    if "$ref" in schema:
        target = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return example(target, components, name, depth)
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            options = [o for o in schema[choice] if o.get("type") != "null"] or schema[choice]
            return example(options[0], components, name, depth)
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    known = EXAMPLE_VALUES.get(name)
    if known is not None and _fits(known, kind):
        return known
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    return _by_type(schema, components, kind, depth)


def _fits(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, list) else [kind]
    if isinstance(value, bool):
        return "boolean" in kinds
    if isinstance(value, int):
        return "integer" in kinds or "number" in kinds
    return "string" in kinds


def _by_type(  # noqa: PLR0911 - one return per JSON type reads best
    schema: dict[str, Any], components: dict[str, Any], kind: Any, depth: int
) -> Any:
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        if depth >= DEPTH_MAX:
            return {}
        return {
            field: example(sub, components, field, depth + 1)
            for field, sub in schema.get("properties", {}).items()
        }
    if kind == "array" and "prefixItems" in schema:  # a tuple (an array-like struct)
        return [example(item, components, "", depth + 1) for item in schema["prefixItems"]]
    if kind == "array":
        items = schema.get("items", {})
        return [] if depth >= DEPTH_MAX else [example(items, components, "", depth + 1)]
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1) if schema.get("maximum", 2) >= 1 else 0
    if kind == "boolean":
        return False
    if kind == "string":
        return {
            "date-time": "2026-04-01T10:15:00+08:00",
            "date": "2026-04-01",
            "uuid": "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b",
        }.get(schema.get("format", ""), "text")
    return None
