"""The `ledger` command: `ledger serve` runs the HTTP service."""

from __future__ import annotations

import argparse
import os
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from ledger.settings import Settings

    if args.workers > 1:
        # Each worker process builds its own app (and ledger) from the environment.
        uvicorn.run(
            "api.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
        )
        return 0
    uvicorn.run(
        create_app(Settings.from_env()),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ledger", description="Pharmacy points ledger")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP API")
    serve.add_argument("--host", default=os.environ.get("LEDGER_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("LEDGER_PORT", "8000")))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("LEDGER_WORKERS", "1")))
    serve.set_defaults(run=_serve)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
