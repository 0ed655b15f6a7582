"""Commands: what callers ask the ledger to do, as strict msgspec Structs (also the wire format).

Every limit a POS could exceed is stated here (lines per receipt, lengths, amounts), so a bad
request is refused field by field before anything is read or written.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ledger.domain.bounds import FREE_TEXT_PATTERN, NO_CONTROL_PATTERN
from ledger.domain.errors import InvalidInput

AwareDatetime = Annotated[
    datetime, Meta(tz=True, description="ISO 8601 with offset, e.g. 2026-05-01T10:00:00+08:00")
]
Identifier = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
]
CardNumber = Annotated[
    str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
]
AmountFen = Annotated[int, Meta(ge=0, le=10_000_000_000, description="money in fen (分)")]
# Free text (a reason): tab and newline allowed, other control characters never (SPEC 3.1).
Text = Annotated[str, Meta(min_length=1, max_length=200, pattern=FREE_TEXT_PATTERN)]
Name = Annotated[str, Meta(min_length=1, max_length=100, pattern=NO_CONTROL_PATTERN)]
Ticket = Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_CONTROL_PATTERN)]
# Who rang a POS write up (SPEC 3: `cashier`, at most 32 characters); the history names them.
Cashier = Annotated[str, Meta(min_length=1, max_length=32, pattern=NO_CONTROL_PATTERN)]

LINES_MAX = 200
Role = Literal["pos", "service", "finance", "admin"]


def checked(value: str, kind: object, field: str) -> str:
    """Validate a path identifier (a store id, a card number) against its wire type."""
    try:
        result: str = msgspec.convert(value, type=kind)
    except msgspec.ValidationError as e:
        raise InvalidInput(f"{field}: {e}", field=field) from e
    return result


class Command(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every command: immutable, and an unknown field is an error, not silently lost."""


class SaleLine(Command, frozen=True):
    sku: Annotated[str, Meta(min_length=1, max_length=64)]
    amount_fen: AmountFen
    category: Annotated[str, Meta(max_length=64)] = ""
    quantity: Annotated[int, Meta(ge=1, le=100_000)] = 1
    no_points: bool = False
    no_cumulative_spend: bool = False
    insured_fen: AmountFen = 0  # paid by medical insurance (医保): 0 ≤ insured_fen ≤ amount_fen


class PostSale(Command, frozen=True):
    """A POS sale (`POST /v1/sales`), identified by (store_id, receipt_no); `member_id: null`
    (stated, never left out) is a sale without a member, which earns nothing."""

    store_id: Identifier
    receipt_no: Identifier
    member_id: CardNumber | None
    occurred_at: AwareDatetime
    lines: Annotated[list[SaleLine], Meta(min_length=1, max_length=LINES_MAX)]
    cashier: Cashier | None = None


Phone = Annotated[str, Meta(pattern=r"^\+?[0-9][0-9 -]{4,19}$")]


BATCH_SALES_MAX = 500


class SaleBatch(Command, frozen=True):
    """`POST /v1/sales/batch`: an upload of sales (an offline store's day), each decoded and
    answered as if posted alone, so an item is kept as it came until then."""

    sales: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=BATCH_SALES_MAX)]


class SaleBatchEnvelope(Command, frozen=True):
    """What the edge checks of a batch before its items: the envelope, each item left raw."""

    sales: Annotated[list[msgspec.Raw], Meta(min_length=1, max_length=BATCH_SALES_MAX)]


class EnrolMember(Command, frozen=True):
    """Enrolment of a card at a store (`POST /v1/members`)."""

    member_id: CardNumber
    store_id: Identifier
    name: Name | None = None
    phone: Phone | None = None
    # checked by the ledger (GB 11643), so that any bad number is 422 `invalid-id-number`
    id_number: Annotated[str, Meta(min_length=1, max_length=18, description="身份证号")] | None = (
        None
    )
    birthday: date | None = None
    occurred_at: AwareDatetime | None = None


class RegisterStore(Command, frozen=True):
    """`PUT /v1/stores/{store_id}` body."""

    name: Name
    kind: Literal["direct", "franchise"]
    franchisee: Name | None = None


class IssueApiKey(Command, frozen=True):
    """`POST /v1/admin/api-keys` body: a `pos` key is bound to one store."""

    role: Role
    store_id: Identifier | None = None
    holder: Name | None = None  # required of new keys (the API says so); older keys have none


