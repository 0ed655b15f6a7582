"""The `ledger` command (also `python -m ledger`; `--version` names the package's version):
`ledger serve` runs the HTTP service (and says where, with which admin key); `ledger expire` and
`ledger review-tiers` run the expiry run and the tier review (as a cron job would), `ledger
schedule` runs them daily in a process of its own; `ledger import-members` brings members from
a legacy system (SPEC 2.11); the replay
tools (`project`, `rebuild`, `verify`, `as-of`, `what-if`, `export`, `import`, `demo`) come
from `replay_tools`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    from ledger.settings import Environment, Settings


def _where(database_url: str) -> str:
    """The database, as the start line names it (never a password)."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        return f"SQLite {database_url.removeprefix('sqlite:///')}"
    return f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def _banner(args: argparse.Namespace, settings: Settings, dev_key: tuple[str, Path] | None) -> str:
    """What a newcomer needs on start: where the service answers, and with which admin key."""
    from ledger.version import VERSION

    base = f"http://{args.host}:{args.port}"
    lines = [
        f"pharmacy-ledger {VERSION} on {base} ({_where(settings.database_url)})",
        f"  console    {base}/console (sign in with a service, finance or admin key)",
        f"  API docs   {base}/docs (OpenAPI: {base}/schema)",
    ]
    if dev_key is not None:
        key, path = dev_key
        lines.append(f"  admin key  {key}")
        lines.append(f"             (development key, kept in {path}; LEDGER_ADMIN_KEY overrides)")
    elif settings.admin_key:
        lines.append("  admin key  the one in LEDGER_ADMIN_KEY")
    else:
        lines.append("  admin key  none: set LEDGER_ADMIN_KEY (production generates none)")
    return "\n".join(lines) + "\n"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from entry.connections import bounded, raise_descriptor_limit
    from ledger.settings import Settings, development_admin_key

    # Through the environment, so that every worker process sees them.
    if args.expire_daily:
        os.environ["LEDGER_EXPIRE_DAILY"] = "1"
    settings = Settings.from_env()  # a wrong setting stops here, before any key file is made
    dev_key = development_admin_key(os.environ)
    if dev_key is not None:
        os.environ["LEDGER_ADMIN_KEY"] = dev_key[0]
        settings = msgspec.structs.replace(settings, admin_key=dev_key[0])
    raise_descriptor_limit(settings.max_connections)
    sys.stdout.write(_banner(args, settings, dev_key))
    sys.stdout.flush()
    if args.workers > 1:
        # Each worker process builds its own app (and ledger) from the environment; the
        # projections run once, here in the supervising process, unless turned off.
        from projections.runtime import Projections

        projections = Projections(settings) if settings.run_projections else None
        os.environ["LEDGER_PROJECTIONS"] = "off"
        if projections is not None:
            projections.start()
        try:
            uvicorn.run(
                "api.asgi:app",
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_level="warning",
                access_log=False,
                http="entry.connections:BoundedHttpToolsProtocol",  # bounds from the env
            )
        finally:
            if projections is not None:
                projections.stop()
        return 0
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http=bounded(settings.max_connections, settings.header_timeout_seconds),
    )
    return 0


