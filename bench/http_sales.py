"""Issue 5, figure 1 (and the naive baseline, figure 3): POS sales over HTTP, `wrk` against
`ledger serve`.

For the PostgreSQL scenarios a chain (bench/chain.py: SPEC example rules in force since 2020,
`--stores` stores with pos keys, `--members` members) is prepared once in a template database
`ledger_bench_tpl_<random>`; each scenario runs on a fresh copy of it
(`CREATE DATABASE … TEMPLATE`, so every scenario starts from the same state), with its own
`ledger serve --workers W` subprocess; SQLite scenarios likewise copy a prepared file. Each
scenario: wait for /health and for the projections to be current, `--warmup` seconds of load
(not counted), then `--seconds` of load by wrk with bench/sales.lua (1 thread, `--connections`
connections; unique receipt numbers, 1-6 line receipts, hot members), then how long the
projections take to catch up. The server is stopped and every database dropped on the way
out, also on Ctrl-C or SIGTERM.

Scenarios (`--scenarios`, comma-separated, all by default):

  pg-saturation          PostgreSQL, --workers W, as fast as the server answers
  pg-rate                PostgreSQL, --workers W, each connection pausing connections/--rate
                         seconds before each request: at most --rate sales/s (closed loop)
  pg-nocache-saturation  as pg-saturation without the aggregate cache: the naive design, each
                         read replays the aggregate from its snapshot and events
  pg-projector-saturation  issue 18: as pg-saturation with the projections in a process of
                         their own (`LEDGER_PROJECTIONS=off` in the server, `ledger project`
                         beside it); also prints `cpu-per-sale` (API workers, projection
                         process, this database's PostgreSQL backends, from /proc CPU times
                         from the start of the load until the views caught up) and
                         `bytes-per-sale` (relation sizes after minus before, ÷ sales)
  pg-projector-open      issue 18: the same server, a constant --open-rate (500) sales/s
                         offered open-loop by bench/openloop.py (latency from each sale's due
                         time: no coordinated omission)
  pg-projector-soak      issue 18: as pg-projector-saturation for --soak-seconds (60; the
                         issue asks 600), sampling the API workers' RSS every second; also
                         prints `api-worker-rss-growth` (the growth over the last half)
  sqlite-saturation      SQLite (the default store), --sqlite-workers (1: one writer)

sales/s counts 201 responses only, over wrk's measured duration; every other status is an
error, counted, and printed with samples and the server's log lines about it.
`LEDGER_MEMBER_CACHE_SIZE=0` does not turn the cache off (eventsourcing 9.5.6 takes a size
<= 0 as an unbounded cache), so pg-nocache also sets eventsourcing's own switch for the
application named Ledger, `LEDGER_AGGREGATE_CACHE_MAXSIZE=` (empty: no cache).

Prints one JSON line per scenario.

    .venv/bin/python -m bench.http_sales --scenarios pg-saturation --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import chain as chain_module
from bench.harness import (
    BENCH_DIR,
    DB_PREFIX,
    DEFAULT_PG_ADMIN_URL,
    CpuMeter,
    RssSampler,
    WrkResult,
    api_workers,
    close_probe,
    emit,
    ensure_tool,
    exit_on_sigterm,
    grep_log,
    load_average,
    log_appends,
    log_head,
    probe,
    projection_lag,
    projector,
    random_database_name,
    relation_sizes,
    row_writes,
    run_openloop,
    run_wrk,
    say,
    serve,
    throwaway_database,
    wait_for_projections,
)
from bench.profiling import fold_busy, py_spy_binary, py_spy_pids

LUA = BENCH_DIR / "sales.lua"
NO_CACHE_ENV = {"LEDGER_MEMBER_CACHE_SIZE": "0", "LEDGER_AGGREGATE_CACHE_MAXSIZE": ""}
# Server log lines worth showing when a request failed: errors, warnings, non-2xx requests.
TROUBLE = r'"level": "(error|warning|critical)"|"status": [45][0-9][0-9]|Traceback|Error'


@dataclass(frozen=True)
class Scenario:
    name: str
    store: str  # "postgresql" | "sqlite"
    paced: bool = False
    no_cache: bool = False
    projector: bool = False  # LEDGER_PROJECTIONS=off in the server, `ledger project` beside it
    open_loop: bool = False  # bench/openloop.py at --open-rate instead of wrk
    soak: bool = False  # --soak-seconds instead of --seconds, the workers' RSS the figure


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("pg-saturation", "postgresql"),
        Scenario("pg-rate", "postgresql", paced=True),
        Scenario("pg-nocache-saturation", "postgresql", no_cache=True),
        Scenario("pg-projector-saturation", "postgresql", projector=True),
        Scenario("pg-projector-open", "postgresql", projector=True, open_loop=True),
        Scenario("pg-projector-soak", "postgresql", projector=True, soak=True),
        Scenario("sqlite-saturation", "sqlite"),
    )
}
VIEW_TABLES = re.compile(r"^(history|settlement|members|analytics|tracking|projection)", re.I)


@dataclass
class Prepared:
    """A prepared chain: how to get a fresh copy of its store, and its Lua chain file."""

    store: str
    chain_file: Path
    master_key: bytes
    template_db: str = ""
    sqlite_dir: Path | None = None
    events: int = 0
    copies: list[str] = field(default_factory=list)


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_sales",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--seconds", type=float, default=30, help="measured load per scenario")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured load before it")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="ledger serve --workers (PG)")
    parser.add_argument("--sqlite-workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1000, help="offered sales/s of pg-rate")
    parser.add_argument(
        "--open-rate", type=float, default=500, help="sales/s offered by pg-projector-open"
    )
    parser.add_argument(
        "--soak-seconds", type=float, default=60, help="load of pg-projector-soak (issue: 600)"
    )
    parser.add_argument(
        "--py-spy",
        nargs="?",
        const="py-spy",
        default=None,
        metavar="BIN",
        help="sample the API workers and the projection process with py-spy during the "
        "measured load and print where their busy time goes (raw output kept in the work "
        "directory)",
    )
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument(
        "--projection-timeout",
        type=float,
        default=120,
        help="seconds to wait for the projections to catch up after a run",
    )
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the work directory (server logs, chain file); kept anyway after errors",
    )
    args = parser.parse_args(argv)
    args.scenario_list = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(args.scenario_list) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}: use {', '.join(SCENARIOS)}")
    return args


@contextlib.contextmanager
def prepared_chain(store: str, args: argparse.Namespace, work: Path) -> Iterator[Prepared]:
    """The chain prepared once per kind of store (a template database, or a SQLite file)."""
    master = secrets.token_bytes(32)
    chain_file = work / f"chain-{store}.lua"
    if store == "postgresql":
        name = random_database_name("tpl")
        with throwaway_database(args.pg_admin_url, name) as url:
            made = chain_module.prepare(url, master, stores=args.stores, members=args.members)
            made.write_lua(chain_file)
            made.write_json(chain_file.with_suffix(".json"))
            yield Prepared(store, chain_file, master, template_db=name, events=made.events)
        return
    directory = work / "sqlite-template"
    directory.mkdir()
    url = f"sqlite:///{directory / 'ledger.db'}"
    made = chain_module.prepare(url, master, stores=args.stores, members=args.members)
    made.write_lua(chain_file)
    made.write_json(chain_file.with_suffix(".json"))
    yield Prepared(store, chain_file, master, sqlite_dir=directory, events=made.events)


@contextlib.contextmanager
def fresh_store(
    prepared: Prepared, args: argparse.Namespace, work: Path, label: str
) -> Iterator[str]:
    """A copy of the prepared store for one scenario (its URL); removed on the way out."""
    if prepared.store == "postgresql":
        name = f"{DB_PREFIX}{label.replace('-', '_')}_{secrets.token_hex(4)}"
        with throwaway_database(args.pg_admin_url, name, template=prepared.template_db) as url:
            yield url
        return
    assert prepared.sqlite_dir is not None
    directory = work / f"sqlite-{label}"
    shutil.copytree(prepared.sqlite_dir, directory)
    try:
        yield f"sqlite:///{directory / 'ledger.db'}"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _report_trouble(label: str, result: WrkResult, log_path: Path) -> None:
    say(
        f"{label}: {result.non_201} non-201 responses {result.statuses}, "
        f"socket errors {result.socket_errors}"
    )
    for sample in result.samples:
        say(f"  response: {sample}")
    lines = grep_log(log_path, TROUBLE)
    if lines:
        say(f"  server log ({log_path}), first {len(lines)} lines about errors:")
        for line in lines:
            say(f"    {line}")


def _database(url: str) -> str | None:
    return url.rsplit("/", 1)[1] if url.startswith("postgresql") else None


def _sizes(url: str) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        return {}
    return {
        "bytes": relation_sizes(url),
        "rows": row_writes(url),
        "head": log_head(url),
    }


def bytes_per_sale(before: dict[str, Any], after: dict[str, Any], sales: int) -> dict[str, Any]:
    """What the run added to the database, per sale: the event store's tables (the log,
    snapshots, the identity index and keys), every index, and the views' tables; and the rows
    each table gained (inserted) and rewrote (updated) per sale."""
    events, appends = after.get("appended", (0, 0))
    rows: dict[str, list[float]] = {}
    for name, (ins, upd) in after.get("rows", {}).items():
        was = before.get("rows", {}).get(name, (0, 0))
        if sales and (ins - was[0] or upd - was[1]):
            rows[name] = [round((ins - was[0]) / sales, 2), round((upd - was[1]) / sales, 2)]
    before, after = before.get("bytes", {}), after.get("bytes", {})
    split = {"events": 0, "indexes": 0, "views": 0}
    grown: dict[str, int] = {}
    for key, size in after.items():
        delta = size - before.get(key, 0)
        if not delta:
            continue
        kind, name = key.split(":", 1)
        bucket = "indexes" if kind == "i" else "views" if VIEW_TABLES.match(name) else "events"
        split[bucket] += delta
        grown[name] = delta
    per_sale = {k: round(v / sales) for k, v in split.items()} if sales else {}
    top = sorted(grown.items(), key=lambda kv: -kv[1])[:12]
    return {
        "bytes_per_sale": sum(per_sale.values()),
        "split_per_sale": per_sale,
        "largest_relations_per_sale": {k: round(v / sales) for k, v in top} if sales else {},
        "rows_inserted_updated_per_sale": rows,
        "rows_inserted_per_sale": round(sum(r[0] for r in rows.values()), 2),
        # the group committer's batching: sales (of this run and the catch-up) per append
        "events_appended": events,
        "append_transactions": appends,
        "sales_per_append_transaction": round(sales / appends, 2) if appends else None,
    }


def _load(scenario: Scenario, prepared: Prepared, args: argparse.Namespace, base_url: str) -> Any:
    delay_ms = round(args.connections / args.rate * 1000) if scenario.paced else 0

    def load(tag: str, seconds: float) -> WrkResult:
        if scenario.open_loop:
            return run_openloop(
                base_url,
                chain_json=prepared.chain_file.with_suffix(".json"),
                tag=tag,
                seconds=seconds,
                rate=args.open_rate,
            )
        return run_wrk(
            base_url,
            script=LUA,
            chain_file=prepared.chain_file,
            tag=tag,
            seconds=seconds,
            connections=args.connections,
            threads=args.threads,
            delay_ms=delay_ms,
        )

    return load, delay_ms


@contextlib.contextmanager
def _sampled(
    args: argparse.Namespace, leader: int, groups: dict[str, int], tag: str
) -> Iterator[dict[str, Path]]:
    """py-spy on each API worker and the projection process while the block runs (`--py-spy`);
    nothing otherwise."""
    if not args.py_spy:
        yield {}
        return
    binary = py_spy_binary(args.py_spy)
    if binary is None:
        raise SystemExit(f"no py-spy at {args.py_spy!r}: .venv/bin/pip install py-spy")
    targets = {f"api-worker-{pid}": pid for pid in api_workers(leader)}
    if "projections" in groups:
        targets["projections"] = groups["projections"]
    out = Path(tempfile.gettempdir()) / f"ledger-bench-py-spy-{tag}"
    with py_spy_pids(binary, targets, out) as raws:
        yield raws


def _measure(  # noqa: PLR0917 - one call site
    load: Any,
    tag: str,
    seconds: float,
    url: str,
    base_url: str,
    leader: int,
    groups: dict[str, int],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The measured load, with CPU per process group, the workers' RSS, the relation sizes
    before and after, and the projections' catching up afterwards."""
    sizes_before = _sizes(url)
    meter = CpuMeter(groups=groups, pg_admin_url=args.pg_admin_url, pg_database=_database(url))
    rss = RssSampler(leader)
    with _sampled(args, leader, groups, tag) as raws:
        meter.start()
        rss.start()
        result = load(tag, seconds)
        cpu = meter.stop()
        workers_rss = rss.stop()
    for name, raw in raws.items():
        folded = fold_busy(raw)
        emit({"profile": name, "raw": str(raw), **folded})
        say(f"{name}: {folded['busy_samples']} busy samples; busiest in all:")
        for row in folded["top_inclusive"][:20]:
            say(f"  {row['share']:>6.1%}  {row['function']}")
    lag_after = projection_lag(base_url)
    begun = time.perf_counter()
    final_lag = wait_for_projections(base_url, args.projection_timeout)
    catch_up_s = time.perf_counter() - begun
    cpu_until_caught_up = meter.stop()
    time.sleep(1.5)  # backends report their row counts at most once a second
    sizes_after = _sizes(url)
    if sizes_before:
        sizes_after["appended"] = log_appends(url, sizes_before["head"])
    return {
        "result": result,
        "cpu": cpu,
        "workers_rss": workers_rss,
        "lag_after": lag_after,
        "catch_up_s": catch_up_s,
        "final_lag": final_lag,
        "cpu_until_caught_up": cpu_until_caught_up,
        "until_s": meter.seconds,
        "sizes_before": sizes_before,
        "sizes_after": sizes_after,
    }


