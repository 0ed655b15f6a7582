"""Configuration from the environment (LEDGER_*), read once at start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ledger.persistence import DEFAULT_DATABASE_URL


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    admin_key: str | None = None
    timezone: str = "Asia/Shanghai"
    master_key: bytes = b""
    max_body_bytes: int = 256 * 1024
    member_cache_size: int = 10_000
    expire_daily: bool = False
    run_projections: bool = True  # follow the log in this process (off: `ledger project` does)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        timezone = env.get("LEDGER_TIMEZONE", "Asia/Shanghai")
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"LEDGER_TIMEZONE: unknown time zone {timezone!r}") from e
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            admin_key=env.get("LEDGER_ADMIN_KEY") or None,
            timezone=timezone,
            master_key=_master_key(env),
            max_body_bytes=int(env.get("LEDGER_MAX_BODY_BYTES", 256 * 1024)),
            member_cache_size=int(env.get("LEDGER_MEMBER_CACHE_SIZE", 10_000)),
            expire_daily=env.get("LEDGER_EXPIRE_DAILY", "").lower() in ("1", "true", "yes"),
            run_projections=env.get("LEDGER_PROJECTIONS", "inline").lower() != "off",
        )


def _master_key(env: dict[str, str]) -> bytes:
    """`LEDGER_MASTER_KEY` (hex, 32 bytes), else a key file generated once beside the service."""
    if env.get("LEDGER_MASTER_KEY"):
        key = bytes.fromhex(env["LEDGER_MASTER_KEY"])
        if len(key) != 32:
            raise ValueError("LEDGER_MASTER_KEY must be 64 hex digits (32 bytes)")
        return key
    path = Path(env.get("LEDGER_MASTER_KEY_FILE", ".ledger-master.key"))
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())