Points = Annotated[int, Meta(gt=0, le=100_000_000, description="points, a positive integer")]
PositiveFen = Annotated[int, Meta(gt=0, le=10_000_000_000, description="money in fen (分), > 0")]


class RefundLine(Command, frozen=True):
    line_no: Annotated[int, Meta(ge=1, le=LINES_MAX, description="1 = the sale's first line")]
    amount_fen: PositiveFen


class RefundSale(Command, frozen=True):
    """`POST /v1/sales/{store_id}/{receipt_no}/refunds`: part or all of some lines, again and again."""

    refund_no: Identifier
    occurred_at: AwareDatetime
    lines: Annotated[list[RefundLine], Meta(min_length=1, max_length=LINES_MAX)]
    cashier: Cashier | None = None


class RedeemBase(Command, frozen=True, kw_only=True, tag_field="kind"):
    """`POST /v1/redemptions`, identified by (store_id, redemption_no); `hold` reserves only."""

    store_id: Identifier
    redemption_no: Identifier
    member_id: CardNumber
    occurred_at: AwareDatetime
    hold: bool = False
    cashier: Cashier | None = None


class CashOffset(RedeemBase, frozen=True, kw_only=True, tag="cash_offset"):
    """积分抵现: points pay part of a receipt, whose amount is required (SPEC 2.3)."""

    points: Points
    receipt_amount_fen: AmountFen | None = None  # None: refused (422), as the SPEC requires it


class Voucher(RedeemBase, frozen=True, kw_only=True, tag="voucher"):
    """A voucher from the ladder: the points must equal one step."""

    points: Points


CatalogueSku = Annotated[str, Meta(min_length=1, max_length=64)]


class Gift(RedeemBase, frozen=True, kw_only=True, tag="gift"):
    """兑换赠品: an item of the rule set's catalogue, named by its SKU (which fixes its points
    and cost); `points`, if stated, must be the catalogue's."""

    sku: CatalogueSku
    points: Points | None = None


class Exchange(RedeemBase, frozen=True, kw_only=True, tag="exchange"):
    """积分换购: points plus the catalogue's cash price for an item named by its SKU."""

    sku: CatalogueSku
    points: Points | None = None


Redeem = CashOffset | Voucher | Gift | Exchange


class GrantBonus(Command, frozen=True):
    """`POST /v1/members/{member_id}/bonuses` (SPEC 2.6): a bonus of the rule set, identified by
    (store_id, bonus_no); a `referral` names the member referred."""

    bonus_no: Identifier
    code: Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
    store_id: Identifier
    occurred_at: AwareDatetime
    referred_member_id: CardNumber | None = None


class ConvertPoints(Command, frozen=True):
    """`POST /v1/members/{member_id}/stored-value/conversions` (积分转储值)."""

    store_id: Identifier
    conversion_no: Identifier
    occurred_at: AwareDatetime
    points: Points
    cashier: Cashier | None = None


class PayWithStoredValue(Command, frozen=True):
    """`POST /v1/members/{member_id}/stored-value/payments`: spend stored value at the POS."""

    store_id: Identifier
    payment_no: Identifier
    occurred_at: AwareDatetime
    amount_fen: PositiveFen
    cashier: Cashier | None = None


class RefundStoredValue(Command, frozen=True):
    """`POST /v1/members/{member_id}/stored-value/refunds`: give back part of a payment."""

    store_id: Identifier
    refund_no: Identifier
    payment_no: Identifier
    occurred_at: AwareDatetime
    amount_fen: PositiveFen
    cashier: Cashier | None = None


class AdjustPoints(Command, frozen=True):
    """`POST /v1/members/{member_id}/adjustments` (customer service): a credit or a debit."""

    adjustment_no: Identifier
    points: Annotated[int, Meta(ge=-100_000_000, le=100_000_000, description="non-zero, signed")]
    reason: Text
    ticket: Ticket
    occurred_at: AwareDatetime | None = None


class RunAsOf(Command, frozen=True):
    """`POST /v1/admin/expiry-runs` and `/v1/admin/tier-reviews`."""

    as_of: AwareDatetime


class DispatchCards(Command, frozen=True):
    """`POST /v1/stores/{store_id}/cards`: the range `from..to` (one prefix, digits of one width)."""

    first: CardNumber = msgspec.field(name="from")
    last: CardNumber = msgspec.field(name="to")
