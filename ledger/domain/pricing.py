"""What a redemption request is worth and costs (SPEC 2.3), and the form it is stored in.

A cash offset is valued at the rule set's rate and capped by `max_offset_ratio` of the receipt,
whose amount is required; a voucher must be a step of the ladder; a gift or an exchange comes
from the rule set's catalogue, which fixes its points, its cash price and its cost to the chain
(the POS names only the SKU). The cost is what settlement pays the redeeming store back.

`RedemptionRecorded.request` keeps the request as it was posted, in a lenient stored form
(`StoredRedeem`): requests of contract version 1 (a gift stating `gift_sku` and `cost_fen`, an
exchange stating its `cash_price_fen` and `cost_fen`) decode as they always did and keep their
stated cost, which is on the event itself (`cost_fen`); only new requests come from the wire
types, which no longer accept a cost.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR

import msgspec

from ledger.domain.commands import CashOffset, Exchange, Gift, Redeem, Voucher
from ledger.domain.errors import InvalidInput, NotOffered, NotRedeemableHere, UnknownCatalogueItem
from ledger.policies.ruleset import RuleVersion


class _StoredRequest(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", omit_defaults=True
):
    """A redemption request as stored: every field a version of the contract ever sent."""

    store_id: str
    redemption_no: str
    member_id: str
    occurred_at: datetime
    points: int | None = None
    hold: bool = False
    cashier: str | None = None  # contract version 2


class StoredCashOffset(_StoredRequest, frozen=True, kw_only=True, tag="cash_offset"):
    receipt_amount_fen: int | None = None


class StoredVoucher(_StoredRequest, frozen=True, kw_only=True, tag="voucher"):
    pass


class StoredGift(_StoredRequest, frozen=True, kw_only=True, tag="gift"):
    sku: str | None = None
    gift_sku: str | None = None  # contract version 1
    cost_fen: int | None = None  # contract version 1: the cost the POS stated


class StoredExchange(_StoredRequest, frozen=True, kw_only=True, tag="exchange"):
    sku: str | None = None
    cash_price_fen: int | None = None  # contract version 1
    cost_fen: int | None = None  # contract version 1


StoredRedeem = StoredCashOffset | StoredVoucher | StoredGift | StoredExchange


def stored_form(cmd: Redeem) -> StoredRedeem:
    """The request as it was posted, in its stored form."""
    stored: StoredRedeem = msgspec.convert(msgspec.to_builtins(cmd), StoredRedeem)
    return stored


class Priced(msgspec.Struct, frozen=True, kw_only=True):
    """What a redemption spends, gives and costs."""

    points: int
    value_fen: int  # to the member
    cost_fen: int  # to the chain: what settlement pays back
    sku: str | None = None
    cash_price_fen: int | None = None  # an exchange's cash part, which the POS collects


def _cash_offset(cmd: CashOffset, version: RuleVersion) -> Priced:
    offer = version.rules.redemption
    if offer is None or offer.cash_offset_points_per_yuan is None:
        raise NotOffered("the rule set in force offers no cash offset", field="kind")
    if cmd.receipt_amount_fen is None:
        raise InvalidInput(
            "a cash offset needs the receipt's amount (receipt_amount_fen)",
            field="receipt_amount_fen",
        )
    value = cmd.points * 100 // offer.cash_offset_points_per_yuan
    if value == 0:
        raise InvalidInput(f"{cmd.points} points are worth less than 1 fen", field="points")
    if offer.max_offset_ratio is not None:
        cap = int((cmd.receipt_amount_fen * offer.max_offset_ratio).to_integral_value(ROUND_FLOOR))
        if value > cap:
            raise InvalidInput(
                f"an offset of {value} fen exceeds {offer.max_offset_ratio} of the "
                f"{cmd.receipt_amount_fen} fen receipt ({cap} fen)",
                field="points",
            )
    return Priced(points=cmd.points, value_fen=value, cost_fen=value)


def _voucher(cmd: Voucher, version: RuleVersion) -> Priced:
    offer = version.rules.redemption
    steps = {s.points: s.value_fen for s in (offer.voucher_ladder if offer else [])}
    if not steps:
        raise NotOffered("the rule set in force has no voucher ladder", field="kind")
    if cmd.points not in steps:
        raise InvalidInput(
            f"{cmd.points} points is not a step of the voucher ladder {sorted(steps)}",
            field="points",
        )
    return Priced(points=cmd.points, value_fen=steps[cmd.points], cost_fen=steps[cmd.points])


def _catalogue(cmd: Gift | Exchange, version: RuleVersion) -> Priced:
    kind = "gift" if isinstance(cmd, Gift) else "exchange"
    offer = version.rules.redemption
    item = offer.item(cmd.sku) if offer else None
    if item is None or item.kind != kind:
        raise UnknownCatalogueItem(
            f"no {kind} {cmd.sku!r} in the catalogue of rule set v{version.version}", field="sku"
        )
    if item.stores is not None and cmd.store_id not in item.stores:
        raise NotRedeemableHere(
            f"{cmd.sku!r} is redeemable only at {', '.join(item.stores)}", field="store_id"
        )
    if cmd.points is not None and cmd.points != item.points:
        raise InvalidInput(
            f"{cmd.sku!r} costs {item.points} points in the catalogue, not {cmd.points}",
            field="points",
        )
    return Priced(
        points=item.points,
        value_fen=item.cost_fen,
        cost_fen=item.cost_fen,
        sku=item.sku,
        cash_price_fen=item.cash_price_fen,
    )


def price(cmd: Redeem, version: RuleVersion) -> Priced:
    """The redemption's points, its value to the member and its cost to the chain, in fen."""
    if isinstance(cmd, CashOffset):
        return _cash_offset(cmd, version)
    if isinstance(cmd, Voucher):
        return _voucher(cmd, version)
    return _catalogue(cmd, version)
