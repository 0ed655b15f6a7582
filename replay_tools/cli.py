"""The replay tools' subcommands of `ledger` (each module adds its own parsers)."""

from __future__ import annotations

import argparse
from typing import Any

from replay_tools import demo, logio, projections_cli, whatif


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    for module in (projections_cli, logio, whatif, demo):
        module.add_commands(commands)
