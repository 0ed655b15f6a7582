"""Issue 18, worker memory: an in-process soak of the aggregate cache's byte budget (D68).

A chain (bench/chain.py: `--members` members) is prepared once in a template database; for each
`--cache-mb` value a fresh copy gets one process, a `Ledger` in process (no HTTP, no projections)
posting sales.lua's receipts (bench/writers.py: a tenth on 5 hot members) from `--threads`
threads for `--seconds`, with `LEDGER_MEMBER_CACHE_MB` set to that value (`LEDGER_MEMBER_CACHE_SIZE`
stays 10,000). Its RSS (/proc/self/status VmRSS) and the cache's estimated bytes and aggregates
are sampled every `--every` seconds. "Flat" reads as in D61: at most 5 MB of growth over the
soak's last half. A large value (100000) is the count-bounded cache of before.

    .venv/bin/python -m bench.cache_soak --members 3000 --seconds 240 --cache-mb 100000,16
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from typing import Any

from bench import chain as chain_module
from bench.harness import (
    DEFAULT_PG_ADMIN_URL,
    REPO,
    emit,
    exit_on_sigterm,
    load_average,
    random_database_name,
    say,
    throwaway_database,
)
from bench.writers import terminals
from ledger.application import open_ledger
from ledger.infrastructure.membercache import BudgetCache
from ledger.settings import Settings


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(args: argparse.Namespace) -> int:
    """One process: post sales for --seconds, sampling RSS and the cache; one JSON line out."""
    settings = Settings(
        database_url=args.database_url,
        master_key=bytes.fromhex(args.master_key),
        member_cache_mb=args.cache_mb,
    )
    ledger = open_ledger(settings)
    cache = ledger.core._cache
    counts: dict[str, int] = {"sales": 0, "failed": 0}
    start = time.time()
    threads = terminals(
        ledger, args, "soak", start_at=start, end=start + args.seconds, counts=counts
    )
    series: list[dict[str, float]] = []
    begun = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        time.sleep(args.every)
        sample = {
            "s": round(time.monotonic() - begun),
            "rss_mb": round(rss_mb(), 1),
            "chains": len(ledger.core._chains),
            "birthdays": len(ledger.core._birthdays),
        }
        if isinstance(cache, BudgetCache):
            sample |= {"cache_mb": round(cache.total / 2**20, 1), "aggregates": len(cache.cache)}
        series.append(sample)
    for thread in threads:
        thread.join()
    ledger.close()
    sys.stdout.write(json.dumps(counts | {"series": series}) + "\n")
    return 0


def measure(
    template: str, master: bytes, cache_mb: int, args: argparse.Namespace
) -> dict[str, Any]:
    name = random_database_name(f"soak_{cache_mb}")
    load_before = load_average()
    with throwaway_database(args.pg_admin_url, name, template=template) as url:
        argv = [
            sys.executable, "-m", "bench.cache_soak", "--child", "--database-url", url,
            "--master-key", master.hex(), "--threads", str(args.threads),
            "--seconds", f"{args.seconds:g}", "--members", str(args.members),
            "--stores", str(args.stores), "--cache-mb", str(cache_mb), "--every", f"{args.every:g}",
        ]  # fmt: skip
        done = subprocess.run(  # noqa: S603 - our own script
            argv, cwd=REPO, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        out = json.loads(done.stdout.strip().splitlines()[-1])
    series = out["series"]
    rss = [s["rss_mb"] for s in series]
    half = series[len(series) // 2]["rss_mb"]
    return {
        "bench": "cache_soak",
        "figure": f"cache-soak-{cache_mb}mb",
        "value": round(rss[-1] - half, 1),
        "unit": "MB over the last half",
        "cache_mb": cache_mb,
        "sales": out["sales"],
        "failed": out["failed"],
        "sales_per_s": round(out["sales"] / args.seconds, 1),
        "rss_first_mb": rss[0],
        "rss_last_mb": rss[-1],
        "rss_max_mb": max(rss),
        "flat": rss[-1] - half <= 5.0,
        "series": series,
        "members": args.members,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_soak", description=__doc__)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--cache-mb", default="100000,16", help="LEDGER_MEMBER_CACHE_MB values")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--master-key", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.cache_mb = int(args.cache_mb)
        return child(args)
    exit_on_sigterm()
    master = secrets.token_bytes(32)
    template = random_database_name("soak_tpl")
    with throwaway_database(args.pg_admin_url, template) as url:
        chain_module.prepare(url, master, stores=args.stores, members=args.members)
        for cache_mb in [int(v) for v in args.cache_mb.split(",") if v.strip()]:
            say(f"cache soak: LEDGER_MEMBER_CACHE_MB={cache_mb}, {args.seconds:g} s")
            shown = ".venv/bin/python -m bench.cache_soak " + " ".join(sys.argv[1:])
            emit(measure(template, master, cache_mb, args) | {"command": shown})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
