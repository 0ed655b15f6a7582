"""Deterministic aggregate ids and keyed hashes.

An aggregate id derived from its business key (uuid5) makes a duplicate create collide with the
first one in the store: uniqueness and idempotency come from the event store's own constraint.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID, uuid5

NAMESPACE = UUID("5d0c1d8e-6a43-4c0e-9a57-3f1c2a1b7e10")

RULEBOOK_ID = uuid5(NAMESPACE, "/rulebook")
CARD_REGISTRY_ID = uuid5(NAMESPACE, "/cards")
# The identity index's own secret, kept wrapped by the master key among the member keys.
IDENTITY_INDEX_KEY_ID = uuid5(NAMESPACE, "/identity-index-secret")


def member_id(card: str) -> UUID:
    return uuid5(NAMESPACE, f"/members/{card}")


def sale_id(store_id: str, receipt_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/sales/{store_id}/{receipt_no}")


def redemption_id(store_id: str, redemption_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/redemptions/{store_id}/{redemption_no}")


def conversion_id(store_id: str, conversion_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/conversions/{store_id}/{conversion_no}")


def payment_id(store_id: str, payment_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/stored-value-payments/{store_id}/{payment_no}")


def adjustment_id(adjustment_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/adjustments/{adjustment_no}")


def settlement_period_id(period: str) -> UUID:
    return uuid5(NAMESPACE, f"/settlements/{period}")


def store_id(store: str) -> UUID:
    return uuid5(NAMESPACE, f"/stores/{store}")


def api_key_id(key_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"/api-keys/{key_hash}")


def identity_claim_id(id_hash: str) -> UUID:
    return uuid5(NAMESPACE, f"/identities/{id_hash}")


def hash_api_key(key: str) -> str:
    """API keys are long random tokens, so one SHA-256 is a sufficient one-way hash."""
    return hashlib.sha256(key.encode()).hexdigest()


def keyed_hash(secret: bytes, purpose: str, value: str) -> str:
    """HMAC-SHA256 of a personal value: comparable for uniqueness, useless without the secret."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def fingerprint(payload: bytes) -> str:
    """A request body's identity, to tell a retry from a different request with the same number."""
    return hashlib.sha256(payload).hexdigest()


def access_log_id(member: UUID) -> UUID:
    return uuid5(NAMESPACE, f"/access-logs/{member}")


def bonus_id(store_id: str, bonus_no: str) -> UUID:
    return uuid5(NAMESPACE, f"/bonuses/{store_id}/{bonus_no}")


def bonus_claim_id(code: str, card: str) -> UUID:
    """The once-only claim of a `registration` bonus (by the member's card) or of a `referral`
    (by the referred member's card)."""
    return uuid5(NAMESPACE, f"/bonus-claims/{code}/{card}")
