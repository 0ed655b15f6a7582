"""A chain ready for POS traffic, prepared in process with `ledger.application.Ledger`.

SPEC example rules (effective from 2020, its SKU promotions stretched over 2020-2099 so that
promoted SKUs earn their multiplier today), `--stores` stores (a third direct, the rest
franchise) with one `pos` API key each, and `--members` members (card numbers `BM000000`...,
a third with a birthday) enrolled from a few threads. The projections are then caught up with
the log, so that a server started on this store begins with its views current.

Writes the Lua chain file that bench/sales.lua loads at init: stores, their pos keys and how
to name the members. Prints one JSON line (how long the preparation took).

    .venv/bin/python -m bench.chain --database-url sqlite:////tmp/chain.db --out /tmp/chain.lua
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from bench.harness import emit, say
from ledger.application import Ledger
from ledger.domain.commands import EnrolMember, IssueApiKey, RegisterStore
from ledger.policies.ruleset import RuleSet
from ledger.settings import Settings
from projections.runtime import Projections
from tests.rulesets import SPEC_EXAMPLE

MEMBER_PREFIX = "BM"
MEMBER_WIDTH = 6
PROMOTED_SKUS = ("BRAND-X", "BRAND-Y")


def rules() -> RuleSet:
    """SPEC 2.10's example, in force since 2020, its promotions running until 2099."""
    document: dict[str, Any] = copy.deepcopy(SPEC_EXAMPLE)
    document["effective_from"] = "2020-01-01T00:00:00+08:00"
    document["accrual"]["sku_promotions"] = [
        {
            "sku": sku,
            "multiplier": multiplier,
            "starts_at": "2020-01-01T00:00:00+08:00",
            "ends_at": "2099-01-01T00:00:00+08:00",
        }
        for sku, multiplier in zip(PROMOTED_SKUS, ("20", "5"), strict=True)
    ]
    return msgspec.convert(document, RuleSet, strict=False)


def member_card(n: int) -> str:
    return f"{MEMBER_PREFIX}{n:0{MEMBER_WIDTH}d}"


@dataclass
class Chain:
    """What the load generator needs to know about the prepared chain."""

    stores: list[str]
    pos_keys: list[str]
    members: int
    events: int
    seconds: float

    def write_json(self, path: Path) -> None:
        """The same chain file as JSON, for bench/openloop.py (a Python client)."""
        path.write_text(
            json.dumps(
                {
                    "stores": self.stores,
                    "keys": self.pos_keys,
                    "members": self.members,
                    "member_prefix": MEMBER_PREFIX,
                    "member_width": MEMBER_WIDTH,
                    "promoted_skus": list(PROMOTED_SKUS),
                }
            )
        )

    def write_lua(self, path: Path) -> None:
        """The chain file bench/sales.lua loads (`dofile`) at init."""
        for text in (*self.stores, *self.pos_keys):
            if not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
                raise ValueError(f"unexpected characters in {text!r}")
        stores = ", ".join(f'"{s}"' for s in self.stores)
        keys = ", ".join(f'"{k}"' for k in self.pos_keys)
        skus = ", ".join(f'"{s}"' for s in PROMOTED_SKUS)
        path.write_text(
            "-- written by bench/chain.py: the chain the benchmark's server holds\n"
            "return {\n"
            f"  stores = {{{stores}}},\n"
            f"  keys = {{{keys}}},\n"
            f"  members = {self.members},\n"
            f'  member_format = "{MEMBER_PREFIX}%0{MEMBER_WIDTH}d",\n'
            f"  promoted_skus = {{{skus}}},\n"
            "}\n"
        )


def prepare(
    database_url: str, master_key: bytes, *, stores: int, members: int, threads: int = 4
) -> Chain:
    """Publish the rules, register the stores, issue their keys, enrol the members, and catch
    the projections up with the log."""
    started = time.perf_counter()
    settings = Settings(database_url=database_url, master_key=master_key)
    ledger = Ledger(settings)
    try:
        ledger.rules.publish(rules(), "bench")
        store_ids = [f"S{n:02d}" for n in range(1, stores + 1)]
        keys = []
        for n, store_id in enumerate(store_ids):
            register = (
                RegisterStore(name=f"Store {store_id}", kind="direct")
                if n % 3 == 0
                else RegisterStore(
                    name=f"Store {store_id}", kind="franchise", franchisee=f"F{n % 4 + 1}"
                )
            )
            ledger.access.configure_store(store_id, register, "bench")
            keys.append(
                ledger.access.issue_key(
                    IssueApiKey(role="pos", store_id=store_id, holder=f"till {store_id}"), "b"
                ).key
            )
        say(f"rules, {stores} stores and their pos keys in {time.perf_counter() - started:.1f} s")

        now = datetime.now(UTC)
        enrolled_at = now - timedelta(days=400)
        errors: list[BaseException] = []

        def enrol(first: int) -> None:
            try:
                for n in range(first, members, threads):
                    birthday = date(1960 + n % 45, 1 + n % 12, 1 + n % 28) if n % 3 == 0 else None
                    cmd = EnrolMember(
                        member_id=member_card(n),
                        store_id=store_ids[n % len(store_ids)],
                        birthday=birthday,
                        occurred_at=enrolled_at,
                    )
                    ledger.members.enrol(cmd, "bench", now)
            except BaseException as e:
                errors.append(e)

        begun = time.perf_counter()
        workers = [threading.Thread(target=enrol, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise errors[0]
        took = time.perf_counter() - begun
        say(f"enrolled {members} members in {took:.1f} s ({members / took:.0f}/s)")
        head = ledger.core.log_position()
    finally:
        ledger.close()

    begun = time.perf_counter()
    projections = Projections(settings)
    try:
        projections.replay(head)
    finally:
        projections.stop()
    say(f"projections caught up with {head} events in {time.perf_counter() - begun:.1f} s")
    return Chain(store_ids, keys, members, head, time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--database-url", required=True, help="an empty store")
    parser.add_argument("--out", type=Path, required=True, help="the Lua chain file to write")
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--members", type=int, default=3_000)
    parser.add_argument(
        "--master-key",
        default=None,
        help="64 hex digits (give the server the same LEDGER_MASTER_KEY); random by default",
    )
    args = parser.parse_args()
    master = bytes.fromhex(args.master_key) if args.master_key else secrets.token_bytes(32)
    chain = prepare(args.database_url, master, stores=args.stores, members=args.members)
    chain.write_lua(args.out)
    emit(
        {
            "bench": "chain",
            "figure": "chain_prepared_s",
            "value": round(chain.seconds, 1),
            "unit": "s",
            "stores": args.stores,
            "members": args.members,
            "events": chain.events,
            "chain_file": str(args.out),
            "master_key": master.hex(),  # the server needs the same LEDGER_MASTER_KEY
        }
    )
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        say("interrupted (what it had started is cleaned up)")
        raise SystemExit(130) from None
