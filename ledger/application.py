"""The ledger application: one core (the event store) and the services on it, composed.

Callers hold a `Ledger` and use the service they need (`ledger.sales.post(...)`,
`ledger.members.enrol(...)`); the services own the business commands, the core owns reading,
writing and retrying (`ledger.services.core`). One `Ledger` per process; it is thread-safe.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import PersistenceError

from ledger.infrastructure.leases import schema_lock
from ledger.infrastructure.vault import MemberKeys
from ledger.services.access import AccessService
from ledger.services.bonuses import BonusesService
from ledger.services.core import LedgerCore
from ledger.services.identity import IdentityService
from ledger.services.imports import ImportService
from ledger.services.members import MembersService
from ledger.services.personal import PersonalDataService
from ledger.services.redemptions import RedemptionsService
from ledger.services.rules import RulesService
from ledger.services.runs import RunsService
from ledger.services.sales import SalesService
from ledger.services.settlement import SettlementService
from ledger.services.storedvalue import StoredValueService
from ledger.settings import Settings


class Ledger:
    """The pharmacy points ledger: the core and one service per concern."""

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str] | None = None,
        on_appended: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.core = LedgerCore(settings, env, on_appended)
        keys = MemberKeys(self.core.keys, settings.master_key)
        self.rules = RulesService(self.core)
        self.access = AccessService(self.core)
        self.members = MembersService(self.core, self.rules, self.access, keys)
        self.personal = PersonalDataService(self.core, self.members, keys)
        self.identity = IdentityService(self.core, self.rules, self.access, self.members)
        self.sales = SalesService(self.core, self.rules, self.access)
        self.redemptions = RedemptionsService(self.core, self.rules, self.access)
        self.stored_value = StoredValueService(self.core, self.rules, self.access)
        self.bonuses = BonusesService(self.core, self.rules, self.access)
        self.runs = RunsService(self.core, self.rules)
        self.settlement = SettlementService(self.core)
        self.imports = ImportService(self.core, self.rules, self.access, self.members, keys)

    def close(self) -> None:
        self.core.close()


STARTS_MAX = 5


def open_ledger(settings: Settings, **kwargs: Any) -> Ledger:
    """A Ledger, its tables made if missing, one process at a time (the schema lock,
    `ledger.infrastructure.leases`). Before that lock, processes started together raced: one of
    two concurrent `CREATE OR REPLACE FUNCTION`s (eventsourcing's insert function) failed with
    "tuple concurrently updated"; a start that fails is still retried, with jitter.
    The service and every `ledger` command build their ledger this way."""
    for n in range(STARTS_MAX):
        try:
            with schema_lock(settings.database_url, settings.postgres.connect_timeout_seconds):
                return Ledger(settings, **kwargs)
        except PersistenceError:
            if n == STARTS_MAX - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (n + 1))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")
