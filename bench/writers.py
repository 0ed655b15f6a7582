"""Issue 18's scale model, measured: where one PostgreSQL database stops taking more sales as
writer processes are added.

A chain (bench/chain.py: SPEC example rules, `--stores` stores, `--members` members) is
prepared once in a template database; for each count in `--processes` (1,2,4,8) a fresh copy
of it gets that many writer processes, each a `ledger.application.Ledger` in process (no
HTTP, no projections: the write path alone) posting realistic receipts from `--threads`
threads for `--seconds`, all starting together. Measured over the window: sales/s (answers
of `sales.post`), events appended/s (the log's head), commits/s (pg_stat_database's
xact_commit of that database: reads in transactions count too), CPU in cores of the writers
and of PostgreSQL (/proc), and the machine. eventsourcing's PostgreSQL recorder takes an
EXCLUSIVE lock on the events table for each insert and holds it to the commit (so that
notification ids are never seen out of order): whatever else runs in parallel, the appends
of one database are serialised, and the commit's fsync is inside that lock.

    .venv/bin/python -m bench.writers --processes 1,2,4,8 --seconds 15
    .venv/bin/python -m bench.writers --child ...   # one writer process (used by the above)
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import chain as chain_module
from bench.harness import (
    DB_PREFIX,
    DEFAULT_PG_ADMIN_URL,
    REPO,
    CpuMeter,
    close_probe,
    emit,
    exit_on_sigterm,
    load_average,
    probe,
    random_database_name,
    say,
    throwaway_database,
)
from ledger.application import open_ledger
from ledger.domain.commands import PostSale, SaleLine
from ledger.settings import Settings

CATEGORIES = ("otc", "otc", "otc", "rx", "rx", "tcm", "supplement", "device")


def receipt(rng: random.Random, args: argparse.Namespace, number: str) -> PostSale:
    """sales.lua's receipt: a store, a member (a tenth on 5 hot ones), 1-6 lines."""
    n = rng.randrange(5) if rng.random() < 0.1 else rng.randrange(args.members)
    lines = []
    for _ in range(rng.randint(1, 6)):
        promoted = rng.random() < 0.08
        lines.append(
            SaleLine(
                sku=rng.choice(chain_module.PROMOTED_SKUS)
                if promoted
                else f"SKU-{rng.randint(1, 2000):04d}",
                category="otc" if promoted else rng.choice(CATEGORIES),
                amount_fen=rng.randint(300, 30_000),
                quantity=rng.randint(1, 3),
                no_points=rng.random() < 0.06,
            )
        )
    return PostSale(
        store_id=f"S{rng.randint(1, args.stores):02d}",
        receipt_no=number,
        member_id=chain_module.member_card(n),
        occurred_at=datetime.now(UTC) - timedelta(seconds=2),
        lines=lines,
    )


def terminals(
    ledger: Any,
    args: argparse.Namespace,
    tag: str,
    *,
    start_at: float,
    end: float,
    counts: dict[str, int],
) -> list[threading.Thread]:
    """--threads started threads, each a till posting sales.lua's receipts in process from
    `start_at` until `end` (wall clock), adding its sales and failures to `counts`."""
    lock = threading.Lock()

    def terminal(t: int) -> None:
        rng = random.Random(f"{tag}-{t}")
        n = done = failed = 0
        while time.time() < start_at:
            time.sleep(0.005)
        while time.time() < end:
            n += 1
            try:
                ledger.sales.post(receipt(rng, args, f"{tag}-{t}-{n}"), "bench", datetime.now(UTC))
                done += 1
            except Exception:
                failed += 1
        with lock:
            counts["sales"] += done
            counts["failed"] += failed

    threads = [threading.Thread(target=terminal, args=(t,)) for t in range(args.threads)]
    for thread in threads:
        thread.start()
    return threads


def child(args: argparse.Namespace) -> int:
    """One writer process: post sales from --threads threads from --start-at for --seconds."""
    settings = Settings(database_url=args.database_url, master_key=bytes.fromhex(args.master_key))
    ledger = open_ledger(settings)
    counts: dict[str, int] = {"sales": 0, "failed": 0}
    end = args.start_at + args.seconds
    threads = terminals(ledger, args, args.tag, start_at=args.start_at, end=end, counts=counts)
    for thread in threads:
        thread.join()
    # Hold the connections a moment: the parent reads PostgreSQL's backends' CPU times from
    # /proc at the end of the window, and a closed connection's backend is gone from there.
    time.sleep(max(0.0, end + 3 - time.time()))
    ledger.close()
    sys.stdout.write(json.dumps(counts) + "\n")
    return 0