def run_scenario(
    scenario: Scenario, prepared: Prepared, args: argparse.Namespace, work: Path
) -> list[dict[str, Any]]:
    workers = args.sqlite_workers if scenario.store == "sqlite" else args.workers
    extra_env = dict(NO_CACHE_ENV) if scenario.no_cache else {}
    if scenario.projector:
        extra_env["LEDGER_PROJECTIONS"] = "off"
    log_path = work / f"server-{scenario.name}.log"
    tag = f"R{secrets.token_hex(3)}"
    seconds = args.soak_seconds if scenario.soak else args.seconds
    load_before = load_average()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_store(prepared, args, work, scenario.name))
        if scenario.store == "postgresql":
            probe(url)  # before the server and the projections take their pools' connections
            stack.callback(close_probe, url)
        server = stack.enter_context(
            serve(
                url,
                workers=workers,
                admin_key=secrets.token_urlsafe(24),
                master_key_hex=prepared.master_key.hex(),
                log_path=log_path,
                extra_env=extra_env,
            )
        )
        groups = {"api": server.process.pid}
        if scenario.projector:
            runner = stack.enter_context(
                projector(
                    url,
                    master_key_hex=prepared.master_key.hex(),
                    log_path=work / f"project-{scenario.name}.log",
                )
            )
            groups["projections"] = runner.pid
        lag = wait_for_projections(server.base_url, args.projection_timeout)
        if any(lag.values()):
            say(f"{scenario.name}: projections still behind before the load: {lag}")
        load, delay_ms = _load(scenario, prepared, args, server.base_url)
        warmup: WrkResult | None = None
        if args.warmup > 0:
            say(f"{scenario.name}: warm-up {args.warmup:g} s")
            warmup = load(tag + "w", args.warmup)
            if warmup.non_201 or any(warmup.socket_errors.values()):
                _report_trouble(f"{scenario.name} (warm-up)", warmup, log_path)
            wait_for_projections(server.base_url, args.projection_timeout)
        say(
            f"{scenario.name}: {seconds:g} s of load, "
            + (
                f"{args.open_rate:g} sales/s offered open-loop"
                if scenario.open_loop
                else f"{args.connections} connections, "
                + (f"pause {delay_ms} ms per request" if delay_ms else "as fast as answered")
            )
        )
        seen = _measure(load, tag, seconds, url, server.base_url, server.process.pid, groups, args)
        result: WrkResult = seen["result"]
        cpu, workers_rss = seen["cpu"], seen["workers_rss"]
        server_command = server.command()
    sales_per_s = result.created / result.duration_s
    record: dict[str, Any] = {
        "bench": "http_sales",
        "figure": scenario.name,
        "value": round(sales_per_s, 1),
        "unit": "sales/s",
        "store": scenario.store,
        "workers": workers,
        "connections": None if scenario.open_loop else args.connections,
        "projections": "own process" if scenario.projector else "inline (supervisor)",
        "wrk_threads": None if scenario.open_loop else args.threads,
        "seconds": round(result.duration_s, 1),
        "offered_per_s": args.rate if scenario.paced else None,
        # Closed-loop pacing can only undershoot the offered rate: whether it came within 5 %.
        "offered_reached": (sales_per_s >= 0.95 * args.rate) if scenario.paced else None,
        "delay_ms": delay_ms,
        "aggregate_cache": "off" if scenario.no_cache else "default (10000)",
        "sales_per_s": round(sales_per_s, 1),
        "responses_per_s": round(result.requests / result.duration_s, 1),
        "p50_ms": round(result.latency_ms["p50"], 1),
        "p90_ms": round(result.latency_ms["p90"], 1),
        "p99_ms": round(result.latency_ms["p99"], 1),
        "p999_ms": round(result.latency_ms["p99.9"], 1),
        "max_ms": round(result.latency_ms["max"], 1),
        "requests": result.requests,
        "errors": result.non_201 + sum(result.socket_errors.values()),
        "statuses": result.statuses,
        "socket_errors": result.socket_errors,
        "warmup_statuses": warmup.statuses if warmup else {},
        "cpu_cores_used": cpu,
        "api_worker_rss": workers_rss,
        "api_worker_cpu_shares": _shares(workers_rss),
        "projection_lag_after_load": seen["lag_after"],
        "projection_catch_up_s": round(seen["catch_up_s"], 1),
        "projection_lag_final": seen["final_lag"],
        "members": args.members,
        "stores": args.stores,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "server_command": server_command,
        "wrk_command": result.command,
    }
    if scenario.open_loop:
        record |= {
            "offered_per_s": args.open_rate,
            "offered_reached": sales_per_s >= 0.95 * args.open_rate,
            "open_loop": result.extra,
        }
    if scenario.projector:
        record["projector_command"] = (
            f"LEDGER_DATABASE_URL={url} LEDGER_MASTER_KEY='<random 64 hex>' ledger project"
        )
    if result.non_201 or any(result.socket_errors.values()):
        record["error_samples"] = result.samples
        _report_trouble(scenario.name, result, log_path)
    records = [record]
    if scenario.projector and not scenario.open_loop and not scenario.soak:
        records.append(
            _cpu_record(scenario, seen["cpu_until_caught_up"], seen["until_s"], result.created)
        )
        records.append(
            {
                "bench": "http_sales",
                "figure": "bytes-per-sale",
                "unit": "bytes",
                "store": scenario.store,
                "sales": result.created,
                "of": scenario.name,
                **bytes_per_sale(seen["sizes_before"], seen["sizes_after"], result.created),
            }
        )
        records[-1]["value"] = records[-1]["bytes_per_sale"]
    if scenario.soak:
        records.append(_rss_record(scenario, workers_rss, result.duration_s))
    return records


