"""The `ledger` command (also `python -m ledger`): `ledger serve` runs the HTTP service; `ledger expire` and
`ledger review-tiers` run the expiry run and the tier review (as a cron job would); the replay
tools (`project`, `rebuild`, `verify`, `as-of`, `what-if`, `export`, `import`, `demo`) come
from `replay_tools`."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.expire_daily:  # through the environment, so that every worker process sees it
        os.environ["LEDGER_EXPIRE_DAILY"] = "1"

    from api.app import create_app
    from entry.connections import bounded, raise_descriptor_limit
    from ledger.settings import Settings

    bounds = Settings.from_env()
    raise_descriptor_limit(bounds.max_connections)
    if args.workers > 1:
        # Each worker process builds its own app (and ledger) from the environment; the
        # projections run once, here in the supervising process, unless turned off.
        from projections.runtime import Projections

        settings = Settings.from_env()
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
        create_app(bounds),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        http=bounded(bounds.max_connections, bounds.header_timeout_seconds),
    )
    return 0


def _as_of(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("--as-of needs an offset, e.g. 2026-04-01T00:00:00+08:00")
    return value


def _run(args: argparse.Namespace) -> int:
    import msgspec

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
            due = Queries(ledger, projections).due_members(as_of)
            result = ledger.runs.expire(as_of, operator, now, members=due)
        else:
            result = ledger.runs.review_tiers(as_of, operator, now)
    finally:
        projections.stop()
        ledger.close()
    sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
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


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("pharmacy-ledger")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a plain checkout
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledger", description="Pharmacy points ledger")
    parser.add_argument("--version", action="version", version=f"ledger {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=os.environ.get("LEDGER_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("LEDGER_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("LEDGER_WORKERS", "1")))
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
    rotate = commands.add_parser(
        "rotate-master-key",
        help="re-wrap every member key from LEDGER_PREVIOUS_MASTER_KEY to LEDGER_MASTER_KEY",
    )
    rotate.set_defaults(run=_rotate_master_key)
    from replay_tools.cli import add_commands

    add_commands(commands)
    args = parser.parse_args(argv)
    from ledger.settings import ConfigError

    try:
        result: int = args.run(args)
    except ConfigError as e:
        sys.stderr.write(f"ledger: {e}\n")
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
