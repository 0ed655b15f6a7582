"""The chain's time zone kept inside a view: the zone of the newest rule version published,
in the view's `chain` table (a row `zone`), so that its days and months are the chain's own and
a rebuild decides them as the live view did."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from eventsourcing.persistence import Tracking

from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.settlement import DEFAULT_ZONE
from projections.sqlview import Cursor, SqlView, Table

CHAIN_TABLE = Table("name TEXT, value TEXT", key="name")


class ChainZoneView(SqlView):
    """A view with a `chain` table (`CHAIN_TABLE` among its TABLES) that follows the zone."""

    def zone(self, event: RuleSetPublished, tracking: Tracking) -> None:
        with self.transaction() as cursor:
            cursor.write(
                "INSERT INTO {chain} (name, value) VALUES ('zone', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (event.rules.zone.key,),
            )
            cursor.track(tracking)
            self.memo()["zone"] = event.rules.zone.key

    def chain_zone(self, cursor: Cursor) -> ZoneInfo:
        """The zone as of the events applied so far (the default before any rule set)."""
        memo = self.memo()
        if "zone" not in memo:
            cursor.execute("SELECT value FROM {chain} WHERE name = 'zone'")
            row = cursor.one()
            memo["zone"] = str(row[0]) if row else DEFAULT_ZONE
        return ZoneInfo(memo["zone"])
