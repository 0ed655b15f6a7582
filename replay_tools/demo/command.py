"""`ledger demo`: a realistic, deterministic pharmacy chain, posted through the ledger application.

The command: reads the plan from its arguments and the settings (by default a year that ends
yesterday, chain time), generates the chain into the ledger's (empty) store with a progress
display, prints one summary line, then what a demo needs to be shown: a service, a finance and a
POS key issued for it (shown once), sample cards, and the console's address.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ledger.application import Ledger, open_ledger
from ledger.domain.commands import IssueApiKey
from ledger.domain.model import now_utc
from ledger.settings import Settings
from replay_tools.demo.chain import generate
from replay_tools.demo.plan import ADMIN, DemoPlan, DemoSummary, PlanRefused, store_ids
from replay_tools.progress import progress, summary


def default_start(days: int, timezone: str) -> date:
    """The first day of a period of `days` days that ends yesterday in the chain's time zone
    (so this month's finance page has data, and every business time is in the past)."""
    return datetime.now(ZoneInfo(timezone)).date() - timedelta(days=days)


def handout(ledger: Ledger, plan: DemoPlan, result: DemoSummary) -> str:
    """Keys issued for the demo (the only time they are shown) and sample cards, as lines."""
    pos_store = store_ids(plan.stores)[0]
    issued = [
        ledger.access.issue_key(IssueApiKey(role="service", holder="demo service desk"), ADMIN),
        ledger.access.issue_key(IssueApiKey(role="finance", holder="demo finance"), ADMIN),
        ledger.access.issue_key(
            IssueApiKey(role="pos", store_id=pos_store, holder=f"demo till {pos_store}"), ADMIN
        ),
    ]
    lines = ["keys, shown once (the console takes the service and finance keys):"]
    lines += [
        f"  {key.role:<8} {key.key}" + (f"  (store {key.store_id})" if key.store_id else "")
        for key in issued
    ]
    lines.append("sample cards (find one on the console's member page):")
    now = now_utc()
    for what, card in result.samples.items():
        view = ledger.members.view(card, now)
        lines.append(f"  {card}  {view.tier or '-':<6} {view.points:>8,} points  {what}")
    host = os.environ.get("LEDGER_HOST", "127.0.0.1")
    port = os.environ.get("LEDGER_PORT", "8000")
    lines.append(f"console: http://{host}:{port}/console once `ledger serve` runs on this database")
    return "\n".join(lines) + "\n"


def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    plan = DemoPlan(
        stores=args.stores,
        members=args.members,
        days=args.days,
        seed=args.seed,
        start=args.start or default_start(args.days, settings.timezone),
        timezone=settings.timezone,
    )
    ledger = open_ledger(settings)
    try:
        with progress("demo", total=plan.days) as tracker:
            result = generate(ledger, plan, tracker)
        shown = handout(ledger, plan, result)
    except PlanRefused as e:
        sys.stderr.write(f"ledger demo: {e}\n")
        return 2
    finally:
        ledger.close()
    summary(result.line())
    sys.stdout.write(shown)
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
        default=None,
        help="first day, ISO date in chain time (default: --days days before today, so the "
        "period ends yesterday)",
    )
    demo.set_defaults(run=_run)
