"""First POS benchmark: sales/s and latency of `Ledger.post_sale` in process (no HTTP).

Sets up a chain (SPEC example rules, two stores, N members) in a fresh store, then posts
realistic receipts (1-6 lines, mixed categories, a promoted SKU) from T threads, a few hot
members taking a tenth of the traffic. Prints one JSON line per figure.

    .venv/bin/python -m bench.pos_sales --database-url sqlite:////tmp/bench.db
    .venv/bin/python -m bench.pos_sales --database-url postgresql://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import msgspec

from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, PostSale, RegisterStore, SaleLine
from ledger.policies.ruleset import RuleSet
from ledger.settings import Settings
from tests.rulesets import SPEC_EXAMPLE

CATEGORIES = ["otc", "rx", "tcm", "supplements", "devices"]


def receipt(rng: random.Random, store: str, number: str, member: str, at: datetime) -> PostSale:
    lines = [
        SaleLine(
            sku=rng.choice(["SKU-PROMO", *[f"SKU-{n}" for n in range(50)]]),
            category=rng.choice(CATEGORIES),
            amount_fen=rng.randint(500, 30_000),
            quantity=rng.randint(1, 3),
            no_points=rng.random() < 0.05,
        )
        for _ in range(rng.randint(1, 6))
    ]
    return PostSale(
        store_id=store, receipt_no=number, member_id=member, occurred_at=at, lines=lines
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:////tmp/ledger-bench.db")
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--sales", type=int, default=4_000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    settings = Settings(database_url=args.database_url, master_key=bytes(32))
    ledger = Ledger(settings)
    rules = dict(SPEC_EXAMPLE) | {"effective_from": "2020-01-01T00:00:00+08:00"}
    ledger.rules.publish(msgspec.convert(rules, RuleSet, strict=False), "bench")
    ledger.access.configure_store(
        "S1", RegisterStore(name="S1", kind="franchise", franchisee="F1"), "b"
    )
    ledger.access.configure_store("S2", RegisterStore(name="S2", kind="direct"), "bench")
    now = datetime.now(UTC)
    run = f"{int(time.time())}"
    members = [f"B{run}-{n}" for n in range(args.members)]
    started = time.perf_counter()
    for member in members:
        ledger.members.enrol(EnrolMember(member_id=member, store_id="S1"), "bench", now)
    enrol_s = time.perf_counter() - started

    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = args.sales // args.threads

    def terminal(t: int) -> None:
        rng = random.Random(t)
        mine = []
        for n in range(per_thread):
            member = rng.choice(members[:5]) if rng.random() < 0.1 else rng.choice(members)
            cmd = receipt(
                rng, f"S{1 + n % 2}", f"{run}-{t}-{n}", member, now - timedelta(seconds=1)
            )
            begun = time.perf_counter()
            ledger.sales.post(cmd, "bench", datetime.now(UTC))
            mine.append(time.perf_counter() - begun)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=terminal, args=(t,)) for t in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ledger.close()

    cuts = statistics.quantiles(latencies, n=100)
    store = args.database_url.split(":", 1)[0]
    for name, value, unit in (
        ("enrolments_per_s", args.members / enrol_s, "1/s"),
        ("sales_per_s", len(latencies) / elapsed, "1/s"),
        ("sale_p50_ms", cuts[49] * 1000, "ms"),
        ("sale_p99_ms", cuts[98] * 1000, "ms"),
    ):
        print(
            json.dumps(
                {
                    "bench": "pos_sales_in_process",
                    "store": store,
                    "figure": name,
                    "value": round(value, 1),
                    "unit": unit,
                    "threads": args.threads,
                }
            )
        )


if __name__ == "__main__":
    main()
