"""The ledger's error hierarchy: operating errors that callers handle, each with a stable slug.

The HTTP layer maps each family to a status code; nothing here knows about HTTP. Programmer
errors are not in this hierarchy: they are `invariant()` failures and crash loudly.
"""

from __future__ import annotations


class LedgerError(Exception):
    """An operating error: the request cannot be carried out, and nothing was written."""

    slug = "ledger-error"
    title = "The ledger could not carry out the request"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class InvalidInput(LedgerError):
    """The request is well-formed but breaks a business rule about its own content."""

    slug = "invalid-input"
    title = "Invalid input"


class InvalidRuleSet(InvalidInput):
    slug = "invalid-rule-set"
    title = "The rule set document is invalid"


class InvalidIdNumber(InvalidInput):
    slug = "invalid-id-number"
    title = "Not a valid national ID number (GB 11643)"


class UnknownCatalogueItem(InvalidInput):
    slug = "unknown-catalogue-item"
    title = "No such item in the rule set's catalogue"


class UnknownBonus(InvalidInput):
    slug = "unknown-bonus"
    title = "No such bonus in the rule set, or a referral of no member or of oneself"


class NotFound(LedgerError):
    slug = "not-found"
    title = "Not found"


class MemberNotFound(NotFound):
    slug = "member-not-found"
    title = "Unknown member"


class StoreNotFound(NotFound):
    slug = "store-not-found"
    title = "Unknown store"


class SaleNotFound(NotFound):
    slug = "sale-not-found"
    title = "Unknown sale"


class RedemptionNotFound(NotFound):
    slug = "redemption-not-found"
    title = "Unknown redemption"


class ApiKeyNotFound(NotFound):
    slug = "api-key-not-found"
    title = "Unknown API key"


class PaymentNotFound(NotFound):
    slug = "payment-not-found"
    title = "Unknown stored-value payment"


class NotOffered(InvalidInput):
    """The rule set in force has no such redemption or conversion."""

    slug = "not-offered"
    title = "The rule set in force does not offer this"


class Conflict(LedgerError):
    """The request clashes with what the ledger already holds."""

    slug = "conflict"
    title = "Conflict"


class ApiKeyRevokedError(Conflict):
    slug = "api-key-revoked"
    title = "The API key is revoked"


class IdempotencyConflict(Conflict):
    slug = "idempotency-conflict"
    title = "This number was already used with a different request"


class MemberExists(Conflict):
    slug = "member-exists"
    title = "A member with this card number is already enrolled"


class IdNumberTaken(Conflict):
    slug = "id-number-taken"
    title = "This national ID number belongs to another member"


class ErasedMember(Conflict):
    slug = "member-erased"
    title = "This card's member was erased; the card cannot be enrolled again"


class NoRuleSetInForce(Conflict):
    slug = "no-rule-set-in-force"
    title = "No rule set is in force at the given time"


class InsufficientPoints(Conflict):
    slug = "insufficient-points"
    title = "The member does not have enough spendable points"


class InsufficientStoredValue(Conflict):
    slug = "insufficient-stored-value"
    title = "The member does not have enough stored value"


class RefundExceedsSale(Conflict):
    slug = "refund-exceeds-sale"
    title = "The refund is more than what was sold and not yet refunded"


class HoldLapsed(Conflict):
    slug = "hold-lapsed"
    title = "The hold lapsed before it was captured; its points went back"


class RedemptionVoidedAlready(Conflict):
    slug = "redemption-voided"
    title = "The redemption was voided"


class CardsAlreadyDispatched(Conflict):
    slug = "cards-already-dispatched"
    title = "Some of these cards were already dispatched"


class CardNotDispatched(Conflict):
    slug = "card-not-dispatched"
    title = "The rule set requires a dispatched card, and this one never was"


class PeriodNotEnded(Conflict):
    slug = "period-not-ended"
    title = "A settlement month can be closed only once it has ended"


class NotRedeemableHere(Conflict):
    slug = "not-redeemable-here"
    title = "This catalogue item is not redeemable at this store"


class BonusAlreadyGranted(Conflict):
    slug = "bonus-already-granted"
    title = "This bonus was already granted for this member"


class CardReplacedError(Conflict):
    """A write addressed to a card that was replaced (挂失补卡): use `current_member_id`."""

    slug = "card-replaced"
    title = "This card was replaced"

    def __init__(self, detail: str, *, current_member_id: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.current_member_id = current_member_id


class MemberMergedError(Conflict):
    """A request addressed to a duplicate merged into another card: `current_member_id`."""

    slug = "member-merged"
    title = "This member was merged into another"

    def __init__(self, detail: str, *, current_member_id: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.current_member_id = current_member_id


class Unavailable(LedgerError):
    """The store is unreachable or contended beyond the retry budget; try again later."""

    slug = "store-unavailable"
    title = "The ledger's store is unavailable"


class InvariantViolation(AssertionError):
    """A programmer error: state the ledger must never reach. Never caught as a business error."""


def invariant(condition: bool, message: str) -> None:
    """Assert that always runs (also under `python -O`)."""
    if not condition:
        raise InvariantViolation(message)
