"""`ledger demo`: a realistic, deterministic pharmacy chain, posted through the ledger application.

One `random.Random(seed)` draws everything, and every number (store, card, receipt, redemption,
payment, conversion, adjustment) comes from a counter, so two runs of one plan into empty stores
write the same events; only the recorded timestamps differ. Business times lie in the past; the
`now` handed to the ledger is the real now, except for a void, which the ledger stamps with the
`now` it is given: a void gets its business time (a few minutes after its redemption), so it
falls inside the period. `ledger demo` by default ends the period yesterday (chain time).

The chain: two rule-set versions (the second from mid-period, with changed multipliers and
settlement cost); ~70% franchise stores; a quarter of the members migrated from a legacy POS
(enrolled the year before, with an opening balance that expires during the period), the rest
enrolled over the period at their home store. Visits follow the season (flu winter, summer
lull), the weekday (Saturday is member day) and campaigns; a Pareto mix of light and heavy
members and a few specialty-drug (DTP) patients reach every tier. Around the sales: refunds,
redemptions of every kind (some voided, some at another store), conversions to stored value and
payments with it, customer-service adjustments, an expiry run at 00:05 on the 1st of every
month, and at the end a last expiry run and a tier review. Customers without a card buy too
(`member_id: null`, smaller baskets, a few refunded), drawn from a random stream of their own so
that the members' events are the same with or without them.

The package: `plan` (the plan, the summary and the chain's constants), `rules` (the rule-set
documents), `agenda` (the generator's state and clock), `shopping` (members' purchases and what
follows them), `chain` (the simulation and `generate`) and `command` (the `ledger demo`
parser, its default period, and the keys and sample cards it prints).
"""

from __future__ import annotations

from replay_tools.demo.chain import generate
from replay_tools.demo.command import add_commands, default_start, handout
from replay_tools.demo.plan import (
    ADMIN,
    BIRTHDAY_SHARE,
    CARD_DIGITS,
    CATEGORIES,
    CATEGORY_WEIGHTS,
    DIRECT_SHARE,
    DISTRICTS,
    DTP_SHARE,
    EXCHANGES,
    FLU_MONTHS,
    GIFTS,
    HOUR_WEIGHTS,
    LINE_COUNT_WEIGHTS,
    LINE_COUNTS,
    MIGRATED_SHARE,
    MONTH_FACTOR,
    NON_MEMBER_LINE_WEIGHTS,
    NON_MEMBER_REFUND_RATE,
    NON_MEMBER_VISITS,
    OPENING_HOURS,
    OTHER_STORE_RATE,
    REFUND_RATE,
    REFUSALS,
    SCHEDULER,
    SERVICE,
    TICKET_RATE,
    VOID_AFTER,
    VOID_RATE,
    VOUCHER_STEPS,
    WEEKDAY_FACTOR,
    DemoPlan,
    DemoSummary,
    PlanRefused,
    check_plan,
)
from replay_tools.demo.rules import rule_documents

__all__ = [
    "ADMIN",
    "BIRTHDAY_SHARE",
    "CARD_DIGITS",
    "CATEGORIES",
    "CATEGORY_WEIGHTS",
    "DIRECT_SHARE",
    "DISTRICTS",
    "DTP_SHARE",
    "EXCHANGES",
    "FLU_MONTHS",
    "GIFTS",
    "HOUR_WEIGHTS",
    "LINE_COUNTS",
    "LINE_COUNT_WEIGHTS",
    "MIGRATED_SHARE",
    "MONTH_FACTOR",
    "NON_MEMBER_LINE_WEIGHTS",
    "NON_MEMBER_REFUND_RATE",
    "NON_MEMBER_VISITS",
    "OPENING_HOURS",
    "OTHER_STORE_RATE",
    "REFUND_RATE",
    "REFUSALS",
    "SCHEDULER",
    "SERVICE",
    "TICKET_RATE",
    "VOID_AFTER",
    "VOID_RATE",
    "VOUCHER_STEPS",
    "WEEKDAY_FACTOR",
    "DemoPlan",
    "DemoSummary",
    "PlanRefused",
    "add_commands",
    "check_plan",
    "default_start",
    "generate",
    "handout",
    "rule_documents",
]
