"""Access: the stores of the chain, the API keys that act for them, and the cards they hand out."""

from __future__ import annotations

import contextlib
import time
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from ledger.domain import apikey, cards, ids, store
from ledger.domain.apikey import IssuedKey, Principal
from ledger.domain.commands import IssueApiKey, RegisterStore
from ledger.domain.errors import (
    ApiKeyNotFound,
    ApiKeyRevokedError,
    InvalidInput,
    StoreNotFound,
    invariant,
)
from ledger.domain.store import StoreView
from ledger.services.core import LedgerCore

KEYS_TTL = 1.0  # seconds a process may go on accepting a key it read (revocation takes ≤ 1 s)
PRINCIPALS_KEPT = 10_000


class AccessService:
    """Stores, API keys and card dispatch. Stores are never removed, so once seen, always known;
    a key is re-read from the store at most every KEYS_TTL seconds (every request needs it)."""

    def __init__(self, core: LedgerCore) -> None:
        self.core = core
        self._known_stores: set[str] = set()
        self._principals: dict[str, tuple[float, Principal]] = {}

    # -- stores -------------------------------------------------------------------------------

    def configure_store(
        self, store_id: str, cmd: RegisterStore, operator: str
    ) -> tuple[StoreView, bool]:
        """Register or change a store; returns it and whether it is new."""

        def attempt() -> tuple[StoreView, bool]:
            current = self.core.get(ids.store_id(store_id), store.evolve)
            event = store.configure(current, store_id, cmd, operator)
            if event is None:
                invariant(current is not None, "no change is only possible for a known store")
                return store.view(current), False  # type: ignore[arg-type]
            self.core.save(event)
            return store.view(store.evolve(current, event)), current is None

        return self.core.retrying(attempt)

    def get_store(self, store_id: str) -> StoreView | None:
        current = self.core.get(ids.store_id(store_id), store.evolve)
        return store.view(current) if current else None

    def require_store(self, store_id: str) -> None:
        """A registered store (StoreNotFound otherwise)."""
        if store_id in self._known_stores:
            return
        if self.get_store(store_id) is None:
            raise StoreNotFound(f"store {store_id!r} is not registered", field="store_id")
        self._known_stores.add(store_id)

    # -- API keys -----------------------------------------------------------------------------

    def issue_key(self, cmd: IssueApiKey, operator: str) -> IssuedKey:
        if cmd.role == "pos" and cmd.store_id is None:
            raise InvalidInput("a pos key must be bound to a store", field="store_id")
        if cmd.role != "pos" and cmd.store_id is not None:
            raise InvalidInput("only pos keys are bound to a store", field="store_id")
        if cmd.holder is None:
            raise InvalidInput("a new key names its holder (a till, a person)", field="holder")
        if cmd.store_id is not None:
            self.require_store(cmd.store_id)
        key = apikey.new_key()
        event = apikey.issue(key, cmd.role, cmd.store_id, operator, holder=cmd.holder)
        self.core.retrying(lambda: self.core.save(event))
        return IssuedKey(
            key=key,
            key_id=str(event.originator_id),
            role=cmd.role,
            store_id=cmd.store_id,
            holder=cmd.holder,
        )

    def _key(self, key_id: str) -> apikey.ApiKey:
        try:
            state = self.core.get(UUID(key_id), apikey.evolve)
        except (ValueError, TypeError):  # not an id, or the id of an aggregate that is no key
            state = None
        if not isinstance(state, apikey.ApiKey):
            raise ApiKeyNotFound(f"no API key {key_id!r}", field="key_id")
        return state

    def revoke_key(self, key_id: str, reason: str, operator: str) -> apikey.KeyInfo:
        """Revoke a key (again: a no-op). This process refuses it at once, others within
        KEYS_TTL seconds."""

        def attempt() -> apikey.KeyInfo:
            state = self._key(key_id)
            event = apikey.revoke(state, reason, operator)
            if event is not None:
                self.core.save(event)
                state = apikey.evolve(state, event)
            return apikey.info(state)

        info = self.core.retrying(attempt)
        self._principals.clear()
        return info

    def rotate_key(self, key_id: str, operator: str) -> IssuedKey:
        """A new key with the old one's role and store; the old one is revoked in the same
        transaction."""

        def attempt() -> IssuedKey:
            state = self._key(key_id)
            key = apikey.new_key()
            issued = apikey.issue(
                key, state.role, state.store_id, operator, replaces=key_id, holder=state.holder
            )
            revoked = apikey.revoke(
                state, "rotated", operator, replaced_by=str(issued.originator_id)
            )
            if revoked is None:
                raise ApiKeyRevokedError(f"API key {key_id!r} is revoked", field="key_id")
            self.core.save(issued, revoked)
            return IssuedKey(
                key=key,
                key_id=str(issued.originator_id),
                role=state.role,
                store_id=state.store_id,
                replaces=key_id,
                holder=state.holder,
            )

        issued = self.core.retrying(attempt)
        self._principals.clear()
        return issued

    def keys(self) -> list[apikey.KeyInfo]:
        """Every key ever issued, oldest first (there are a few per store)."""
        issued = self.core.originators(apikey.ApiKeyIssued)
        found = (self.core.get(key_id, apikey.evolve) for key_id in issued)
        return [apikey.info(state) for state in found if state is not None]

    def ensure_admin_key(self, key: str) -> None:
        """Register `LEDGER_ADMIN_KEY` as an admin key (once; later starts find it there)."""
        if self.authenticate(key) is None:
            with contextlib.suppress(IntegrityError):  # registered already (perhaps revoked)
                self.core.save(
                    apikey.issue(key, "admin", None, "LEDGER_ADMIN_KEY", holder="LEDGER_ADMIN_KEY")
                )

    def kept(self, key: str) -> Principal | None:
        """The key's principal if this process read it less than KEYS_TTL seconds ago, without
        reading the store (None: ask `authenticate`), so that a caller on an event loop answers
        most requests without a thread."""
        kept = self._principals.get(ids.hash_api_key(key))
        if kept is not None and time.monotonic() - kept[0] < KEYS_TTL:
            return kept[1]
        return None

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal; a known key is re-read at most every KEYS_TTL seconds, an
        unknown one every time."""
        key_hash = ids.hash_api_key(key)
        kept = self._principals.get(key_hash)
        if kept is not None and time.monotonic() - kept[0] < KEYS_TTL:
            return kept[1]
        state = self.core.get(ids.api_key_id(key_hash), apikey.evolve)
        principal = apikey.principal(state) if state else None
        if principal is not None:
            if len(self._principals) >= PRINCIPALS_KEPT:
                self._principals.clear()
            self._principals[key_hash] = (time.monotonic(), principal)
        return principal

    # -- cards --------------------------------------------------------------------------------

    def dispatch_cards(
        self, store_id: str, first: str, last: str, operator: str
    ) -> tuple[cards.DispatchReceipt, bool]:
        """Send the cards `first..last` to a store (a replay of the same range is a no-op)."""
        self.require_store(store_id)

        def attempt() -> tuple[cards.DispatchReceipt, bool]:
            registry = self.core.get(ids.CARD_REGISTRY_ID, cards.evolve)
            event, receipt = cards.dispatch(registry, store_id, first, last, operator)
            if event is not None:
                self.core.save(event)
            return receipt, event is not None

        return self.core.retrying(attempt)

    def dispatched_to(self, card: str) -> str | None:
        """The store a card was dispatched to, if any."""
        return cards.dispatched_to(self.core.get(ids.CARD_REGISTRY_ID, cards.evolve), card)
