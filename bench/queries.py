"""Issue 5, figure 4: the back office's reads on the big log, in process (no HTTP).

After `bench/replay.py` rebuilt the views, times ~200 calls each of:

- the member history's first page (`Queries.history`, 50 entries, newest first) of the heavy
  member (2,000+ events; `bench.biglog.HEAVY_CARD`), target p99 ≤ 20 ms;
- that member's balance as of a random past instant (`Ledger.member_as_of`), target p99 ≤ 20
  ms: as the service runs (`balance-as-of`: the ledger keeps recently asked-for members'
  decoded events, so only the first call, `first_ms`, reads them all), and cold every time
  (`balance-as-of-cold`: that memory emptied before each call), what one question about a
  member not asked for lately costs;
- the settlement report of a month with activity at every store (`SettlementView.report`,
  through `Queries.settlement`), target ≤ 500 ms.

It builds `Ledger` and `projections.runtime.Projections` directly and starts no runner. One JSON
line per figure (`value` is the p99 in ms), then a human line.

    .venv/bin/python -m bench.queries            # the big log in bench_biglog
    .venv/bin/python -m bench.queries --small
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.bigstore import (
    HEAVY_CARD,
    TIMEZONE,
    add_store_arguments,
    command_of,
    database_url,
    emit,
    load_average,
    parser_for,
    store_kind,
)
from ledger.application import Ledger
from ledger.policies.chaintime import add_months, month_of
from ledger.settings import Settings
from projections.queries import HistoryFilter, Queries
from projections.runtime import Projections

TARGETS_MS = {"history-first-page": 20.0, "balance-as-of": 20.0, "settlement-month": 500.0}


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def measure(
    name: str, calls: int, call: Callable[[int], object], before: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Time `calls` calls (ms); `before` runs untimed before each one."""
    samples: list[float] = []
    result: object = None
    for n in range(calls):
        if before is not None:
            before()
        started = time.perf_counter()
        result = call(n)
        samples.append((time.perf_counter() - started) * 1000)
    target = TARGETS_MS.get(name.removesuffix("-cold"))
    p99 = percentile(samples, 99)
    return {
        "bench": "queries",
        "figure": name,
        "value": round(p99, 2),
        "unit": "ms (p99)",
        "calls": calls,
        "first_ms": round(samples[0], 2),
        "p50_ms": round(percentile(samples, 50), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(samples), 2),
        "target_p99_ms": target,
        "met": p99 <= target if target is not None else None,
        "last_result_size": _size(result),
    }


def _size(result: object) -> int | None:
    for attribute in ("items", "rows", "lots"):
        found = getattr(result, attribute, None)
        if isinstance(found, list):
            return len(found)
    return None


def run(url: str, calls: int, card: str, period: str | None, seed: int) -> list[dict[str, Any]]:
    settings = Settings(database_url=url, master_key=bytes(32))
    ledger = Ledger(settings)
    projections = Projections(settings)
    try:
        head = ledger.core.log_position()
        positions = projections.positions()
        behind = {name: head - at for name, at in positions.items() if at < head}
        if behind:
            raise SystemExit(f"the views are behind the log ({behind}): run bench.replay first")
        queries = Queries(ledger, projections)
        zone = ZoneInfo(TIMEZONE)
        events = ledger.members.events(card)  # also warms nothing the timed calls rely on
        first, last = events[0], events[-1]
        start = getattr(first, "occurred_at", first.timestamp)
        end = max(getattr(last, "occurred_at", last.timestamp), start + timedelta(days=1))
        rng = random.Random(seed)
        instants = [start + (end - start) * rng.random() for _ in range(calls)]
        period = period or month_of(add_months(datetime.now(zone), -1, zone), zone)
        ledger.members.forget_histories()  # the first timed call reads the member's events cold

        figures = [
            measure("history-first-page", calls, lambda _: queries.history(card, HistoryFilter())),
            measure("balance-as-of", calls, lambda n: ledger.members.as_of(card, instants[n])),
            measure(
                "balance-as-of-cold",
                max(20, calls // 4),
                lambda n: ledger.members.as_of(card, instants[n]),
                before=ledger.members.forget_histories,
            ),
            measure("settlement-month", calls, lambda _: queries.settlement(period)),
        ]
        for figure in figures:
            figure["store"] = store_kind(url)
            figure["load_average"] = load_average()
        figures[0]["member"] = figures[1]["member"] = figures[2]["member"] = card
        figures[0]["member_events"] = len(events)
        figures[1]["member_events"] = figures[2]["member_events"] = len(events)
        figures[3]["period"] = period
        report = queries.settlement(period)
        figures[3]["stores"] = len(report.rows)
        figures[3]["points_issued"] = report.totals.points_issued
        return figures
    finally:
        projections.stop()
        ledger.close()


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = parser_for("bench.queries", __doc__)
    add_store_arguments(parser)
    parser.add_argument("--calls", type=int, default=None, help="calls per figure (default 200)")
    parser.add_argument("--member", default=HEAVY_CARD, help="the card whose history is read")
    parser.add_argument(
        "--period", default=None, help="YYYY-MM for the settlement (default last month)"
    )
    parser.add_argument("--seed", type=int, default=1, help="draws the as-of instants")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    url = database_url(args.database_url, args.small)
    calls = args.calls or (50 if args.small else 200)
    figures = run(url, calls, args.member, args.period, args.seed)
    emit(figures, command=command_of("bench.queries"))
    print(
        "queries: "
        + "; ".join(
            f"{f['figure']} p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms"
            + (f" (target {f['target_p99_ms']:g})" if f["target_p99_ms"] else "")
            for f in figures
        )
    )
    return figures


if __name__ == "__main__":
    main()
