"""The development admin key: generated once (mode 0600) beside the SQLite file, or in the working
directory for PostgreSQL, or where `LEDGER_ADMIN_KEY_FILE` says; never with `LEDGER_ADMIN_KEY`
set, never under `LEDGER_ENV=production`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ledger.settings import ConfigError, admin_key_file, development_admin_key

pytestmark = pytest.mark.unit


def test_generated_once_beside_the_sqlite_file_owner_only(tmp_path: Path) -> None:
    env = {"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'ledger.db'}"}
    (tmp_path / "data").mkdir()
    first = development_admin_key(env)
    assert first is not None
    key, path = first
    assert path == tmp_path / "data" / ".ledger-admin.key"
    assert key.startswith("pl_") and len(key) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert development_admin_key(env) == (key, path)  # the next start reads the same key


def test_the_default_database_and_postgresql_keep_it_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert admin_key_file({}) == Path(".ledger-admin.key")  # beside ./ledger.db
    postgres = {"LEDGER_DATABASE_URL": "postgresql://ledger@db/ledger"}
    assert admin_key_file(postgres) == Path(".ledger-admin.key")
    found = development_admin_key(postgres)
    assert found is not None and (tmp_path / ".ledger-admin.key").read_text().strip() == found[0]
    chosen = {"LEDGER_ADMIN_KEY_FILE": str(tmp_path / "keys" / "admin")}
    assert admin_key_file(chosen) == tmp_path / "keys" / "admin"


def test_none_with_an_admin_key_given_or_in_production(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert development_admin_key({"LEDGER_DATABASE_URL": url, "LEDGER_ADMIN_KEY": "k" * 20}) is None
    production = {"LEDGER_DATABASE_URL": url, "LEDGER_ENV": "Production"}
    assert development_admin_key(production) is None
    assert not (tmp_path / ".ledger-admin.key").exists()


def test_an_emptied_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".ledger-admin.key").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        development_admin_key({"LEDGER_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}"})
