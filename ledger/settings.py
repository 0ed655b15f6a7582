"""Configuration from the environment (LEDGER_*), read once at start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ledger.infrastructure.persistence import DEFAULT_DATABASE_URL


class ConfigError(ValueError):
    """A LEDGER_* variable is missing or wrong: the service refuses to start."""


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
            raise ConfigError(f"LEDGER_TIMEZONE: unknown time zone {timezone!r}") from e
        return cls(
            database_url=env.get("LEDGER_DATABASE_URL", DEFAULT_DATABASE_URL),
            admin_key=env.get("LEDGER_ADMIN_KEY") or None,
            timezone=timezone,
            master_key=_master_key(env),
            max_body_bytes=int(env.get("LEDGER_MAX_BODY_BYTES", 256 * 1024)),
            member_cache_size=int(env.get("LEDGER_MEMBER_CACHE_SIZE", 10_000)),
            expire_daily=_expire_daily(env),
            run_projections=env.get("LEDGER_PROJECTIONS", "inline").lower() != "off",
        )


def _expire_daily(env: dict[str, str]) -> bool:
    """LEDGER_EXPIRE_DAILY if set; otherwise on in production, off elsewhere (SPEC 2.5)."""
    value = env.get("LEDGER_EXPIRE_DAILY", "").strip().lower()
    if value:
        return value in ("1", "true", "yes", "on")
    return env.get("LEDGER_ENV", "development").lower() == "production"


def parse_master_key(text: str, variable: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{variable} must be 64 hex digits (32 bytes)")
    return key


def _master_key(env: dict[str, str]) -> bytes:
    """`LEDGER_MASTER_KEY` (hex, 32 bytes); outside production, else a key file generated once
    beside the service (the embedded default's convenience, not a place for real data)."""
    if env.get("LEDGER_MASTER_KEY"):
        return parse_master_key(env["LEDGER_MASTER_KEY"], "LEDGER_MASTER_KEY")
    if env.get("LEDGER_ENV", "development").lower() == "production":
        raise ConfigError(
            "LEDGER_MASTER_KEY is required when LEDGER_ENV=production: 64 hex digits "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`), kept in your "
            "secret store; it wraps every member's key, so losing it loses all personal data"
        )
    path = Path(env.get("LEDGER_MASTER_KEY_FILE", ".ledger-master.key"))
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return bytes.fromhex(path.read_text().strip())
