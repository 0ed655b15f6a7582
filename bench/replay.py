"""Issue 5, figure 3: rebuilding every projection from the big log, and verifying the views.

Runs the installed `ledger rebuild` (all three projections) under `/usr/bin/time -v`, as an
operator would, on the log `bench/biglog.py` wrote, and reports the command's own events/s (its
summary line) and the process's peak RSS; then times `ledger verify` the same way. Targets
(issue 5): rebuild ≥ 50,000 events/s with RSS ≤ 300 MB.

After the rebuild the views are ANALYZEd (what autovacuum would do; `bench/bigstore.py`). The
exit status is 1 when verify does not find the views identical (or fails).

Where the time goes: `--py-spy` samples the measured rebuild from outside (wall clock, waits
included, ~no overhead; see `bench/profiling.py`) and prints the top functions;
`--profile-events N` replays the first N events in this process under cProfile into scratch
views (`profile_*`, emptied afterwards; the live views are not touched).

    .venv/bin/python -m bench.replay --py-spy
    .venv/bin/python -m bench.replay --small --profile-events 20000
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.bigstore import (
    MASTER_KEY_HEX,
    BackendCpu,
    add_store_arguments,
    analyze,
    command_of,
    database_url,
    emit,
    load_average,
    parser_for,
    store_kind,
)
from bench.profiling import (
    add_py_spy_arguments,
    cprofile_top,
    py_spy_command,
    py_spy_from,
    report_cprofile,
    report_py_spy,
)
from ledger.settings import Settings

TIME = "/usr/bin/time"
TARGET_EVENTS_PER_S = 50_000
TARGET_RSS_MB = 300
PROFILE_PREFIX = "profile_"


def ledger_command() -> str:
    """The installed `ledger` command beside this interpreter (the project's venv)."""
    found = Path(sys.executable).with_name("ledger")
    return str(found) if found.exists() else "ledger"


def timed(command: list[str], url: str, sampler: Sequence[str] = ()) -> dict[str, Any]:
    """Run `command` under `/usr/bin/time -v` (and under `sampler`, a py-spy command line, if
    given); its stdout, exit status, wall time, peak RSS."""
    env = os.environ | {"LEDGER_DATABASE_URL": url, "LEDGER_MASTER_KEY": MASTER_KEY_HEX}
    started = time.perf_counter()
    # /usr/bin/time outermost: the peak RSS is the largest process's (the ledger's, not py-spy's)
    wrapped = [TIME, "-v", *sampler, "--", *command] if sampler else [TIME, "-v", *command]
    with BackendCpu(url) as backends:
        done = subprocess.run(  # noqa: S603 - our own command line
            wrapped, env=env, capture_output=True, text=True, check=False
        )
    wall = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    cpu = [
        float(found.group(1))
        for label in ("User", "System")
        if (found := re.search(rf"{label} time \(seconds\): ([\d.]+)", done.stderr))
    ]
    return {
        "cpu_seconds": {"ledger": round(sum(cpu), 1), "postgres_backends": backends.seconds},
        "returncode": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
        "load_average": load_average(),
    }


def rebuild(url: str, sampler: Sequence[str] = ()) -> dict[str, Any]:
    run = timed([ledger_command(), "rebuild"], url, sampler)
    if run["returncode"] != 0:
        sys.stderr.write(run["stdout"] + run["stderr"])
        raise SystemExit(f"ledger rebuild failed with exit status {run['returncode']}")
    ours = [x for x in run["stdout"].splitlines() if x.startswith("rebuild:")]  # not py-spy's
    line = ours[-1] if ours else run["stdout"].strip()[-300:]
    found = re.search(r"from (\d+) events in ([\d.]+) s \(([\d,]+) events/s\)", line)
    if found is None:
        raise SystemExit(f"unexpected summary line from ledger rebuild: {line!r}")
    events, seconds, rate = int(found.group(1)), float(found.group(2)), found.group(3)
    return {
        "bench": "replay",
        "figure": "rebuild",
        "value": int(rate.replace(",", "")),
        "unit": "events/s",
        "store": store_kind(url),
        "events": events,
        "seconds": seconds,
        "events_per_s": int(rate.replace(",", "")),
        "wall_seconds": run["wall_seconds"],
        "peak_rss_mb": run["peak_rss_mb"],
        "load_average": run["load_average"],
        # CPU the rebuild itself used (with py-spy: py-spy's too), and the database for it:
        # events per CPU second tell what the two cores could do on a quiet machine
        "cpu_seconds": run["cpu_seconds"],
        "events_per_cpu_s": {
            side: round(events / used) if used else None
            for side, used in run["cpu_seconds"].items()
        },
        "target_events_per_s": TARGET_EVENTS_PER_S,
        "target_rss_mb": TARGET_RSS_MB,
        "summary": line,
        "sampled_by_py_spy": bool(sampler),
        "command": f"LEDGER_DATABASE_URL={url} LEDGER_MASTER_KEY=<64 zeros> {TIME} -v ledger rebuild",
    }


def verify(url: str) -> dict[str, Any]:
    run = timed([ledger_command(), "verify"], url)
    lines = run["stdout"].strip().splitlines()
    error = run["stderr"].split("\tCommand being timed:", 1)[0].strip()  # before time's report
    line = lines[-1] if lines else error[-2000:]
    found = re.search(r"replay of (\d+) events", line) or re.search(r"at event (\d+)", line)
    events = int(found.group(1)) if found else None
    return {
        "bench": "replay",
        "figure": "verify",
        "value": run["wall_seconds"],
        "unit": "s",
        "store": store_kind(url),
        "identical": run["returncode"] == 0,
        "completed": bool(lines) and lines[-1].startswith("verify:"),
        "error": None if lines and lines[-1].startswith("verify:") else error[-2000:],
        "errors": 0 if run["returncode"] == 0 else 1,
        "events": events,
        "wall_seconds": run["wall_seconds"],
        "events_per_s": round(events / run["wall_seconds"]) if events else None,
        "peak_rss_mb": run["peak_rss_mb"],
        "load_average": run["load_average"],
        "summary": line,
        "differences": lines[:-1][:10] if run["returncode"] == 1 else [],
        "command": f"LEDGER_DATABASE_URL={url} LEDGER_MASTER_KEY=<64 zeros> {TIME} -v ledger verify",
    }


def profile_replay(url: str, events: int, out: str | None) -> dict[str, Any]:
    """Replay the first `events` events under cProfile into scratch views (then dropped)."""
    from projections.runtime import Projections  # noqa: PLC0415 - only when profiling

    settings = Settings(database_url=url, master_key=bytes(32))
    scratch = Projections(settings, prefix=PROFILE_PREFIX)
    try:
        scratch.drop()
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        scratch.replay(events)
        profile.disable()
        seconds = time.perf_counter() - started
        scratch.drop()
    finally:
        scratch.stop()
    if out:
        profile.dump_stats(out)
    return {
        "profile": "rebuild",
        "events": events,
        "seconds_under_cprofile": round(seconds, 1),
        "events_per_s_under_cprofile": round(events / seconds),
        "top_own_time": cprofile_top(profile),
        "stats_file": out,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = parser_for("bench.replay", __doc__)
    add_store_arguments(parser)
    parser.add_argument("--no-verify", action="store_true", help="skip `ledger verify`")
    parser.add_argument(
        "--no-analyze", action="store_true", help="do not ANALYZE the rebuilt views"
    )
    parser.add_argument(
        "--skip-rebuild", action="store_true", help="only verify (the views rebuilt already)"
    )
    parser.add_argument(
        "--profile-events",
        type=int,
        default=0,
        help="also profile an in-process replay of the first N events (0: no profile)",
    )
    parser.add_argument("--profile-out", default=None, help="write the cProfile stats here")
    add_py_spy_arguments(parser, "rebuild")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    url = database_url(args.database_url, args.small)
    command = command_of("bench.replay")
    py_spy = py_spy_from(args)
    sampler = py_spy_command(*py_spy) if py_spy else []
    figures: list[dict[str, Any]] = []
    if not args.skip_rebuild:
        r = rebuild(url, sampler)
        rss = {
            "bench": "replay",
            "figure": "rebuild-peak-rss",
            "value": r["peak_rss_mb"],
            "unit": "MB",
            "store": r["store"],
            "events": r["events"],
            "target": TARGET_RSS_MB,
            "load_average": r["load_average"],
            "command": r["command"],
        }
        figures += [r, rss]
        emit(figures, script=command)
        print(
            f"rebuild: {r['events']:,} events in {r['seconds']} s = {r['events_per_s']:,} events/s "
            f"(target {TARGET_EVENTS_PER_S:,}), peak RSS {r['peak_rss_mb']} MB (target "
            f"{TARGET_RSS_MB})",
            flush=True,
        )
        if not args.no_analyze:  # the rebuilt views' statistics, as autovacuum would
            print(json.dumps({"step": "analyze", "seconds": analyze(url)}), flush=True)
        if py_spy:
            report_py_spy("rebuild", py_spy[1])
    if not args.no_verify:
        v = verify(url)
        figures.append(v)
        emit([v], script=command)
        print(
            f"verify: {'identical' if v['identical'] else 'DIFFERENCES' if v['completed'] else 'FAILED'} over {v['events']} "
            f"events in {v['wall_seconds']} s, peak RSS {v['peak_rss_mb']} MB",
            flush=True,
        )
    if args.profile_events:
        p = profile_replay(url, args.profile_events, args.profile_out)
        print(
            f"rebuild profile: {p['events']:,} events under cProfile in "
            f"{p['seconds_under_cprofile']} s; top own time:"
        )
        report_cprofile("rebuild", p.pop("top_own_time"))
        print(json.dumps(p, ensure_ascii=False))
    return figures


if __name__ == "__main__":
    failed = [f for f in main() if f.get("errors")]  # verify found differences or failed
    sys.exit(1 if failed else 0)
