"""`ledger demo`: a realistic, deterministic pharmacy chain, posted through the ledger application.

The command: reads the plan from its arguments and the settings, generates the chain into the
ledger's (empty) store with a progress display, and prints one summary line.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from ledger.application import open_ledger
from ledger.settings import Settings
from replay_tools.demo.chain import generate
from replay_tools.demo.plan import DemoPlan, PlanRefused
from replay_tools.progress import progress, summary


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    plan = DemoPlan(
        stores=args.stores,
        members=args.members,
        days=args.days,
        seed=args.seed,
        start=args.start,
        timezone=settings.timezone,
    )
    ledger = open_ledger(settings)
    try:
        with progress("demo", total=plan.days) as tracker:
            result = generate(ledger, plan, tracker)
    except PlanRefused as e:
        sys.stderr.write(f"ledger demo: {e}\n")
        return 2
    finally:
        ledger.close()
    summary(result.line())
    return 0


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    demo = commands.add_parser(
        "demo",
        help="generate a realistic, deterministic demo chain into an empty store",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    demo.add_argument("--stores", type=int, default=20)
    demo.add_argument("--members", type=int, default=2_000)
    demo.add_argument("--days", type=int, default=365)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2025, 1, 1),
        help="first day, ISO date in chain time (default 2025-01-01)",
    )
    demo.set_defaults(run=_run)
