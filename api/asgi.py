"""ASGI entry point for multi-worker servers: the app configured from the environment."""

from __future__ import annotations

from api.app import create_app
from ledger.settings import Settings

app = create_app(Settings.from_env())
