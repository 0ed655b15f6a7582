"""`ledger project`, `ledger rebuild`, `ledger verify` and `ledger as-of`: running projections
apart from the API, rebuilding and checking their views, and a member's state at any moment.

- `project [NAME…]` follows the log with the named projections (all by default) until stopped
  (SIGTERM/SIGINT): run it beside API processes started with `LEDGER_PROJECTIONS=off`.
- `rebuild [NAME…]` empties the views and replays the whole log into them. Stop whatever runs
  those projections first (an API with inline projections, or `ledger project`).
- `verify` checks every aggregate's hash chain and every closed month's digest
  (`replay_tools.tamper`), then replays the log into scratch views (`verify_*`) and compares
  them, table by table, with the live ones at the same log position; exit 1 and the first
  broken link or differences if any. `--chains-only` skips the views.
- `as-of MEMBER TIME` prints the member's balance, lots and tier at business time TIME.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any

import msgspec

from ledger.application import open_ledger
from ledger.settings import Settings
from projections.failures import ProjectionFailed
from projections.runtime import PROJECTIONS, Projections
from projections.sqlview import Row
from replay_tools.progress import progress, summary
from replay_tools.tamper import check_chains, check_digests, plain, stored_rows

VERIFY_PREFIX = "verify_"
VIEW_WAIT_SECONDS = 10  # for live views to reach one position before comparing
VERIFY_ATTEMPTS = 5
DIFFERENCES_SHOWN = 10


def _head(settings: Settings) -> int:
    ledger = open_ledger(settings)
    try:
        return ledger.core.log_position()
    finally:
        ledger.close()


def _names(args: argparse.Namespace) -> list[str] | None:
    names: list[str] = args.projections
    unknown = sorted(set(names) - set(PROJECTIONS))
    if unknown:
        raise SystemExit(
            f"unknown projection(s) {', '.join(unknown)}: use {', '.join(PROJECTIONS)}"
        )
    return names or None


def _project(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    projections = Projections(settings, _names(args))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    projections.start()
    summary(f"project: following the log with {', '.join(projections.names)}")
    try:
        while not stop.wait(10):
            sys.stderr.write(f"positions {projections.positions()}\n")
        at = projections.positions()
    finally:
        projections.stop()
    summary(f"project: stopped at {', '.join(f'{name} {n}' for name, n in at.items())}")
    return 0


def _rebuild(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    head = _head(settings)
    projections = Projections(settings, _names(args))
    try:
        projections.drop()
        with progress(f"rebuild {', '.join(projections.names)}", total=head) as tracker:
            projections.replay(head, lambda at: tracker.advance(at - tracker.done))
            elapsed = tracker.elapsed
    finally:
        projections.stop()
    rate = head / elapsed if elapsed > 0 else 0.0
    summary(
        f"rebuild: {', '.join(projections.names)} from {head} events "
        f"in {elapsed:.1f} s ({rate:,.0f} events/s)"
    )
    return 0


def _reindex(args: argparse.Namespace) -> int:
    """The identity index for members that have none: after an in-place upgrade of a store
    recorded before the index existed (`ledger import` does the same for an imported log)."""
    ledger = open_ledger(Settings.from_env())
    try:
        written = ledger.members.reindex()
    finally:
        ledger.close()
    summary(f"reindex: {written} identity index rows written")
    return 0


def differences(live: Projections, scratch: Projections) -> list[str]:
    """Rows that differ between the live and the scratch views (empty when identical)."""
    found: list[str] = []
    for name in live.names:
        live_tables = dict(live.views[name].dump())
        scratch_tables = dict(scratch.views[name].dump())
        for table, rows in live_tables.items():
            found += _compare(f"{name}.{table}", rows, scratch_tables.get(table, []))
    return found


def _compare(table: str, live: list[Row], rebuilt: list[Row]) -> list[str]:
    live_set, rebuilt_set = set(live), set(rebuilt)
    out = [
        f"{table}: live has {row!r}, a replay does not" for row in live if row not in rebuilt_set
    ]
    out += [
        f"{table}: a replay has {row!r}, live does not" for row in rebuilt if row not in live_set
    ]
    return out


def _verify_seals(settings: Settings, head: int) -> bool:
    """The chains and the closed months' digests; prints what is broken, True if nothing."""
    ledger = open_ledger(settings)
    started = time.perf_counter()
    try:
        with progress("verify: chains", total=head) as tracker:
            chains = check_chains(
                stored_rows(ledger),
                plain(ledger),
                shown=DIFFERENCES_SHOWN,
                progress=lambda done: tracker.advance(done - tracker.done),
            )
        months, digests = check_digests(ledger)
    finally:
        ledger.close()
    elapsed = time.perf_counter() - started
    for link in chains.first:
        sys.stdout.write(link.line() + "\n")
    for line in digests[:DIFFERENCES_SHOWN]:
        sys.stdout.write(line + "\n")
    summary(
        f"verify: chains of {chains.aggregates} aggregates over {chains.events} events: "
        + (f"{chains.broken} broken" if chains.broken else "intact")
        + f"; digests of {months} closed months: "
        + (f"{len(digests)} wrong" if digests else "match")
        + f" ({elapsed:.1f} s)"
    )
    return not chains.broken and not digests


