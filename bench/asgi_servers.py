"""Issue 18, the ASGI server lever: uvicorn (`ledger serve --workers W`, as deployed) against
granian (`granian --interface asgi --workers W api.asgi:app`), back to back, on the same
prepared chain and the same wrk load (bench/sales.lua).

The chain is prepared once (bench/http_sales.py's template database); each run gets a fresh
copy, the server with `LEDGER_PROJECTIONS=off` (no projection process beside it: the lever is
the HTTP stack), `--warmup` seconds of unmeasured load, then `--seconds` of wrk with
`--connections`. Variants alternate round by round (`--rounds`), since the machine is shared.
Per run: sales/s (201s), p50/p99, errors, the server's CPU (its whole process group: the
supervisor and the workers, from /proc, over the measured load) in ms per sale, the workers'
alone, and /proc/loadavg before and after. Prints one JSON line per run and a table.

    .venv/bin/python -m bench.asgi_servers --rounds 2 --seconds 15 --connections 32

granian is not a dependency of the project: `.venv/bin/pip install granian` to run this.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.harness import (
    DEFAULT_PG_ADMIN_URL,
    VENV_BIN,
    CpuMeter,
    Server,
    api_workers,
    close_probe,
    emit,
    ensure_tool,
    exit_on_sigterm,
    free_port,
    http_get,
    load_average,
    probe,
    process_cpu_ticks,
    run_wrk,
    say,
    serve,
    spawn,
    stop_process_group,
    tail,
)
from bench.http_sales import LUA, Prepared, fresh_store, prepared_chain

# name -> granian's options after `--interface asgi --workers W` (None: uvicorn, ledger serve)
VARIANTS: dict[str, list[str] | None] = {
    "uvicorn": None,
    "granian": ["--http", "1", "--loop", "asyncio"],
    "granian-uvloop": ["--http", "1", "--loop", "uvloop"],
}
BASE_ENV = {"LEDGER_PROJECTIONS": "off"}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.asgi_servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="each variant once per round")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--members", type=int, default=1_000)
    parser.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = parser.parse_args(argv)
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variant_list) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}: use {', '.join(VARIANTS)}")
    return args


@contextlib.contextmanager
def granian(
    url: str, options: list[str], *, workers: int, master_key_hex: str, log_path: Path
) -> Iterator[Server]:
    """granian serving api.asgi:app (the app `ledger serve --workers W` gives its workers), in
    a process group of its own; yields once /health answers 200."""
    port = free_port()
    argv = [
        str(VENV_BIN / "granian"),
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
        *options,
        "api.asgi:app",
    ]
    env = dict(os.environ) | {
        "LEDGER_DATABASE_URL": url,
        "LEDGER_ADMIN_KEY": secrets.token_urlsafe(24),
        "LEDGER_MASTER_KEY": master_key_hex,
        "LEDGER_RATE_LIMIT_POS": "0",
        "LEDGER_RATE_LIMIT_OTHER": "0",
        **BASE_ENV,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    shown = {"LEDGER_DATABASE_URL": url, "LEDGER_ADMIN_KEY": "<random>"} | BASE_ENV
    process = spawn(argv, env, log_path)
    server = Server(f"http://127.0.0.1:{port}", argv, shown, log_path, process)
    try:
        deadline = time.monotonic() + 90
        while http_get(server.base_url + "/health", timeout=2)[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"granian did not come up; its log:\n{tail(log_path)}")
            time.sleep(0.2)
        yield server
    finally:
        stop_process_group(process)


def _ticks(pids: list[int]) -> int:
    return sum(process_cpu_ticks(p) or 0 for p in pids)


def run_once(
    variant: str, prepared: Prepared, args: argparse.Namespace, work: Path, round_no: int
) -> dict[str, Any]:
    label = f"{variant}-{round_no}"
    tag = f"A{secrets.token_hex(3)}"
    log_path = work / f"server-{label}.log"
    options = VARIANTS[variant]
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_store(prepared, args, work, label.replace("-", "_")))
        probe(url)
        stack.callback(close_probe, url)
        if options is None:
            server = stack.enter_context(
                serve(
                    url,
                    workers=args.workers,
                    admin_key=secrets.token_urlsafe(24),
                    master_key_hex=prepared.master_key.hex(),
                    log_path=log_path,
                    extra_env=BASE_ENV,
                )
            )
        else:
            server = stack.enter_context(
                granian(
                    url,
                    options,
                    workers=args.workers,
                    master_key_hex=prepared.master_key.hex(),
                    log_path=log_path,
                )
            )

        def load(suffix: str, seconds: float) -> Any:
            return run_wrk(
                server.base_url,
                script=LUA,
                chain_file=prepared.chain_file,
                tag=tag + suffix,
                seconds=seconds,
                connections=args.connections,
                threads=args.threads,
                delay_ms=0,
            )

        if args.warmup > 0:
            load("w", args.warmup)
        workers = api_workers(server.process.pid)
        load_before = load_average()
        meter = CpuMeter(groups={"server": server.process.pid})
        ticks_before = _ticks(workers)
        meter.start()
        result = load("", args.seconds)
        cores = meter.stop()
        worker_s = (_ticks(workers) - ticks_before) / os.sysconf("SC_CLK_TCK")
        load_after = load_average()
        command = server.command()
    sales = result.created
    return {
        "bench": "asgi_servers",
        "figure": variant,
        "round": round_no,
        "value": round(sales / result.duration_s, 1),
        "unit": "sales/s",
        "p50_ms": round(result.latency_ms["p50"], 1),
        "p99_ms": round(result.latency_ms["p99"], 1),
        "errors": result.non_201 + sum(result.socket_errors.values()),
        "statuses": result.statuses,
        "server_cpu_ms_per_sale": (
            round(cores["server"] * meter.seconds * 1000 / sales, 2) if sales else None
        ),
        "worker_cpu_ms_per_sale": round(worker_s * 1000 / sales, 2) if sales else None,
        "worker_pids": workers,
        "cores": cores,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "server_command": command,
        "wrk_command": result.command,
    }


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    exit_on_sigterm()
    ensure_tool("wrk")
    probe(args.pg_admin_url)
    work = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    records: list[dict[str, Any]] = []
    try:
        say(f"preparing the chain: {args.stores} stores, {args.members} members")
        with prepared_chain("postgresql", args, work) as prepared:
            for round_no in range(1, args.rounds + 1):
                for variant in args.variant_list:
                    say(f"round {round_no}: {variant}")
                    try:
                        record = run_once(variant, prepared, args, work, round_no)
                    except RuntimeError as error:  # e.g. a shared PostgreSQL out of slots
                        say(f"round {round_no}: {variant} failed, skipped: {error}")
                        continue
                    emit(record)
                    records.append(record)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{'run':<28} {'sales/s':>8} {'p50':>6} {'p99':>6} {'err':>4} "
        f"{'srv ms/sale':>11} {'workers ms/sale':>15}  loadavg before"
    )
    for r in records:
        print(
            f"{r['figure'] + ' #' + str(r['round']):<28} {r['value']:>8} {r['p50_ms']:>6} "
            f"{r['p99_ms']:>6} {r['errors']:>4} {r['server_cpu_ms_per_sale']!s:>11} "
            f"{r['worker_cpu_ms_per_sale']!s:>15}  {r['load_average_before']}"
        )
    return 1 if any(r["errors"] for r in records) else 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
