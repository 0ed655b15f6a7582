"""The big log's store, shared by `bench/biglog.py`, `replay.py`, `queries.py` and `expiry.py`:
where it is by default, the options that name it, how to start it afresh, copy it, and give
PostgreSQL its statistics, and the plumbing of their JSON lines.

`analyze()` matters: with autovacuum off (as on the development machine's cluster) no table
of a bulk-loaded log ever gets statistics, and the prepared statement eventsourcing reads an
aggregate with (`... WHERE originator_id = $1 ORDER BY originator_version`) switches to a
generic plan that expects ~5 % of the table per aggregate: a parallel bitmap scan, a sort and
JIT, ~30 ms per read instead of a fraction of one. A production cluster's autovacuum would have
analysed the tables; the scripts do what it would have done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_biglog"
SMALL_URL = "postgresql://postgres@127.0.0.1:5432/bench_biglog_small"
HEAVY_CARD = "900000000001"  # the clinic account with 2,000+ events
TIMEZONE = "Asia/Shanghai"
MASTER_KEY_HEX = "00" * 32
COPY_SUFFIX = "_copy"


def database_url(target: str | None, small: bool = False) -> str:
    """A database URL (default: the big log's, or the small one's), or a SQLite path made one."""
    target = target or (SMALL_URL if small else DEFAULT_URL)
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).resolve()}"


def store_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def add_store_arguments(parser: argparse.ArgumentParser, what: str = "the big log") -> None:
    """`--database-url` and `--small`, alike in every big-log script."""
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"{what}: postgresql://..., sqlite:///path or a SQLite file path (default "
        f"{DEFAULT_URL}; with --small {SMALL_URL})",
    )
    parser.add_argument("--small", action="store_true", help="the small log (biglog --small)")


def parser_for(prog: str, doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=(doc or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )


def load_average() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def command_of(module: str) -> str:
    """This script's command line, as recorded with its figures."""
    return shlex.join([".venv/bin/python", "-m", module, *sys.argv[1:]])


def emit(figures: Iterable[dict[str, Any]], **common: Any) -> None:
    """One JSON line per figure (with `common` added), flushed as it is printed."""
    for figure in figures:
        figure.update(common)
        print(json.dumps(figure, ensure_ascii=False), flush=True)


def _sqlite_path(url: str) -> Path:
    return Path(url[len("sqlite:///") :])


def _sqlite_files(path: Path) -> list[Path]:
    """The log's file and its views' (`ledger.db`, `ledger.history.db`, ...)."""
    stem = path.name.removesuffix(".db")
    return [path, *sorted(path.parent.glob(f"{stem}.*.db"))]


def _admin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres", query="")), parts.path.lstrip("/")


def recreate(url: str, create: bool = True) -> None:
    """Drop (and `create` again) the PostgreSQL database, or delete the SQLite files of log
    and views."""
    if url.startswith("sqlite"):
        for file in _sqlite_files(_sqlite_path(url)):
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{file}{suffix}").unlink(missing_ok=True)
        return
    admin, name = _admin(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


class BackendCpu:
    """CPU seconds used by the PostgreSQL backends serving one database while a block runs:
    a thread reads /proc every `every` seconds and keeps each backend's last CPU time (a
    backend that ends between two reads loses at most its last interval). Zero on SQLite."""

    def __init__(self, url: str, every: float = 0.25) -> None:
        self.database = "" if url.startswith("sqlite") else _admin(url)[1]
        self.every = every
        self.seconds = 0.0
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._seen: dict[int, tuple[int, int]] = {}  # pid -> (ticks when counting began, last)
        self._started = False
        self._thread = threading.Thread(target=self._run, name="backend-cpu", daemon=True)

    def _sample(self) -> None:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
                if not command.startswith(b"postgres: ") or (
                    f" {self.database} ".encode() not in command
                ):
                    continue
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            rest = stat[stat.rindex(")") + 2 :].split()
            ticks = int(rest[11]) + int(rest[12])  # utime + stime
            first, _ = self._seen.get(int(entry.name), (0 if self._started else ticks, 0))
            self._seen[int(entry.name)] = (first, ticks)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self) -> BackendCpu:
        if self.database:
            self._sample()  # backends already there count from now
            self._started = True
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.database:
            self._stop.set()
            self._thread.join()
            self._sample()
            used = sum(last - first for first, last in self._seen.values())
            self.seconds = round(used / self._ticks, 1)


def analyze(url: str) -> float:
    """ANALYZE every table of the store (what autovacuum would have done); the seconds taken."""
    started = time.perf_counter()
    if url.startswith("sqlite"):
        for file in _sqlite_files(_sqlite_path(url)):
            with contextlib.closing(sqlite3.connect(file)) as conn:
                conn.execute("ANALYZE")
                conn.commit()
    else:
        parts = urlsplit(url)
        with psycopg.connect(urlunsplit(parts._replace(query="")), autocommit=True) as conn:
            conn.execute("ANALYZE")
    return round(time.perf_counter() - started, 1)


@contextlib.contextmanager
def fresh_copy(url: str) -> Iterator[str]:
    """A throwaway copy of the store at `url` (log, views, statistics), removed afterwards:
    a PostgreSQL database made from it as a template, or copies of the SQLite files."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        stem = path.name.removesuffix(".db")
        copy_path = path.with_name(stem + COPY_SUFFIX + ".db")
        try:
            for file in _sqlite_files(path):
                for suffix in ("", "-wal"):
                    source = Path(f"{file}{suffix}")
                    if source.exists():
                        copy = source.with_name(source.name.replace(stem, stem + COPY_SUFFIX, 1))
                        shutil.copyfile(source, copy)
            yield f"sqlite:///{copy_path}"
        finally:
            # the copies, and any view file the run made beside them (else the next copy of a
            # store without that view would find it, caught up, from this run)
            for file in _sqlite_files(copy_path):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{file}{suffix}").unlink(missing_ok=True)
        return
    admin, name = _admin(url)
    copy_name = name + COPY_SUFFIX
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{copy_name}" TEMPLATE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{copy_name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy_name}" WITH (FORCE)')