def _shares(workers: dict[str, Any]) -> list[float]:
    """Each API worker's share of the workers' CPU over the run (lopsided when the kernel gave
    one worker every keep-alive connection)."""
    used = [float(w.get("cpu_s", 0.0)) for w in workers.values()]
    total = sum(used)
    return [round(u / total, 2) for u in used] if total else []


def _cpu_record(
    scenario: Scenario, cores: dict[str, float], seconds: float, sales: int
) -> dict[str, Any]:
    """CPU per sale from the load's start until the views had caught up (the projections'
    work for these sales included), per component, in ms."""

    def ms(key: str) -> float:
        return round(cores.get(key, 0.0) * seconds * 1000 / sales, 3) if sales else 0.0

    split = {"api": ms("api"), "projections": ms("projections"), "postgres": ms("postgres_ours")}
    return {
        "bench": "http_sales",
        "figure": "cpu-per-sale",
        "value": round(sum(split.values()), 2),
        "unit": "ms CPU",
        "store": scenario.store,
        "of": scenario.name,
        "split_ms": split,
        "postgres_all_processes_ms": ms("postgres"),
        "load_generator_ms": ms("wrk"),
        "machine_ms": ms("machine"),
        "seconds": round(seconds, 1),
        "sales": sales,
    }


def _rss_record(scenario: Scenario, workers: dict[str, Any], seconds: float) -> dict[str, Any]:
    growth = max((w["last_half_growth_mb"] for w in workers.values()), default=0.0)
    return {
        "bench": "http_sales",
        "figure": "api-worker-rss-growth",
        "value": growth,
        "unit": "MB over the last half",
        "store": scenario.store,
        "of": scenario.name,
        "soak_seconds": round(seconds),
        "per_worker": workers,
        "max_rss_mb": max((w["max_mb"] for w in workers.values()), default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    exit_on_sigterm()
    ensure_tool("wrk")
    if any(SCENARIOS[n].store == "postgresql" for n in args.scenario_list):
        probe(args.pg_admin_url)
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    say(f"work directory {work}")
    troubled = False
    try:
        for store in ("postgresql", "sqlite"):
            chosen = [SCENARIOS[n] for n in args.scenario_list if SCENARIOS[n].store == store]
            if not chosen:
                continue
            say(f"preparing the chain on {store}: {args.stores} stores, {args.members} members")
            with prepared_chain(store, args, work) as prepared:
                for scenario in chosen:
                    for record in run_scenario(scenario, prepared, args, work):
                        troubled = troubled or record.get("errors", 0) > 0
                        emit(record)
    finally:
        if troubled or args.keep_logs:
            say(f"kept {work} (server logs)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if troubled else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