def _as_of(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("--as-of needs an offset, e.g. 2026-04-01T00:00:00+08:00")
    return value


def _run(args: argparse.Namespace) -> int:
    from ledger.application import open_ledger
    from ledger.domain.model import now_utc
    from ledger.settings import Settings
    from projections.queries import Queries
    from projections.runtime import Projections

    settings = Settings.from_env()
    ledger = open_ledger(settings)
    projections = Projections(settings, ["members"])
    operator, now = f"cli:{args.command}", now_utc()
    as_of = args.as_of or now
    try:
        if args.command == "expire":
            queries = Queries(ledger, projections)
            due = queries.due_members(as_of)
            seen = queries.members_seen(due)
            result = ledger.runs.expire(as_of, operator, now, members=due, seen=seen)
        else:
            result = ledger.runs.review_tiers(as_of, operator, now)
    finally:
        projections.stop()
        ledger.close()
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    """The daily scheduler as a process of its own (DEPLOY.md's layout): the expiry run at 00:05
    chain time and the tier review when due, while this process holds the `scheduler` lease
    (several may run; one acts, the others stand by). Stops on SIGTERM/SIGINT."""
    import asyncio
    import signal
    from zoneinfo import ZoneInfo

    from api.scheduler import SCHEDULER_LEASE, expire_daily
    from ledger.application import open_ledger
    from ledger.domain.model import now_utc
    from ledger.infrastructure.leases import Leases
    from ledger.settings import Settings
    from projections.queries import Queries
    from projections.runtime import Projections

    settings = Settings.from_env()
    ledger = open_ledger(settings)
    projections = Projections(settings, ["members"])  # read only: who has lots due
    leases = Leases(
        settings.database_url, settings.lease_seconds, settings.postgres.connect_timeout_seconds
    )
    leases.want([SCHEDULER_LEASE])
    leases.start()

    async def run() -> None:
        task = asyncio.create_task(
            expire_daily(
                ledger.runs, Queries(ledger, projections), ZoneInfo(settings.timezone),
                now_utc, leases,
            )
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, task.cancel)
        sys.stdout.write("schedule: the daily runs at 00:05 chain time (scheduler lease)\n")
        sys.stdout.flush()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(run())
    finally:
        leases.stop()
        projections.stop()
        ledger.close()
    return 0


def _rotate_master_key(args: argparse.Namespace) -> int:
    from ledger.application import open_ledger
    from ledger.settings import ConfigError, Settings, parse_master_key

    settings = Settings.from_env()
    previous = os.environ.get("LEDGER_PREVIOUS_MASTER_KEY", "")
    if not previous:
        raise ConfigError("set LEDGER_PREVIOUS_MASTER_KEY to the master key being replaced")
    ledger = open_ledger(settings)
    try:
        count = ledger.personal.rewrap_keys(
            parse_master_key(previous, "LEDGER_PREVIOUS_MASTER_KEY")
        )
    finally:
        ledger.close()
    sys.stdout.write(f"{count} member keys now wrapped by the new master key\n")
    return 0


def _import_members(args: argparse.Namespace) -> int:
    """SPEC 2.11: progress (on a terminal) and rejections on stderr, the summary last on stdout;
    exit 1 when a line was rejected."""
    from eventsourcing.persistence import PersistenceError

    from entry.importfiles import csv_files, jsonl
    from ledger.application import open_ledger
    from ledger.domain.errors import LedgerError
    from ledger.domain.model import now_utc
    from ledger.services.imports import ImportSummary, Rejection
    from ledger.settings import Settings

    path = Path(args.file)
    csv_input = args.lots is not None or path.suffix.lower() == ".csv"
    lines = csv_files(path, Path(args.lots) if args.lots else None) if csv_input else jsonl(path)
    tty = sys.stderr.isatty()
    clear = "\r\x1b[K" if tty else ""  # back over the progress line, on a terminal

    def rejected(r: Rejection) -> None:
        sys.stderr.write(f"{clear}line {r.line}: {r.member_id or '?'}: {r.reason}\n")

    def progress(read: int, s: ImportSummary) -> None:
        if tty:
            sys.stderr.write(
                f"{clear}{read} lines read: {s.imported} imported, {s.unchanged} unchanged, "
                f"{s.conflicts} conflicts, {s.rejected} rejected"
            )

    ledger = open_ledger(Settings.from_env())
    try:
        summary = ledger.imports.run(
            lines,
            operator="cli:import-members",
            now=now_utc(),
            dry_run=args.dry_run,
            rejected=rejected,
            progress=progress,
        )
    except LedgerError as e:
        sys.stderr.write(f"ledger: {e}\n")
        return 2
    except PersistenceError as e:  # what committed stays; the same file again resumes
        sys.stderr.write(f"ledger: the store failed ({e}); run the same file again to resume\n")
        return 2
    finally:
        ledger.close()
    if tty:
        sys.stderr.write("\n")
    sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    return 1 if summary.rejected else 0


def _parser(environment: Environment) -> argparse.ArgumentParser:
    from ledger.version import VERSION
    from replay_tools.cli import add_commands

    parser = argparse.ArgumentParser(prog="ledger", description="Pharmacy points ledger")
    parser.add_argument("--version", action="version", version=f"pharmacy-ledger {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=environment.host)
    serve.add_argument("--port", type=int, default=environment.port)
    serve.add_argument("--workers", type=int, default=environment.workers)
    serve.add_argument(
        "--expire-daily",
        action="store_true",
        help="run the expiry run at 00:05 chain time every day (off by default; or cron)",
    )
    serve.set_defaults(run=_serve)
    for name, what in (("expire", "expire every lot due"), ("review-tiers", "review tiers")):
        command = commands.add_parser(name, help=f"{what} as of a time (default now)")
        command.add_argument("--as-of", type=_as_of, default=None)
        command.set_defaults(run=_run)
    schedule = commands.add_parser(
        "schedule", help="run the daily expiry run and tier review (one process at a time)"
    )
    schedule.set_defaults(run=_schedule)
    rotate = commands.add_parser(
        "rotate-master-key",
        help="re-wrap every member key from LEDGER_PREVIOUS_MASTER_KEY to LEDGER_MASTER_KEY",
    )
    rotate.set_defaults(run=_rotate_master_key)
    members = commands.add_parser(
        "import-members",
        help="import members from a legacy system (JSON Lines, or a members CSV with --lots)",
    )
    members.add_argument("file", help="FILE.jsonl, or members.csv")
    members.add_argument("--lots", default=None, help="lots.csv, with a members CSV")
    members.add_argument("--dry-run", action="store_true", help="check and count; write nothing")
    members.set_defaults(run=_import_members)
    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 2 with one line naming the variable when a LEDGER_* setting is wrong (before
    anything else, `--help` included); exit 1 with one line when the database cannot be
    reached within LEDGER_START_TIMEOUT seconds."""
    from ledger.infrastructure.reachable import Unreachable, wait_for_database
    from ledger.settings import ConfigError, read_environment

    try:
        environment = read_environment()
    except ConfigError as e:
        sys.stderr.write(f"ledger: {e}\n")
        return 2
    args = _parser(environment).parse_args(argv)
    if args.command in ("serve", "project", "schedule"):  # long-running: JSON logs off a TTY
        from api.logging import configure_logging

        configure_logging()
    try:
        wait_for_database(
            environment.database_url, environment.start_timeout, environment.pg_connect_timeout
        )
        result: int = args.run(args)
    except ConfigError as e:
        sys.stderr.write(f"ledger: {e}\n")
        return 2
    except Unreachable as e:
        sys.stderr.write(f"ledger: {e}\n")
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
