"""Issue 5, figure 5: the expiry run over a million-plus due lots of the big log.

Runs `Queries(ledger, projections).expire(as_of, "bench", now)` in process, as `ledger expire`
does: the members view (rebuilt first if it is behind the log) lists the members with due lots,
and the run decides and saves them in chunks: from the view's heads and lots (D66; members the
view cannot answer for are read), or with `--read-members` each member read from the log as
before D66. Reports lots/s (target ≥ 20,000), members/s, and how many members each path took. The run writes one `PointsExpired` per lot: run it last, or on a copy
(`--fresh-copy`: a PostgreSQL database cloned from the log's as a template, or copies of the
SQLite files; dropped afterwards), so that it can be repeated.

Where the time goes: `--py-spy` samples the measured run from outside (wall clock, waits
included, ~no overhead; py-spy is not a project dependency, see `bench/profiling.py`);
`--profile` runs it under cProfile instead (exact calls, but the figure carries its overhead).
The log should have statistics (`bench/biglog.py` ANALYZEs it; see `bench/bigstore.py`).

    .venv/bin/python -m bench.expiry --fresh-copy --py-spy
    .venv/bin/python -m bench.expiry --small --fresh-copy
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bigstore import (
    add_store_arguments,
    analyze,
    command_of,
    database_url,
    emit,
    fresh_copy,
    load_average,
    parser_for,
    store_kind,
)
from bench.profiling import (
    add_py_spy_arguments,
    cprofile_top,
    py_spy_from,
    py_spy_self,
    report_cprofile,
    report_py_spy,
)
from ledger.application import Ledger
from ledger.services.runs import ExpiryTrace
from ledger.settings import Settings
from projections.queries import Queries
from projections.runtime import Projections

TARGET_LOTS_PER_S = 20_000


def due_lots(projections: Projections, as_of: datetime) -> tuple[int, int]:
    """Lots with points left due at `as_of`, and their members, as the members view has them."""
    from projections.sqlview import utc_text  # noqa: PLC0415

    view = projections.members
    with view.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT COUNT(*) AS lots, COUNT(DISTINCT member_uuid) AS members FROM {lots} "
            "WHERE expires_at <= ? AND remaining > 0",
            (utc_text(as_of),),
        )
        row = cursor.one()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def run(
    url: str,
    as_of: datetime,
    profile_out: str | None,
    profile: bool,
    py_spy: tuple[str, Path] | None = None,
    *,
    from_view: bool = True,
) -> dict[str, Any]:
    trace = ExpiryTrace()
    settings = Settings(database_url=url, master_key=bytes(32))
    ledger = Ledger(settings)
    projections = Projections(settings, ["members"])
    try:
        head = ledger.core.log_position()
        rebuilt_seconds = None
        if projections.positions()["members"] < head:
            started = time.perf_counter()
            projections.drop()
            projections.replay(head)
            rebuilt_seconds = round(time.perf_counter() - started, 1)
            analyze(url)  # the rebuilt view's statistics, as autovacuum would
        lots, members = due_lots(projections, as_of)
        queries = Queries(ledger, projections)
        profiler = cProfile.Profile() if profile or profile_out else None
        sampling = py_spy_self(*py_spy) if py_spy else contextlib.nullcontext()
        with sampling:
            started = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            due = queries.due_members(as_of)
            seen = queries.members_seen(due) if from_view else None
            result = ledger.runs.expire(
                as_of, "bench", datetime.now(UTC), members=due, seen=seen, trace=trace
            )
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - started
        after = ledger.core.log_position()
    finally:
        projections.stop()
        ledger.close()
    figure: dict[str, Any] = {
        "bench": "expiry",
        "figure": "expiry-lots",
        "store": store_kind(url),
        "as_of": as_of.isoformat(),
        "log_events_before": head,
        "due_lots_in_view": lots,
        "due_members_in_view": members,
        "lots_expired": result.lots_expired,
        "points_expired": result.points_expired,
        "members_reviewed": result.members_reviewed,
        "events_written": after - head,
        "seconds": round(seconds, 1),
        "lots_per_s": round(result.lots_expired / seconds) if seconds else None,
        "members_per_s": round(result.members_reviewed / seconds) if seconds else None,
        "target_lots_per_s": TARGET_LOTS_PER_S,
        "members_view_rebuilt_seconds": rebuilt_seconds,
        "decided_from_view": from_view,
        "members_from_view": trace.members_from_view,
        "members_read": trace.members_read,
        "chunks_redone": trace.chunks_redone,
        "profiled": profiler is not None,
        "sampled_by_py_spy": py_spy is not None,
        "load_average": load_average(),
    }
    if profiler is not None:
        figure["top_own_time"] = cprofile_top(profiler)
        if profile_out:
            profiler.dump_stats(profile_out)
    return figure


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = parser_for("bench.expiry", __doc__)
    add_store_arguments(parser)
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        default=None,
        help="ISO time with offset (default now: every lot of the log due by now)",
    )
    parser.add_argument(
        "--fresh-copy", action="store_true", help="run on a throwaway copy of the store"
    )
    parser.add_argument(
        "--read-members",
        action="store_true",
        help="decide every member from a full read (the path before D66), not from the view",
    )
    parser.add_argument("--profile", action="store_true", help="run under cProfile")
    parser.add_argument("--profile-out", default=None, help="write the cProfile stats here")
    add_py_spy_arguments(parser, "expiry")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse(argv)
    url = database_url(args.database_url, args.small)
    as_of = args.as_of or datetime.now(UTC)
    if as_of.tzinfo is None:
        raise SystemExit("--as-of needs an offset, e.g. 2026-11-23T00:00:00+08:00")
    py_spy = py_spy_from(args)
    if args.fresh_copy:
        copying = time.perf_counter()
        with fresh_copy(url) as copy:
            copy_seconds = round(time.perf_counter() - copying, 1)
            lots = run(
                copy, as_of, args.profile_out, args.profile, py_spy, from_view=not args.read_members
            )
        lots["copy_seconds"] = copy_seconds
    else:
        lots = run(
            url, as_of, args.profile_out, args.profile, py_spy, from_view=not args.read_members
        )
    top = lots.pop("top_own_time", None)
    lots["value"], lots["unit"] = lots["lots_per_s"], "lots/s"
    lots["command"] = command_of("bench.expiry")
    members = {
        "bench": "expiry",
        "figure": "expiry-members",
        "value": lots["members_per_s"],
        "unit": "members/s",
        "store": lots["store"],
        "members_reviewed": lots["members_reviewed"],
        "seconds": lots["seconds"],
        "profiled": lots["profiled"],
        "command": lots["command"],
    }
    emit([lots, members])
    print(
        f"expiry: {lots['lots_expired']:,} lots of {lots['members_reviewed']:,} members in "
        f"{lots['seconds']} s = {lots['lots_per_s']:,} lots/s (target "
        f"{TARGET_LOTS_PER_S:,}), {lots['members_per_s']:,} members/s"
        + f"; {lots['members_from_view']:,} members decided from the view, "
        f"{lots['members_read']:,} read, {lots['chunks_redone']} chunks redone"
        + (" [under cProfile]" if lots["profiled"] else "")
    )
    if top is not None:
        report_cprofile("expiry", top)
    if py_spy is not None:
        report_py_spy("expiry", py_spy[1])
    return [lots, members]


if __name__ == "__main__":
    main()
