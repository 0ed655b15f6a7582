"""Where the time goes, for the big-log figures (`bench/replay.py`, `bench/expiry.py`).

Two ways: cProfile in process (exact call counts, but it slows Python code down several times,
so it tells less about I/O-bound runs), and py-spy (a sampler outside the process: wall-clock
samples including waits, almost no overhead), whose raw output is folded here into the
functions with the most samples of their own and the most samples in all. py-spy is not a
project dependency: `.venv/bin/pip install py-spy` (found beside the interpreter), or install
it anywhere (`pip install --target /tmp/pyspy py-spy`) and pass its path.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PY_SPY_CANDIDATES = (
    "py-spy",
    str(Path(sys.executable).with_name("py-spy")),  # `.venv/bin/pip install py-spy`
    str(Path(tempfile.gettempdir()) / "pyspy" / "bin" / "py-spy"),
)
_LINE = re.compile(r":\d+\)$")


def cprofile_top(profile: cProfile.Profile, limit: int = 10) -> list[dict[str, Any]]:
    """The functions with the most time of their own, with their cumulative time."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}" if line else file
        rows.append(
            {
                "function": f"{where}({name})",
                "calls": calls,
                "own_s": round(own, 2),
                "own_share": round(own / total, 3) if total else None,
                "cumulative_s": round(cumulative, 2),
            }
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)
    return rows[:limit]


def py_spy_binary(given: str | None = None) -> str | None:
    for candidate in (given, *PY_SPY_CANDIDATES):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def py_spy_command(binary: str, out: Path, rate: int = 100, idle: bool = True) -> list[str]:
    """`py-spy record` writing raw folded stacks, idle (waiting) samples included unless
    `idle` is false (then only samples of threads on a CPU: where the CPU time goes)."""
    options = [*(["--idle"] if idle else []), "--threads", "-r", str(rate), "--format", "raw"]
    return [binary, "record", *options, "-o", str(out)]


