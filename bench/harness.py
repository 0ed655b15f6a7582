"""Shared plumbing of the benchmark scripts: figures as JSON lines, throwaway PostgreSQL
databases, the `ledger serve` subprocess, `wrk` runs and the machine's description.

Every resource here is a context manager that releases what it took on the way out, also on
Ctrl-C and SIGTERM (`exit_on_sigterm` turns SIGTERM into `SystemExit`, so `finally` runs): a
server is stopped (its whole process group: uvicorn's supervisor and workers), a database is
dropped (`WITH (FORCE)`, so lingering connections do not keep it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_PG_ADMIN_URL = os.environ.get(
    "LEDGER_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DB_PREFIX = "ledger_bench_"


# -- output ------------------------------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    """One figure: a JSON line on stdout (progress and diagnostics go to stderr)."""
    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def say(message: str) -> None:
    """A progress line on stderr, with the wall-clock time."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def command_line(argv: Sequence[str | Path]) -> str:
    """A command as one could paste it into a shell."""
    return shlex.join(str(a) for a in argv)


def exit_on_sigterm() -> None:
    """SIGTERM (and SIGHUP) raise SystemExit, so that `finally` blocks clean up."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Cleanup that a second Ctrl-C or SIGTERM must not cut short: both ignored meanwhile
    (in the main thread; elsewhere signals cannot be changed, and are not delivered)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# -- PostgreSQL ----------------------------------------------------------------------------


def database_url(admin_url: str, name: str) -> str:
    """`admin_url` pointing at database `name` instead."""
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def random_database_name(what: str = "") -> str:
    return f"{DB_PREFIX}{what + '_' if what else ''}{secrets.token_hex(4)}"


def _admin(admin_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(admin_url, autocommit=True, connect_timeout=5)


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """Create database `name` (a copy of `template` if given); its URL."""
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    with _admin(admin_url) as conn:
        conn.execute(statement)
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def throwaway_database(admin_url: str, name: str, template: str | None = None) -> Iterator[str]:
    """A fresh database (URL yielded), dropped on the way out whatever happened."""
    url = create_database(admin_url, name, template)
    say(f"created database {name}" + (f" from {template}" if template else ""))
    try:
        yield url
    finally:
        with shielded():
            drop_database(admin_url, name)
        say(f"dropped database {name}")


def postgres_version(admin_url: str) -> str:
    with _admin(admin_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0]}" if row else "unknown"


# -- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class CpuMeter:
    """CPU time used over an interval, in cores (1.0 = one core busy all along): the whole
    machine (/proc/stat); each named process group (from /proc/PID/stat: `{"server": pgid}`,
    or the API's and the projection process's groups apart); PostgreSQL's processes, all of
    them (`postgres`) and only this run's (`postgres_ours`: the backends connected to
    `pg_database` and the cluster's background processes, WAL writer and checkpointer among
    them, read from pg_stat_activity at both ends); this process's children that ended
    meanwhile (getrusage: the wrk or open-loop client run), as `wrk`."""

    def __init__(
        self,
        server_pgid: int | None = None,
        *,
        groups: dict[str, int] | None = None,
        pg_admin_url: str | None = None,
        pg_database: str | None = None,
    ) -> None:
        self.groups = dict(groups or {})
        if server_pgid is not None:
            self.groups.setdefault("server", server_pgid)
        self.pg_admin_url = pg_admin_url
        self.pg_database = pg_database
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._start: tuple[float, dict[str, int], int, dict[int, int]] | None = None
        self._ours: set[int] = set()

    def _machine_busy(self) -> int:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(v) for v in fields]
        return sum(values) - values[3] - values[4]  # all but idle and iowait

    def _our_backends(self) -> set[int]:
        if self.pg_admin_url is None or self.pg_database is None:
            return set()
        try:
            rows = (
                probe(self.pg_admin_url)
                .execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s OR datname IS NULL",
                    (self.pg_database,),
                )
                .fetchall()
            )
        except psycopg.Error:
            return set()
        return {int(r[0]) for r in rows}

    def _groups(self) -> tuple[dict[str, int], dict[int, int]]:
        by_group = dict.fromkeys(self.groups, 0) | {"postgres": 0}
        pgids = {pgid: name for name, pgid in self.groups.items()}
        postgres: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2 :].split()
            pgid, ticks = int(rest[2]), int(rest[11]) + int(rest[12])  # utime + stime
            if pgid in pgids:
                by_group[pgids[pgid]] += ticks
            elif comm.startswith("postgres"):
                by_group["postgres"] += ticks
                postgres[int(entry.name)] = ticks
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        by_group["wrk"] = round((children.ru_utime + children.ru_stime) * self._ticks)
        return by_group, postgres

    def start(self) -> None:
        self._ours = self._our_backends()
        groups, postgres = self._groups()
        self._start = (time.monotonic(), groups, self._machine_busy(), postgres)

    def stop(self) -> dict[str, float]:
        """Cores used since start(), per group and for the whole machine."""
        assert self._start is not None
        began, groups, busy, postgres_before = self._start
        seconds = time.monotonic() - began
        now, postgres_now = self._groups()
        cores = {k: (now[k] - groups[k]) / self._ticks / seconds for k in now}
        if self.pg_database is not None:
            ours = self._ours | self._our_backends()
            used = sum(
                ticks - postgres_before.get(pid, 0)
                for pid, ticks in postgres_now.items()
                if pid in ours
            )
            cores["postgres_ours"] = used / self._ticks / seconds
        cores["machine"] = (self._machine_busy() - busy) / self._ticks / seconds
        self.seconds = seconds
        return {k: round(max(v, 0.0), 3) for k, v in cores.items()}


def process_rss_mb(pid: int) -> float | None:
    """Resident memory of a process (VmRSS), in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process so far, in clock ticks; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = stat[stat.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


def api_workers(leader: int) -> list[int]:
    """The uvicorn worker processes of the server whose group `leader` leads (its spawned
    children, not multiprocessing's resource tracker); the leader itself with one worker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        if int(rest[2]) == leader and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found) or [leader]


class RssSampler:
    """Samples the API workers' RSS every `every` seconds in a thread, until stopped."""

    def __init__(self, leader: int, every: float = 1.0) -> None:
        self.leader = leader
        self.every = every
        self.samples: list[tuple[float, dict[int, float]]] = []
        self.cpu: dict[int, list[int]] = {}  # pid -> [first, last] utime + stime ticks
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.is_set():
            pids = api_workers(self.leader)
            sizes = {pid: process_rss_mb(pid) for pid in pids}
            known = {pid: mb for pid, mb in sizes.items() if mb is not None}
            self.samples.append((round(time.monotonic() - began, 1), known))
            for pid in pids:
                ticks = process_cpu_ticks(pid)
                if ticks is not None:
                    self.cpu.setdefault(pid, [ticks, ticks])[1] = ticks
            self._stop.wait(self.every)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        """Per worker: RSS first, at the end of the first fifth (warm-up), last, max; and
        the growth over the last half of the run (MB), the figure that shows a plateau."""
        self._stop.set()
        self._thread.join(timeout=10)
        pids = sorted({pid for _, sizes in self.samples for pid in sizes})
        workers: dict[str, Any] = {}
        for pid in pids:
            series = [(t, sizes[pid]) for t, sizes in self.samples if pid in sizes]
            if not series:
                continue
            values = [mb for _, mb in series]
            half = values[len(values) // 2 :]
            workers[str(pid)] = {
                "first_mb": round(values[0], 1),
                "after_warmup_mb": round(values[len(values) // 5], 1),
                "last_mb": round(values[-1], 1),
                "max_mb": round(max(values), 1),
                "last_half_growth_mb": round(half[-1] - min(half), 1),
                "series_mb": [round(v) for v in values[:: max(1, len(values) // 20)]],
                # how the load fell between the workers (the kernel hands each worker the
                # connections it accepts first: a few keep-alive clients can all land on one)
                "cpu_s": round(
                    (self.cpu.get(pid, [0, 0])[1] - self.cpu.get(pid, [0, 0])[0])
                    / os.sysconf("SC_CLK_TCK"),
                    1,
                ),
            }
        return workers


def measuring(url: str, patience: float = 120.0) -> psycopg.Connection[Any]:
    """A connection for a measurement query; on a cluster shared with other work the
    connection slots can be all taken for a moment ("too many clients"): wait for one."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as e:
            if "too many clients" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


_probes: dict[str, psycopg.Connection[Any]] = {}


def probe(url: str) -> psycopg.Connection[Any]:
    """One connection per database for the measurement queries, kept open: opened before a
    scenario's server takes its pools, it does not have to find a free slot on a cluster whose
    connections other work may have taken meanwhile."""
    found = _probes.get(url)
    if found is None or found.closed:
        found = _probes[url] = measuring(url)
    return found


def close_probe(url: str) -> None:
    found = _probes.pop(url, None)
    if found is not None:
        with contextlib.suppress(psycopg.Error):
            found.close()


def log_appends(url: str, after: int = 0) -> tuple[int, int]:
    """(how many events, in how many transactions) the log gained after position `after`:
    each appended row's xmin names its transaction."""
    conn = probe(url)
    row = conn.execute(
        "SELECT coalesce(max(notification_id), 0), count(DISTINCT xmin::text) "
        "FROM ledger_events WHERE notification_id > %s",
        (after,),
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def log_head(url: str) -> int:
    """The log's last notification id."""
    conn = probe(url)
    row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM ledger_events").fetchone()
    return int(row[0]) if row else 0


def row_writes(url: str) -> dict[str, tuple[int, int]]:
    """Rows inserted and updated so far in each table (pg_stat_user_tables), by name."""
    conn = probe(url)
    conn.execute("SELECT pg_stat_force_next_flush()")
    rows = conn.execute("SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables").fetchall()
    return {str(name): (int(ins), int(upd)) for name, ins, upd in rows}


def relation_sizes(url: str) -> dict[str, int]:
    """Bytes on disk of each table (heap + TOAST) and index of the ledger's database, by
    name: `relation_sizes(after)` minus `relation_sizes(before)` is what a run added."""
    query = """
        SELECT c.relname, c.relkind, pg_table_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'i') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%%'
    """
    conn = probe(url)
    rows = conn.execute(query).fetchall()
    return {f"{kind}:{name}": int(size) for name, kind, size in rows}


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of a GET; (0, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URL
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def grep_log(path: Path, pattern: str, limit: int = 20) -> list[str]:
    """Lines of a log file matching `pattern` (first `limit`)."""
    found: list[str] = []
    with contextlib.suppress(OSError), path.open(errors="replace") as f:
        for line in f:
            if re.search(pattern, line):
                found.append(line.rstrip()[:400])
                if len(found) >= limit:
                    break
    return found


@dataclass
class Server:
    """A running `ledger serve`: where it answers, how it was started, where it logs."""

    base_url: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes]

    def command(self) -> str:
        shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"{shown} {command_line(self.argv)}"


@contextlib.contextmanager
def serve(
    database_url: str,
    *,
    workers: int,
    admin_key: str,
    master_key_hex: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    ready_timeout: float = 90.0,
) -> Iterator[Server]:
    """`ledger serve --workers W` as a subprocess in its own process group; yields once
    `/health` answers 200, and stops the whole group on the way out (SIGTERM, then SIGKILL)."""
    port = free_port()
    argv = [
        str(VENV_BIN / "ledger"),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    shown_env = {
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_ADMIN_KEY": "<random>",
        "LEDGER_MASTER_KEY": "<random 64 hex>",
    } | (extra_env or {})
    env = (
        dict(os.environ)
        | {
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_ADMIN_KEY": admin_key,
            "LEDGER_MASTER_KEY": master_key_hex,
            # benchmarks measure the ledger, not the per-key rate limit (SPEC 3.1: 0 = off)
            "LEDGER_RATE_LIMIT_POS": "0",
            "LEDGER_RATE_LIMIT_OTHER": "0",
        }
        | (extra_env or {})
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    process = spawn(argv, env, log_path)
    server = Server(f"http://127.0.0.1:{port}", argv, shown_env, log_path, process)
    say(f"started ledger serve --workers {workers} (pid {process.pid}) on port {port}")
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"ledger serve exited with {process.returncode} before answering; "
                    f"its log ({log_path}):\n{tail(log_path)}"
                )
            status, _ = http_get(server.base_url + "/health", timeout=2)
            if status == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"ledger serve did not answer /health within {ready_timeout} s; "
                    f"its log ({log_path}):\n{tail(log_path)}"
                )
            time.sleep(0.2)
        yield server
    finally:
        with shielded():
            stop_process_group(process)
        say(f"stopped ledger serve (pid {process.pid})")


def spawn(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A `ledger` process in a process group of its own (stopped whole), its output appended to
    `log_path`."""
    with log_path.open("ab") as log_file:
        return subprocess.Popen(  # noqa: S603 - our own venv's `ledger`
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )


@contextlib.contextmanager
def projector(
    database_url: str,
    *,
    master_key_hex: str,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`ledger project` (every projection, in a process of its own and its own process
    group: what a deployment runs beside `LEDGER_PROJECTIONS=off` API workers); stopped on
    the way out."""
    argv = [str(VENV_BIN / "ledger"), "project"]
    env = (
        dict(os.environ)
        | {"LEDGER_DATABASE_URL": database_url, "LEDGER_MASTER_KEY": master_key_hex}
        | (extra_env or {})
    )
    process = spawn(argv, env, log_path)
    say(f"started ledger project (pid {process.pid})")
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(
                f"ledger project exited with {process.returncode}:\n{tail(log_path)}"
            )
        yield process
    finally:
        with shielded():
            stop_process_group(process)
        say(f"stopped ledger project (pid {process.pid})")


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group led by `process` (started with start_new_session), then
    SIGKILL what is left after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        say(f"pid {process.pid} ignored SIGTERM for {grace} s: SIGKILL")
    # The leader may be gone while workers linger: the group is killed either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def projection_lag(base_url: str) -> dict[str, int]:
    """`ledger_projection_lag_events` per projection, scraped from `/metrics` ({} if absent)."""
    status, body = http_get(base_url + "/metrics", timeout=10)
    if status != 200:
        return {}
    lag: dict[str, int] = {}
    for match in re.finditer(
        r'^ledger_projection_lag_events\{projection="([^"]+)"\} ([0-9.e+]+)$', body, re.M
    ):
        lag[match.group(1)] = int(float(match.group(2)))
    return lag


def wait_for_projections(base_url: str, timeout: float) -> dict[str, int]:
    """Wait until every projection has caught up with the log (or `timeout`); the lag then."""
    deadline = time.monotonic() + timeout
    while True:
        lag = projection_lag(base_url)
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        time.sleep(0.5)


# -- wrk -------------------------------------------------------------------------------------

WRK_MARK = "BENCH_RESULT "


def ensure_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        hint = " (apt-get install -y wrk)" if name == "wrk" else ""
        raise SystemExit(f"{name} is not installed{hint}")
    return path


@dataclass
class WrkResult:
    """What sales.lua's done() reported, plus the command that produced it."""

    command: str
    duration_s: float
    requests: int
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    samples: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def created(self) -> int:
        return self.statuses.get("201", 0)

    @property
    def non_201(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "201")


def run_wrk(
    url: str,
    *,
    script: Path,
    chain_file: Path,
    tag: str,
    seconds: float,
    connections: int,
    threads: int,
    delay_ms: int,
    timeout_s: int = 10,
) -> WrkResult:
    """Load `url` with wrk and sales.lua (each connection pausing `delay_ms` before each
    request, 0 = none); the figures its done() prints."""
    argv = [
        ensure_tool("wrk"),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        f"{timeout_s}s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        str(chain_file),
        tag,
    ]
    env = dict(os.environ) | {"SALES_DELAY_MS": str(delay_ms)}
    completed = subprocess.run(  # noqa: S603 - wrk found on PATH, our arguments
        argv, capture_output=True, text=True, check=False, timeout=seconds + 120, env=env
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr}")
    for line in completed.stdout.splitlines():
        if line.startswith(WRK_MARK):
            data = json.loads(line[len(WRK_MARK) :])
            return WrkResult(
                command=f"SALES_DELAY_MS={delay_ms} {command_line(argv)}",
                duration_s=data["duration_us"] / 1e6,
                requests=int(data["requests"]),
                statuses={str(k): int(v) for k, v in data["statuses"].items()},
                socket_errors={str(k): int(v) for k, v in data["socket_errors"].items()},
                latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
                samples=[str(s) for s in data.get("samples", [])],
            )
    raise RuntimeError(f"wrk printed no {WRK_MARK.strip()} line:\n{completed.stdout}")


def run_openloop(
    url: str,
    *,
    chain_json: Path,
    tag: str,
    seconds: float,
    rate: float,
    timeout_s: int = 10,
) -> WrkResult:
    """Offer `rate` sales/s for `seconds` with bench/openloop.py (open loop, latency from
    each sale's due time); its figures in wrk's shape."""
    argv = [
        sys.executable,
        "-m",
        "bench.openloop",
        "--url",
        url,
        "--chain",
        str(chain_json),
        "--rate",
        f"{rate:g}",
        "--seconds",
        f"{seconds:g}",
        "--tag",
        tag,
        "--timeout",
        str(timeout_s),
    ]
    completed = subprocess.run(  # noqa: S603 - our own script
        argv, capture_output=True, text=True, check=False, timeout=seconds + 120, cwd=REPO
    )
    if completed.returncode != 0:
        raise RuntimeError(f"openloop failed ({completed.returncode}): {completed.stderr}")
    for line in completed.stdout.splitlines():
        if line.startswith(WRK_MARK):
            data = json.loads(line[len(WRK_MARK) :])
            shown = [".venv/bin/python", *argv[1:]]
            result = WrkResult(
                command=command_line(shown),
                duration_s=data["duration_us"] / 1e6,
                requests=int(data["requests"]),
                statuses={str(k): int(v) for k, v in data["statuses"].items()},
                socket_errors={str(k): int(v) for k, v in data["socket_errors"].items()},
                latency_ms={k: v / 1000 for k, v in data["latency_us"].items()},
                samples=[str(s) for s in data.get("samples", [])],
            )
            result.extra = {
                "offered": data["offered"],
                "late_starts": data["late_starts"],
                "connections_opened": data["connections_opened"],
                "service_latency_ms": {
                    k: round(v / 1000, 1) for k, v in data["service_latency_us"].items()
                },
            }
            return result
    raise RuntimeError(f"openloop printed no {WRK_MARK.strip()} line:\n{completed.stdout}")
