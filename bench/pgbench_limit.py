"""Issue 5, figure 2: the limit beside the sale path, what this PostgreSQL commits at most.

`pgbench` with a custom script that inserts one row (of `--row-bytes` bytes, about a sale's
events) into a throwaway table and commits, one transaction per row, from `--clients` clients
(the same count as the HTTP load's connections) on one pgbench thread, for `--seconds`:

    pgbench -n -f insert.sql -c C -j 1 -T S

A sale's best case is one such commit (its events appended in one transaction) plus the
reads before it, so `sales/s ÷ this tps` says how close the service comes to the database's
own limit (bench/run.py prints that ratio). Runs in a fresh database `ledger_bench_pgbench_…`
(dropped afterwards), or in `--database` (the table is dropped afterwards).
Prints one JSON line.

    .venv/bin/python -m bench.pgbench_limit --clients 16 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from bench.harness import (
    DEFAULT_PG_ADMIN_URL,
    command_line,
    database_url,
    emit,
    ensure_tool,
    exit_on_sigterm,
    load_average,
    random_database_name,
    say,
    throwaway_database,
)

TABLE = "bench_pgbench_insert"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pgbench_limit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=16, help="pgbench -c")
    parser.add_argument("--jobs", type=int, default=1, help="pgbench -j (threads)")
    parser.add_argument("--seconds", type=int, default=20, help="pgbench -T")
    parser.add_argument("--row-bytes", type=int, default=600, help="payload of each row")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument(
        "--database", default=None, help="an existing database to use (default: a fresh one)"
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.database:
        yield database_url(args.pg_admin_url, args.database)
        return
    with throwaway_database(args.pg_admin_url, random_database_name("pgbench")) as url:
        yield url


def run(args: argparse.Namespace, url: str) -> dict[str, object]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_pgbench_insert "
            "(id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), payload text)"
        )
    insert = f"INSERT INTO {TABLE} (payload) VALUES (repeat('x', {args.row_bytes:d}));"  # noqa: S608 - pgbench's script: a constant table, an int
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-pgbench-") as work:
            script = Path(work) / "insert.sql"
            script.write_text(insert + "\n")
            parts = urlsplit(url)
            argv = [
                ensure_tool("pgbench"),
                "-n",
                "-f",
                str(script),
                "-c",
                str(args.clients),
                "-j",
                str(args.jobs),
                "-T",
                str(args.seconds),
                "-h",
                parts.hostname or "127.0.0.1",
                "-p",
                str(parts.port or 5432),
                "-U",
                parts.username or "postgres",
                parts.path.lstrip("/"),
            ]
            say(f"pgbench: {args.clients} clients, {args.seconds} s of one-row commits")
            load_before = load_average()
            completed = subprocess.run(  # noqa: S603 - pgbench on PATH, our arguments
                argv, capture_output=True, text=True, check=False, timeout=args.seconds + 120
            )
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_pgbench_insert")
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed ({completed.returncode}): {completed.stderr}")
    tps = re.search(r"^tps = ([0-9.]+)", completed.stdout, re.M)
    latency = re.search(r"^latency average = ([0-9.]+) ms", completed.stdout, re.M)
    failed = re.search(r"^number of failed transactions: ([0-9]+)", completed.stdout, re.M)
    if tps is None:
        raise RuntimeError(f"no tps in pgbench's output:\n{completed.stdout}")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('synchronous_commit')").fetchone()
    return {
        "bench": "pgbench_limit",
        "figure": "pgbench-insert-commit",
        "value": round(float(tps.group(1)), 1),
        "unit": "tps",
        "clients": args.clients,
        "jobs": args.jobs,
        "seconds": args.seconds,
        "row_bytes": args.row_bytes,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "errors": int(failed.group(1)) if failed else 0,
        "synchronous_commit": row[0] if row else None,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "command": command_line(argv).replace(str(script), "insert.sql"),
        "script": insert,
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    exit_on_sigterm()
    ensure_tool("pgbench")
    with database(args) as url:
        emit(run(args, url))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