@contextmanager
def py_spy_self(binary: str, out: Path, rate: int = 100) -> Iterator[None]:
    """Sample this very process with py-spy while the block runs."""
    command = [*py_spy_command(binary, out, rate), "--pid", str(os.getpid())]
    sampler = subprocess.Popen(  # noqa: S603 - the py-spy the caller named
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        sampler.send_signal(signal.SIGINT)
        try:
            sampler.wait(timeout=60)
        except subprocess.TimeoutExpired:
            sampler.kill()


def _function(frame: str) -> str:
    return _LINE.sub(")", frame.strip())


def fold(raw: Path, limit: int = 10) -> dict[str, Any]:
    """The busiest thread's samples in py-spy's raw output: the top functions by samples of
    their own (the leaf frame) and by samples in all (anywhere on the stack)."""
    by_thread: dict[str, list[tuple[list[str], int]]] = {}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        by_thread.setdefault(frames[0], []).append((frames[1:], int(count)))
    if not by_thread:
        return {"samples": 0, "top_own": [], "top_inclusive": []}
    thread, stacks = max(by_thread.items(), key=lambda item: sum(n for _, n in item[1]))
    total = sum(n for _, n in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, n in stacks:
        if frames:
            own[_function(frames[-1])] += n
        for function in {_function(f) for f in frames}:
            inclusive[function] += n

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        """The top ones, leaving out the frames under which nearly everything ran (main ...)."""
        return [
            {"function": function, "samples": n, "share": round(n / total, 3)}
            for function, n in counter.most_common()
            if n < 0.98 * total
        ][:limit]

    return {
        "thread": thread,
        "samples": total,
        "top_own": rows(own),
        "top_inclusive": rows(inclusive),
    }


def add_py_spy_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """`--py-spy [BIN]` and `--py-spy-out`, alike in `bench/replay.py` and `bench/expiry.py`."""
    parser.add_argument(
        "--py-spy",
        nargs="?",
        const="py-spy",
        default=None,
        metavar="BIN",
        help="sample the measured run with py-spy (BIN: its path; default py-spy on the PATH, "
        "in the venv or /tmp/pyspy/bin/py-spy) and print where its time goes",
    )
    parser.add_argument(
        "--py-spy-out",
        default=str(Path(tempfile.gettempdir()) / f"ledger-{name}.pyspy.txt"),
        help="py-spy's raw output",
    )


def py_spy_from(args: argparse.Namespace) -> tuple[str, Path] | None:
    """The py-spy binary and raw output the options ask for (None: no sampling)."""
    if not args.py_spy:
        return None
    binary = py_spy_binary(args.py_spy)
    if binary is None:
        raise SystemExit(f"no py-spy at {args.py_spy!r}: .venv/bin/pip install py-spy")
    return binary, Path(args.py_spy_out)


def report_py_spy(label: str, raw: Path) -> None:
    """Fold py-spy's raw output: one JSON line, then the top functions for a human."""
    folded = fold(raw)
    print(json.dumps({"profile": f"{label}-py-spy", "raw": str(raw), **folded}))
    print(f"{label} under py-spy: {folded['samples']:,} samples; top own time:")
    for row in folded["top_own"]:
        print(f"  {row['share']:>6.1%} own  {row['function']}")
    print("top inclusive:")
    for row in folded["top_inclusive"]:
        print(f"  {row['share']:>6.1%} in all  {row['function']}")


def report_cprofile(label: str, top: list[dict[str, Any]]) -> None:
    print(json.dumps({"profile": label, "top_own_time": top}, ensure_ascii=False))
    for row in top:
        print(f"  {row['own_s']:>8} s own {row['cumulative_s']:>8} s cum  {row['function']}")


# Leaf frames of a thread that waits rather than works (py-spy cannot always tell a wait in C
# code from work: a SimpleQueue.get, uvloop's select, psycopg's wait all show as the caller).
WAITS = (
    "Queue.get",
    "GroupCommit._run",
    "_recv (multiprocessing",
    "Runner.run (asyncio",
    "wait (threading",
    "Condition.wait",
    "Event.wait",
    "select (selectors",
    "_worker (concurrent",
    "Thread.join",
    "Connection.wait",
    "wait_conn",
    "sleep",
    "poll (",
    "_run_once",
)


def fold_busy(raw: Path, limit: int = 25) -> dict[str, Any]:
    """All threads' samples in py-spy's raw output, those whose leaf frame is a wait left out:
    the functions with the most busy samples in all (anywhere on the stack) and of their own."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_function(f) for f in stack.split(";")[1:]]
        if not frames or any(w in frames[-1] for w in WAITS):
            waiting += int(count)
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for function in set(frames):
            inclusive[function] += int(count)

    def rows(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": function, "samples": n, "share": round(n / total, 3)}
            for function, n in counter.most_common()
            if n < 0.98 * total and not function.startswith(("Thread.", "<module>", "_run_code"))
        ][:limit]

    return {
        "busy_samples": total,
        "waiting_samples": waiting,
        "top_inclusive": rows(inclusive),
        "top_own": rows(own),
    }


@contextmanager
def py_spy_pids(
    binary: str, targets: dict[str, int], out: Path, rate: int = 100
) -> Iterator[dict[str, Path]]:
    """Sample each named process with py-spy (all its threads, only while on a CPU) while the
    block runs; yields where each one's raw output goes (`out`/NAME.pyspy.txt)."""
    out.mkdir(parents=True, exist_ok=True)
    raws = {name: out / f"{name}.pyspy.txt" for name in targets}
    samplers = [
        subprocess.Popen(  # noqa: S603 - the py-spy the caller named
            [*py_spy_command(binary, raws[name], rate, idle=False), "--pid", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in targets.items()
    ]
    time.sleep(1.0)  # let them attach
    try:
        yield raws
    finally:
        for sampler in samplers:
            sampler.send_signal(signal.SIGINT)
        for sampler in samplers:
            try:
                sampler.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sampler.kill()
