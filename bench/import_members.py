"""The migration's speed (issue 16, SPEC 2.11): `ledger import-members` on PostgreSQL.

Generates a JSON Lines file of N members (default 1,000,000), each with personal data (a valid
ID number, a phone, a birthday), a tier, two tier-spend months, three lots (one of them given
its expiry, two computed by the rules) and stored value; prepares a throwaway database (the
rules, ten stores) and runs the real command (`python -m ledger import-members FILE`) as a
subprocess, timing it and sampling its peak memory. Prints one JSON line:
`{"figure": "import_members", "members", "lots", "seconds", "members_per_s", "peak_rss_mb",
"summary"}`.

    .venv/bin/python -m bench.import_members --members 100000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stdnum.cn import ric

from bench.chain import rules
from bench.harness import emit, random_database_name, say, throwaway_database
from ledger.application import Ledger
from ledger.domain.commands import RegisterStore
from ledger.settings import Settings

MASTER_KEY = bytes.fromhex("42" * 32)
STORES = [f"F{n:03d}" for n in range(1, 11)]
TIERS = ["normal", "silver", "gold", "vip"]


def _id_number(n: int) -> str:
    """A valid ID number of its own for each n below 20 million."""
    birth = datetime(1950, 1, 1) + timedelta(days=n // 1000)  # noqa: DTZ001
    body = f"110101{birth:%Y%m%d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def line(rng: random.Random, n: int, now: datetime) -> dict[str, object]:
    """One realistic member: three live lots, two of them expiring by the rules."""
    enrolled = now - timedelta(days=rng.randrange(400, 3_000))
    lots: list[dict[str, object]] = []
    for k in range(3):
        earned = now - timedelta(days=rng.randrange(1, 200), minutes=k)
        lot: dict[str, object] = {
            "points": rng.randrange(1, 3_000),
            "earned_at": earned.isoformat(),
        }
        if k == 0:
            lot["expires_at"] = (earned + timedelta(days=365)).isoformat()
        lots.append(lot)
    number = _id_number(n)
    return {
        "member_id": f"88{n:010d}",
        "store_id": STORES[n % len(STORES)],
        "enrolled_at": enrolled.isoformat(),
        "name": f"会员{n}",
        "phone": f"138{n:08d}",
        "id_number": number,
        "birthday": f"{number[6:10]}-{number[10:12]}-{number[12:14]}",
        "tier": TIERS[n % len(TIERS)],
        "tier_spend": [
            {"month": "2025-03", "spend_fen": rng.randrange(0, 500_000)},
            {"month": "2026-03", "spend_fen": rng.randrange(0, 500_000)},
        ],
        "lots": lots,
        "stored_value_fen": rng.randrange(0, 10_000),
        "source_ref": f"crm-{n:08d}",
    }


def generate(path: Path, members: int, seed: int = 16) -> None:
    """Write the file a line at a time (flat memory, any size)."""
    rng, now = random.Random(seed), datetime.now(UTC)
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, members + 1):
            out.write(json.dumps(line(rng, n, now), ensure_ascii=False) + "\n")


def prepare(database_url: str) -> None:
    ledger = Ledger(Settings(database_url=database_url, master_key=MASTER_KEY))
    try:
        ledger.rules.publish(rules(), "bench")
        for store in STORES:
            body = RegisterStore(name=store, kind="franchise", franchisee=f"F-{store}")
            ledger.access.configure_store(store, body, "bench")
    finally:
        ledger.close()


def run_import(database_url: str, path: Path) -> tuple[float, dict[str, int], float, float]:
    """The command's wall time, its summary, its peak RSS (MB) and its CPU seconds."""
    env = {"LEDGER_DATABASE_URL": database_url, "LEDGER_MASTER_KEY": MASTER_KEY.hex()}
    command = [sys.executable, "-m", "ledger", "import-members", str(path)]
    say(" ".join(command))
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command
        command, env=env | _path_env(), capture_output=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    summary = json.loads(done.stdout.decode().strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, summary, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def _path_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, default=None, help="reuse or keep the file here")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ledger-bench-import-") as work:
        path = args.file or Path(work) / "members.jsonl"
        if not path.exists():
            started = time.perf_counter()
            generate(path, args.members)
            say(f"generated {args.members} members in {time.perf_counter() - started:.1f} s")
        with throwaway_database(args.pg_admin_url, random_database_name("import")) as url:
            prepare(url)
            seconds, summary, peak_mb, cpu = run_import(url, path)
    emit(
        {
            "figure": "import_members",
            "store": "postgresql",
            "members": args.members,
            "lots": 3 * args.members,
            "seconds": round(seconds, 1),
            "members_per_s": round(args.members / seconds),
            "peak_rss_mb": round(peak_mb),
            "command_cpu_s": round(cpu, 1),  # user + system of the import process
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "summary": summary,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
