"""The aggregate cache is bounded in estimated bytes as well as in aggregates (D68): after many
sales over many members it holds at most the configured budget, and an evicted member reads
back the same (eviction never changes an answer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import msgspec
import pytest

from ledger.application import Ledger
from ledger.domain import ids
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.domain.member import Member, evolve
from ledger.infrastructure.membercache import LOT_BYTES, STATE_BYTES, BudgetCache, weigh
from ledger.settings import Settings
from tests.rulesets import SPEC_EXAMPLE, doc, ruleset

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
MEMBERS = 12
SALES = 60


def _sale(receipt: str, card: str) -> PostSale:
    return PostSale(
        store_id="S1",
        receipt_no=receipt,
        member_id=card,
        occurred_at=NOW - timedelta(minutes=1),
        lines=[SaleLine(sku="A", amount_fen=5_000, category="otc")],
    )


def test_many_sales_keep_the_cache_within_its_budget_and_answers_unchanged(
    settings: Settings,
) -> None:
    budget_mb = 1
    ledger = Ledger(msgspec.structs.replace(settings, member_cache_mb=budget_mb))
    try:
        cache = ledger.core._cache
        assert isinstance(cache, BudgetCache) and cache.max_bytes == budget_mb << 20
        cache.max_bytes = 40_000  # a budget a few members' states fill
        ledger.rules.publish(
            ruleset(doc(SPEC_EXAMPLE, effective_from="2020-01-01T00:00:00+08:00")), "t"
        )
        ledger.access.configure_store(
            "S1", RegisterStore(name="One", kind="franchise", franchisee="F1"), "t"
        )
        cards = [f"M{n}" for n in range(MEMBERS)]
        for card in cards:
            ledger.members.enrol(EnrolMember(member_id=card, store_id="S1"), "t", NOW)
        for n in range(SALES):
            ledger.sales.post(_sale(f"R{n}", cards[n % MEMBERS]), "op", NOW)
            assert cache.total <= cache.max_bytes
            assert cache.total == sum(weigh(link[cache.RESULT]) for link in cache.cache.values())
        members = [ids.member_id(card) for card in cards]
        assert any(m not in cache.cache for m in members)  # some were evicted
        for card, member in zip(cards, members, strict=True):
            cached = ledger.core.get(member, evolve)
            assert isinstance(cached, Member)
            fresh = Ledger(settings)
            try:
                cold = fresh.core.get(member, evolve)
            finally:
                fresh.close()
            assert msgspec.json.encode(cached) == msgspec.json.encode(cold), card
            assert len(cached.lots) == SALES // MEMBERS
    finally:
        ledger.close()


def test_weights_and_eviction_order() -> None:
    cache = BudgetCache(maxsize=100, max_bytes=3 * STATE_BYTES + LOT_BYTES - 1)
    keys = [uuid4() for _ in range(4)]
    for key in keys[:3]:
        cache.put(key, object())  # a state without parts: STATE_BYTES each
    cache.get(keys[0])  # used: the least recently used is now keys[1]
    cache.put(keys[3], object())
    assert set(cache.cache) == {keys[0], keys[2], keys[3]}
    assert cache.total == 3 * STATE_BYTES
    cache.put(keys[0], _with_lots(1))  # grows by a lot: the least recently used goes
    assert set(cache.cache) == {keys[0], keys[3]}
    assert cache.total == 2 * STATE_BYTES + LOT_BYTES
    cache.put(keys[3], _with_lots(6))  # alone larger than the budget: nothing is kept
    assert not cache.cache and cache.total == 0 and not cache.weights


def _with_lots(n: int) -> object:
    class State:
        lots = [object()] * n

    return State()
