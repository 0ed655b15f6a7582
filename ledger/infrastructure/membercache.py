"""The aggregate cache bounded in bytes as well as in aggregates (D68).

eventsourcing's `LRUCache` bounds the number of aggregates; a member's state grows by a lot and
a spend entry per sale, so a count bound alone let a worker grow without plateau (issue 18's
soak: ~1.2 KB per sale). `BudgetCache` keeps eventsourcing's LRU order and count bound and adds
a budget of estimated bytes: each aggregate is weighed when put and again after every read (the
repository fast-forwards a cached aggregate in place, so it grows without a new put), and the
least recently used aggregates are dropped until the total is within the budget. Dropping one
never changes an answer: the next read rebuilds it from its snapshot and events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache

# Bytes a decoded member's parts take in CPython (tracemalloc of msgspec-decoded states with
# 1,000 of each, /tmp/weigh.py of D68): the state itself with its link in the cache, one lot
# (three datetimes, a reference, a sale UUID), one spend entry, one hold, one tier mark.
STATE_BYTES = 1_000
LOT_BYTES = 480
SPEND_BYTES = 140
HOLD_BYTES = 210
MARK_BYTES = 210
CARD_BYTES = 150


def weigh(aggregate: Any) -> int:
    """Estimated bytes of a cached aggregate: a member by its parts; any other (a sale, a store,
    a rule book…) as a state of fixed size plus what its lists and dicts hold."""
    size = STATE_BYTES
    lots = getattr(aggregate, "lots", None)
    if isinstance(lots, list):
        size += LOT_BYTES * len(lots)
    for name, each in (("spend", SPEND_BYTES), ("tier_marks", MARK_BYTES)):
        found = getattr(aggregate, name, None)
        if isinstance(found, list):
            size += each * len(found)
    for name, each in (("holds", HOLD_BYTES), ("replaced_cards", CARD_BYTES)):
        found = getattr(aggregate, name, None)
        if isinstance(found, dict):
            size += each * len(found)
    return size


class BudgetCache(LRUCache[UUID, Any]):
    """An LRU cache of at most `maxsize` aggregates and about `max_bytes` estimated bytes."""

    def __init__(self, maxsize: int, max_bytes: int, weigher: Callable[[Any], int] = weigh) -> None:
        self.max_bytes = max_bytes
        self.weigher = weigher
        self.weights: dict[UUID, int] = {}
        self.total = 0
        self._budget = threading.RLock()  # around the LRU's own lock: weights follow its entries
        super().__init__(maxsize)

    def clear(self) -> None:
        super().clear()
        if hasattr(self, "weights"):
            self.cache.clear()
            self.weights.clear()
            self.total = 0

    def get(self, key: UUID, *, evict: bool = False) -> Any:
        if not evict:
            return super().get(key)
        with self._budget:
            found = super().get(key, evict=True)
            self.total -= self.weights.pop(key, 0)
            return found

    def put(self, key: UUID, value: Any) -> Any:
        with self._budget:
            evicted = super().put(key, value)
            evicted_key = evicted[0] if evicted else None
            if evicted_key is not None:
                self.total -= self.weights.pop(evicted_key, 0)
            self._weigh(key, value)
            return evicted

    def reweigh(self, key: UUID) -> None:
        """Weigh a cached aggregate again (after a read fast-forwarded it), then keep within
        the budget."""
        with self._budget:
            link = self.cache.get(key)
            if link is not None:
                self._weigh(key, link[self.RESULT])

    def _weigh(self, key: UUID, value: Any) -> None:
        if key in self.cache:
            weight = self.weigher(value)
            self.total += weight - self.weights.get(key, 0)
            self.weights[key] = weight
        self._shrink()

    def _shrink(self) -> None:
        """Drop the least recently used aggregates until the total is within the budget (the
        one just used too, if it alone is larger than the budget)."""
        while self.total > self.max_bytes and self.cache:
            with self.lock:
                oldest = self.root[self.NEXT]
                key = oldest[self.KEY]
                oldest[self.PREV][self.NEXT] = oldest[self.NEXT]
                oldest[self.NEXT][self.PREV] = oldest[self.PREV]
                del self.cache[key]
                self.full = len(self.cache) >= self.maxsize
            self.total -= self.weights.pop(key, 0)