def _verify(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    head = _head(settings)
    sealed = _verify_seals(settings, head)
    views = 0 if args.chains_only else _verify_views(args, settings, head)
    return 0 if sealed and views == 0 else 1


def _cannot_apply(live: Projections, scratch: Projections, head: int) -> list[str]:
    """The events a projection cannot apply: recorded by whichever process runs it, or, when
    none is recorded and the live views do not move, found by replaying the log (at once:
    verify never waits for a view that has stopped)."""
    recorded = [failure.describe() for failure in live.failed().values()]
    if recorded:
        return recorded
    try:
        scratch.drop()
        scratch.replay(head)
    except ProjectionFailed as e:
        return [e.failure.describe()]
    return []


def _verify_views(args: argparse.Namespace, settings: Settings, head: int) -> int:
    live = Projections(settings, _names(args))
    scratch = Projections(settings, _names(args), prefix=VERIFY_PREFIX)
    started = time.perf_counter()
    found: list[str] = []
    target = 0
    try:
        stuck = [f.describe() for f in live.failed().values()]
        if stuck:
            return _stuck(stuck)
        scratch.drop()
        for _ in range(VERIFY_ATTEMPTS):
            # Compare where both sides stand at one log position (live views may be moving).
            positions = live.positions()
            target = min(positions.values(), default=0)
            if set(positions.values()) != {target}:
                try:
                    live.wait(max(positions.values()), timeout=VIEW_WAIT_SECONDS)
                except TimeoutError:
                    stuck = _cannot_apply(live, scratch, head)
                    if stuck:
                        return _stuck(stuck)
                    scratch.drop()
                continue
            with progress("verify: replaying into scratch views", total=target) as tracker:
                scratch.replay(target)
                tracker.advance(target)
            found = differences(live, scratch)
            if live.positions() == positions:
                break
        else:
            sys.stderr.write("verify: the live views kept moving; compared at the last position\n")
        scratch.drop()
    finally:
        live.stop()
        scratch.stop()
    elapsed = time.perf_counter() - started
    names = ", ".join(live.names)
    behind = (
        f" (the log holds {head}: run the projections to check the rest)" if target < head else ""
    )
    if found:
        for line in found[:DIFFERENCES_SHOWN]:
            sys.stdout.write(line + "\n")
        summary(
            f"verify: {len(found)} differences in {names} at event {target}{behind} "
            f"({elapsed:.1f} s)"
        )
        return 1
    summary(f"verify: {names} identical to a replay of {target} events{behind} ({elapsed:.1f} s)")
    return 0


def _stuck(failures: list[str]) -> int:
    for line in failures:
        sys.stdout.write(f"verify: {line}\n")
    summary(f"verify: {len(failures)} projection(s) cannot apply an event (see above)")
    return 1


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("a time needs an offset, e.g. 2026-04-01T00:00:00+08:00")
    return value


def _as_of(args: argparse.Namespace) -> int:
    ledger = open_ledger(Settings.from_env())
    try:
        state = ledger.members.as_of(args.member, args.time, args.recorded_as_of)
    finally:
        ledger.close()
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(state)).decode() + "\n")
    summary(
        f"as-of: {state.member_id} at {args.time.isoformat()}: {state.points} points, "
        f"{state.pending_points} pending, {state.stored_value_fen} fen stored value "
        f"({state.events_counted} events)"
    )
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    choices = sorted(PROJECTIONS)
    project = commands.add_parser("project", help="run projections in this process until stopped")
    project.add_argument("projections", nargs="*", metavar="PROJECTION", help=f"one of {choices}")
    project.set_defaults(run=_project)
    rebuild = commands.add_parser("rebuild", help="drop views and rebuild them from the log")
    rebuild.add_argument("projections", nargs="*", metavar="PROJECTION", help=f"one of {choices}")
    rebuild.set_defaults(run=_rebuild)
    reindex = commands.add_parser(
        "reindex",
        help="write the identity index rows missing beside the log (after an in-place upgrade)",
    )
    reindex.set_defaults(run=_reindex)
    verify = commands.add_parser(
        "verify",
        help="check the hash chains, the closed months' digests, and the views against a replay",
    )
    verify.add_argument("projections", nargs="*", metavar="PROJECTION", help=f"one of {choices}")
    verify.add_argument(
        "--chains-only", action="store_true", help="check the hash chains and digests only"
    )
    verify.set_defaults(run=_verify)
    as_of = commands.add_parser("as-of", help="a member's state at a business time")
    as_of.add_argument("member", metavar="MEMBER")
    as_of.add_argument("time", type=_instant, metavar="TIME")
    as_of.add_argument("--recorded-as-of", type=_instant, default=None)
    as_of.set_defaults(run=_as_of)
