"""`make bench`: run the benchmark steps, print their figures, a table, and record them.

Each step is a script of its own in bench/ (runnable alone, `--help`), run here as a
subprocess; every JSON line it prints on stdout is a figure (passed through as it comes, and
collected), anything else it prints is passed through too. Then derived figures (ratios
between steps) are printed as JSON lines, then a human table, and a dated section with the
machine, the commands and the table is appended to docs/PERFORMANCE.md (`--no-doc`: not).

Steps (`--only` / `--skip`, comma-separated names):

  http_sales     bench/http_sales.py: POS sales over HTTP on PostgreSQL (saturation, a fixed
                 offered rate, the naive design without the aggregate cache) and on SQLite
  pgbench_limit  bench/pgbench_limit.py: one-row insert+commit transactions/s, same clients
  writers        bench/writers.py: sales/s and commits/s with 1, 2, 4, 8 writer processes
                 in process against one PostgreSQL database (issue 18's scale model)
  import_members bench/import_members.py (issue 16's migration import), members/s; skipped
                 with a note while that script does not exist

Then, on a big log (`--log-size small|full`, in each of `--log-stores`), generated once per
store and shared by the steps after it (expiry last: it writes to the log), then dropped:

  biglog         bench/biglog.py: generate the log through the pure domain functions
  replay         bench/replay.py: `ledger rebuild` events/s and peak RSS (and `ledger verify`)
  queries        bench/queries.py: history of a 2,000-event member, balance as of, settlement
  expiry         bench/expiry.py: the expiry run over the due lots, lots/s

To add a figure: a script printing JSON lines with at least `figure`, `value` and `unit`
(optionally `p50_ms`, `p99_ms`, `errors`), and a `Step` in STEPS below.

    .venv/bin/python -m bench.run                       # everything, ~15 minutes
    .venv/bin/python -m bench.run --seconds 10 --no-doc # a quick look
    .venv/bin/python -m bench.run --only pgbench_limit
    .venv/bin/python -m bench.run --only biglog,replay,queries,expiry --log-size full
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench import targets as issue18
from bench.bigstore import recreate
from bench.harness import (
    DEFAULT_PG_ADMIN_URL,
    REPO,
    command_line,
    cpu_model,
    exit_on_sigterm,
    load_average,
    postgres_version,
    say,
    shielded,
)

DOC = REPO / "docs" / "PERFORMANCE.md"


@dataclass(frozen=True)
class Step:
    name: str
    module: str
    argv: Callable[[argparse.Namespace], list[str]]
    on_big_log: bool = False  # runs once per log store, its URL passed as --database-url


STEPS = [
    Step(
        "http_sales",
        "bench.http_sales",
        lambda a: [
            "--seconds",
            f"{a.seconds:g}",
            "--warmup",
            f"{a.warmup:g}",
            "--connections",
            str(a.connections),
            "--workers",
            str(a.workers),
            "--rate",
            f"{a.rate:g}",
            "--members",
            str(a.members),
            "--open-rate",
            f"{a.open_rate:g}",
            "--soak-seconds",
            f"{a.soak_seconds:g}",
            "--pg-admin-url",
            a.pg_admin_url,
            *(["--scenarios", a.scenarios] if a.scenarios else []),
            *(["--keep-logs"] if a.keep_logs else []),
        ],
    ),
    Step(
        "pgbench_limit",
        "bench.pgbench_limit",
        lambda a: [
            "--clients",
            str(a.connections),
            "--seconds",
            str(a.pgbench_seconds),
            "--pg-admin-url",
            a.pg_admin_url,
        ],
    ),
    Step(
        "writers",
        "bench.writers",
        lambda a: [
            "--processes",
            a.writer_processes,
            "--seconds",
            f"{a.writer_seconds:g}",
            "--pg-admin-url",
            a.pg_admin_url,
        ],
    ),
    Step(
        "import_members",
        "bench.import_members",
        lambda a: ["--members", str(a.import_members), "--pg-admin-url", a.pg_admin_url],
    ),
    Step(
        "biglog",
        "bench.biglog",
        lambda a: ["--recreate", *(["--small"] if a.log_size == "small" else [])],
        on_big_log=True,
    ),
    Step(
        "replay",
        "bench.replay",
        lambda a: [] if a.log_verify else ["--no-verify"],
        on_big_log=True,
    ),
    Step(
        "queries",
        "bench.queries",
        lambda a: ["--calls", str(a.query_calls)],
        on_big_log=True,
    ),
    Step(
        "expiry",
        "bench.expiry",
        lambda a: ["--fresh-copy"] if a.keep_log else [],  # a kept log is left as it was
        on_big_log=True,
    ),
]
LOG_STORES = ("postgresql", "sqlite")
SQLITE_LOG_DIR = Path(tempfile.gettempdir()) / "bench_biglog"
# figure -> (comparison, target, what is compared): issue 5's targets
TARGETS: dict[str, tuple[str, float, str]] = {
    "rebuild": (">=", 50_000, "value"),
    "rebuild-peak-rss": ("<=", 300, "value"),
    "history-first-page": ("<=", 20, "p99_ms"),
    "balance-as-of": ("<=", 20, "p99_ms"),
    "balance-as-of-cold": ("<=", 20, "p99_ms"),
    "settlement-month": ("<=", 500, "p99_ms"),
    "expiry-lots": (">=", 20_000, "value"),
}


def log_url(store: str, args: argparse.Namespace) -> str:
    """Where the big log of this size lives in this store (bench_biglog[_small])."""
    name = "bench_biglog" + ("_small" if args.log_size == "small" else "")
    if store == "sqlite":
        return f"sqlite:///{SQLITE_LOG_DIR / (name + '.db')}"
    parts = urlsplit(args.pg_admin_url)
    return str(urlunsplit(parts._replace(path=f"/{name}", query="")))


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = ", ".join(s.name for s in STEPS)
    parser.add_argument("--only", default="", help=f"steps to run, of {names}")
    parser.add_argument("--skip", default="", help="steps not to run")
    parser.add_argument("--seconds", type=float, default=30, help="measured load per scenario")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured load before it")
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16, help="HTTP and pgbench clients")
    parser.add_argument("--workers", type=int, default=2, help="ledger serve --workers (PG)")
    parser.add_argument("--rate", type=float, default=1000, help="offered sales/s of pg-rate")
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument("--open-rate", type=float, default=500, help="open-loop sales/s offered")
    parser.add_argument(
        "--soak-seconds", type=float, default=60, help="the RSS soak's load (issue 18 asks 600)"
    )
    parser.add_argument("--writer-processes", default="1,2,4,8", help="bench.writers counts")
    parser.add_argument("--writer-seconds", type=float, default=15)
    parser.add_argument(
        "--import-members", type=int, default=50_000, help="members the import step imports"
    )
    parser.add_argument("--scenarios", default="", help="http_sales --scenarios (default all)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument(
        "--log-size",
        choices=("small", "full"),
        default="small",
        help="the big log: small (biglog --small: ~57k events, 50 stores, 2,000 members; "
        "~2 minutes a store) or full (1,000 stores, 120,000 members: ~3.4M events and ~1.4M "
        "lots; about an hour a store on this shared machine)",
    )
    parser.add_argument(
        "--log-stores",
        default=",".join(LOG_STORES),
        help="stores to generate the big log in and run its steps on, of postgresql, sqlite",
    )
    parser.add_argument(
        "--reuse-log",
        action="store_true",
        help="do not generate: use the log a --keep-log run left (implies --keep-log)",
    )
    parser.add_argument(
        "--keep-log",
        action="store_true",
        help="keep the big log afterwards (expiry then runs on a copy of it)",
    )
    parser.add_argument(
        "--log-verify",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run `ledger verify` after the rebuild (default: only on the small log; verify "
        "holds both views' rows in memory)",
    )
    parser.add_argument("--query-calls", type=int, default=200, help="calls per query figure")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to append the section")
    parser.add_argument("--no-doc", action="store_true", help="do not append to the doc")
    args = parser.parse_args(argv)
    known = {s.name for s in STEPS}
    for option in ("only", "skip"):
        chosen = {n.strip() for n in getattr(args, option).split(",") if n.strip()}
        if chosen - known:
            parser.error(f"--{option}: unknown step(s) {', '.join(sorted(chosen - known))}")
        setattr(args, option, chosen)
    stores = [n.strip() for n in args.log_stores.split(",") if n.strip()]
    if set(stores) - set(LOG_STORES):
        parser.error(f"--log-stores: unknown store(s) {', '.join(set(stores) - set(LOG_STORES))}")
    args.log_stores = stores
    args.keep_log = args.keep_log or args.reuse_log
    if args.log_verify is None:
        args.log_verify = args.log_size == "small"
    return args


def run_step(
    step: Step, args: argparse.Namespace, extra: list[str] | None = None
) -> tuple[list[dict[str, Any]], int, str]:
    """Run one step's script; its figures (JSON lines on stdout), exit status, command."""
    argv = [sys.executable, "-m", step.module, *(extra or []), *step.argv(args)]
    shown = command_line([".venv/bin/python", "-m", step.module, *(extra or []), *step.argv(args)])
    say(f"step {step.name}: {shown}")
    records: list[dict[str, Any]] = []
    process = subprocess.Popen(  # noqa: S603 - our own scripts
        argv, cwd=REPO, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.startswith("{"):
                with contextlib.suppress(json.JSONDecodeError):
                    record = json.loads(line)
                    if isinstance(record, dict) and "figure" in record:
                        records.append(normalised(record))
        status = process.wait()
    except KeyboardInterrupt:
        # Ctrl-C reached the step too (same process group): let it clean up.
        with shielded():
            _wait(process)
        raise
    except BaseException:
        # SIGTERM (SystemExit here) did not reach it: pass it on, then let it clean up.
        with shielded():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            _wait(process)
        raise
    if status != 0:
        say(f"step {step.name} exited with {status}")
    return records, status, shown


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    """A figure with `value` and `unit` (issue 16's import step names its value
    `members_per_s`)."""
    if "value" not in record and "members_per_s" in record:
        record = record | {"value": record["members_per_s"], "unit": "members/s"}
    return record


def _wait(process: subprocess.Popen[str], timeout: float = 120) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        say(f"pid {process.pid} did not finish its cleanup in {timeout:g} s: SIGKILL")
        process.kill()
        process.wait()


def skipped(step: Step) -> dict[str, Any]:
    """The figure of a step whose script is not there yet (issue 16 writes the importer)."""
    return {
        "bench": "run",
        "figure": step.name,
        "value": None,
        "unit": "members/s" if step.name == "import_members" else "",
        "skipped": f"{step.module.replace('.', '/')}.py does not exist yet",
    }


def derived(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures made of others: the sale path against pgbench's limit, the cache's gain."""
    by = {r["figure"]: r for r in records}
    out: list[dict[str, Any]] = []
    sales = by.get("pg-saturation")
    limit = by.get("pgbench-insert-commit")
    if sales and limit and limit["value"]:
        out.append(
            {
                "bench": "run",
                "figure": "ratio-sales-to-pgbench",
                "value": round(sales["value"] / limit["value"], 4),
                "unit": "ratio",
                "formula": "pg-saturation sales/s ÷ pgbench-insert-commit tps",
                "sales_per_s": sales["value"],
                "pgbench_tps": limit["value"],
            }
        )
    own = by.get("pg-projector-saturation")
    if own and limit and limit["value"]:
        out.append(
            {
                "bench": "run",
                "figure": "ratio-projector-to-pgbench",
                "value": round(own["value"] / limit["value"], 4),
                "unit": "ratio",
                "formula": "pg-projector-saturation sales/s ÷ pgbench-insert-commit tps",
                "sales_per_s": own["value"],
                "pgbench_tps": limit["value"],
            }
        )
    naive = by.get("pg-nocache-saturation")
    if sales and naive and naive["value"]:
        out.append(
            {
                "bench": "run",
                "figure": "gain-cache-vs-naive",
                "value": round(sales["value"] / naive["value"], 2),
                "unit": "×",
                "formula": "pg-saturation sales/s ÷ pg-nocache-saturation sales/s",
            }
        )
    return out


def _lopsided(r: dict[str, Any]) -> list[str]:
    """A note when one API worker hardly served (the kernel gave another every connection)."""
    shares = r.get("api_worker_cpu_shares") or []
    if len(shares) > 1 and min(shares) < 0.1:
        return [f"lopsided: worker CPU shares {shares}"]
    return []


def _setup(r: dict[str, Any]) -> str:
    parts = []
    if "store" in r:
        parts.append(str(r["store"]))
    if "workers" in r:
        parts.append(f"W={r['workers']}")
    if r.get("connections"):
        parts.append(f"C={r['connections']}")
    if "clients" in r:
        parts.append(f"c={r['clients']}")
    if r.get("offered_per_s"):
        reached = "" if r.get("offered_reached", True) else " (not reached)"
        parts.append(f"offered {r['offered_per_s']:g}/s{reached}")
    parts += _lopsided(r)
    if r.get("aggregate_cache") == "off":
        parts.append("no aggregate cache")
    if "formula" in r:
        parts.append(str(r["formula"]))
    if r.get("events") and r.get("bench") in ("biglog", "replay"):
        parts.append(f"{r['events']:,} events")
    if r.get("member_events"):
        parts.append(f"member of {r['member_events']:,} events")
    if r.get("stores") and r.get("bench") == "queries":
        parts.append(f"{r['stores']:,} stores")
    if r.get("lots_expired") is not None:
        parts.append(f"{r['lots_expired']:,} lots")
    if r.get("members_reviewed") is not None and r.get("figure") == "expiry-members":
        parts.append(f"{r['members_reviewed']:,} members")
    return ", ".join(parts)


def target(r: dict[str, Any]) -> str:
    """Issue 5's target for the figure, and whether it is met."""
    found = TARGETS.get(str(r["figure"]))
    if found is None or r.get(found[2]) is None:
        return ""
    op, goal, key = found
    met = r[key] >= goal if op == ">=" else r[key] <= goal
    what = "p99 " if key == "p99_ms" else ""
    unit = "ms" if key == "p99_ms" else str(r.get("unit", ""))
    return f"{what}{'≥' if op == '>=' else '≤'} {goal:,g} {unit}: {'met' if met else 'gap'}"


def _number(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool):
        if abs(value) < 1:
            return f"{value:,.4f}"
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"
    return "" if value is None else str(value)


def table(records: list[dict[str, Any]]) -> list[list[str]]:
    header = ["figure", "setup", "value", "p50", "p99", "errors", "target"]
    return [header] + [
        [
            str(r["figure"]),
            _setup(r),
            (
                f"{r['value']:.2f} ×"
                if r.get("unit") == "×"
                else f"{_number(r.get('value'))} {r.get('unit', '')}".strip()
            ),
            f"{r['p50_ms']:.1f} ms" if "p50_ms" in r else "",
            f"{r['p99_ms']:.1f} ms" if "p99_ms" in r else "",
            str(r["errors"]) if "errors" in r else "",
            target(r),
        ]
        for r in records
    ]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * len(rows[0])]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def machine(args: argparse.Namespace) -> dict[str, str]:
    try:
        pg = postgres_version(args.pg_admin_url)
    except Exception as e:  # the doc still records the run
        pg = f"unknown ({type(e).__name__})"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "postgresql": pg,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def doc_section(
    records: list[dict[str, Any]],
    commands: list[str],
    info: dict[str, str],
    loads: tuple[str, str],
    minutes: float,
) -> str:
    labels = {
        "server_command": "",
        "projector_command": "beside it: ",
        "wrk_command": "",
        "command": "",
        "script": "insert.sql = ",
    }
    inner = [
        f"- {r['figure']}: {label}`{r[key]}`"
        for r in records
        for key, label in labels.items()
        if r.get(key)
    ]
    errors = [r for r in records if r.get("errors")]
    shown_args = " ".join(sys.argv[1:])
    return "\n".join(
        [
            "",
            f"## {time.strftime('%Y-%m-%d')} — `make bench` (issues 5 and 18)",
            "",
            "Figures: " + ", ".join(f"`{r['figure']}`" for r in records) + ".",
            "",
            f"Machine: {info['nproc']} cores ({info['cpu']}), {info['postgresql']} on the same "
            f"machine, Python {info['python']}, Linux {info['kernel']}. Load average (1, 5, 15 "
            f"min) {loads[0]} before and {loads[1]} after the run ({minutes:.1f} min); the "
            "machine is shared with other work, so read these figures as rough. What each "
            "figure means: `bench/README.md`.",
            "",
            f"Command: `make bench{f' BENCH_ARGS={shlex.quote(shown_args)}' if shown_args else ''}`"
            ", i.e. the steps:",
            "",
            *[f"- `{c}`" for c in commands],
            "",
            markdown_table(table(records)),
            "",
            "Issue 18's targets, read against this run (`bench/targets.py`):",
            "",
            markdown_table(issue18.rows(records)),
            "",
            (
                f"Errors (non-201 responses, socket errors, failed transactions) in "
                f"{', '.join(str(r['figure']) for r in errors)}: see the JSON lines."
                if errors
                else "No errors in any figure (no non-201 response, no socket error, no "
                "failed transaction)."
            ),
            "",
            "Commands inside the steps (ports, paths and databases are this run's):",
            "",
            *inner,
            "",
            "<details><summary>The JSON lines</summary>",
            "",
            "```",
            *[json.dumps(r, ensure_ascii=False) for r in records],
            "```",
            "",
            "</details>",
            "",
        ]
    )


def run_plain_steps(
    steps: list[Step], args: argparse.Namespace, records: list[dict[str, Any]], commands: list[str]
) -> list[str]:
    """The steps not on the big log, in order (figures and commands collected); those that
    failed. A step whose script does not exist yet gives a `skipped` figure."""
    failed = []
    for step in steps:
        if not (REPO / (step.module.replace(".", "/") + ".py")).exists():
            say(f"step {step.name}: {step.module} does not exist yet, skipped")
            records.append(skipped(step))
            continue
        found, status, shown = run_step(step, args)
        records += found
        commands.append(shown)
        if status != 0:
            failed.append(step.name)
    return failed


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    exit_on_sigterm()
    started = time.monotonic()
    load_before = load_average()
    records: list[dict[str, Any]] = []
    commands: list[str] = []
    failed = []
    chosen = [
        step
        for step in STEPS
        if not ((args.only and step.name not in args.only) or step.name in args.skip)
    ]
    failed += run_plain_steps([s for s in chosen if not s.on_big_log], args, records, commands)
    on_log = [s for s in chosen if s.on_big_log and not (args.reuse_log and s.name == "biglog")]
    for store in args.log_stores if on_log else []:
        url = log_url(store, args)
        if store == "sqlite":
            SQLITE_LOG_DIR.mkdir(parents=True, exist_ok=True)
        try:
            for step in on_log:
                found, status, shown = run_step(step, args, ["--database-url", url])
                records += found
                commands.append(shown)
                if status != 0:
                    failed.append(f"{step.name} ({store})")
                    if step.name == "biglog":
                        break  # nothing to measure on
        finally:
            if not args.keep_log and any(s.name == "biglog" for s in on_log):
                with shielded():
                    recreate(url, create=False)
                say(f"dropped the big log {url}")
    for record in derived(records):
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        records.append(record)
    minutes = (time.monotonic() - started) / 60
    sys.stdout.write("\n" + text_table(table(records)) + "\n")
    sys.stdout.write("\n" + text_table(issue18.rows(records)) + "\n")
    sys.stdout.flush()
    if not args.no_doc and records:
        section = doc_section(
            records, commands, machine(args), (load_before, load_average()), minutes
        )
        with args.doc.open("a") as doc:
            doc.write(section)
        say(f"appended a section to {args.doc}")
    if failed:
        say(f"failed or saw errors: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