def _outcome(child: subprocess.Popen[str]) -> dict[str, int]:
    """What a writer process posted; a process that died (its status, e.g. -11 for a
    segmentation fault: faulthandler printed its stacks on stderr) counts as failed."""
    out = child.communicate(timeout=120)[0].strip().splitlines()
    if child.returncode != 0 or not out:
        say(f"writer pid {child.pid} ended with status {child.returncode}")
        return {"sales": 0, "failed": 0, "died": 1, "status": child.returncode}
    return {**json.loads(out[-1]), "died": 0}


def _counters(url: str, name: str) -> tuple[int, int]:
    """(commits of the database, the log's head) now."""
    conn = probe(url)
    commits = conn.execute(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
    ).fetchone()
    head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM ledger_events").fetchone()
    return int(commits[0]) if commits else 0, int(head[0]) if head else 0


def _write_transactions(url: str, after: int, upto: int) -> int:
    """How many transactions appended the log's events in (after, upto]: each row's xmin."""
    conn = probe(url)
    row = conn.execute(
        "SELECT count(DISTINCT xmin::text) FROM ledger_events "
        "WHERE notification_id > %s AND notification_id <= %s",
        (after, upto),
    ).fetchone()
    return int(row[0]) if row else 0


def measure(
    processes: int, template: str, master: bytes, args: argparse.Namespace
) -> dict[str, Any]:
    name = f"{DB_PREFIX}writers_{processes}_{secrets.token_hex(3)}"
    load_before = load_average()
    with throwaway_database(args.pg_admin_url, name, template=template) as url:
        probe(url)  # before the writers take their pools' connections
        probe(args.pg_admin_url)
        start_at = time.time() + 3 + processes * 0.5  # every writer opened before the start
        argv = [
            sys.executable, "-X", "faulthandler", "-m", "bench.writers", "--child", "--database-url", url,
            "--master-key", master.hex(), "--threads", str(args.threads),
            "--seconds", f"{args.seconds:g}", "--start-at", f"{start_at:.3f}",
            "--members", str(args.members), "--stores", str(args.stores),
        ]  # fmt: skip
        children = [
            subprocess.Popen(  # noqa: S603 - our own script
                [*argv, "--tag", f"W{processes}-{p}"],
                cwd=REPO,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for p in range(processes)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        commits0, head0 = _counters(url, name)
        meter = CpuMeter(
            groups={f"w{p}": c.pid for p, c in enumerate(children)},
            pg_admin_url=args.pg_admin_url,
            pg_database=name,
        )
        meter.start()
        time.sleep(max(0.0, start_at + args.seconds + 0.5 - time.time()))
        cpu = meter.stop()
        commits1, head1 = _counters(url, name)
        appends = _write_transactions(url, head0, head1)
        close_probe(url)
        outputs = [_outcome(c) for c in children]
    seconds = meter.seconds
    sales = sum(o["sales"] for o in outputs)
    writers_cores = sum(v for k, v in cpu.items() if k.startswith("w") and k != "wrk")
    return {
        "bench": "writers",
        "figure": f"writers-{processes}",
        "value": round(sales / args.seconds, 1),
        "unit": "sales/s",
        "store": "postgresql",
        "processes": processes,
        "threads_per_process": args.threads,
        "seconds": args.seconds,
        "sales": sales,
        "failed": sum(o["failed"] for o in outputs),
        "errors": sum(o["failed"] + o["died"] for o in outputs),
        "writers_died": [o["status"] for o in outputs if o["died"]],
        "commits_per_s": round((commits1 - commits0) / seconds, 1),
        "events_per_s": round((head1 - head0) / seconds, 1),
        "append_transactions_per_s": round(appends / seconds, 1),
        "events_per_append_transaction": round((head1 - head0) / appends, 2) if appends else None,
        "cpu_cores_used": {
            "writers": round(writers_cores, 2),
            "postgres": cpu.get("postgres_ours", 0.0),
            "machine": cpu["machine"],
        },
        "cpu_ms_per_sale": round(
            (writers_cores + cpu.get("postgres_ours", 0.0)) * seconds * 1000 / sales, 2
        )
        if sales
        else None,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.writers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--processes", default="1,2,4,8", help="writer process counts")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="posting threads per process (a process holds about threads + 2 connections: 8 "
        "processes of 2 stay well under a shared cluster's max_connections of 100)",
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--master-key", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="W", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    exit_on_sigterm()
    counts = [int(n) for n in args.processes.split(",") if n.strip()]
    master = secrets.token_bytes(32)
    template = random_database_name("writers_tpl")
    with throwaway_database(args.pg_admin_url, template) as url:
        chain_module.prepare(url, master, stores=args.stores, members=args.members)
        for processes in counts:
            say(f"writers: {processes} process(es) × {args.threads} threads, {args.seconds:g} s")
            shown = ".venv/bin/python -m bench.writers " + " ".join(sys.argv[1:])
            emit(measure(processes, template, master, args) | {"command": shown})
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
