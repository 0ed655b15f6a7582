"""What the members view keeps for the expiry run (D66): each member's head — the version and
chain hash of the last member event the view applied, whatever its type — and, per lot, what
`PointsExpired` names (its reference, its expiry instant as stored, with its offset) and its
place in the member's lots (the creating event's version, and its index in that event), so that
`due_seen()` gives what `ledger.domain.expiry` decides from without reading the member's events.

Tables of their own, so a view built before them starts without failing (D45); a member or lot
the view has no such row for is left to the full read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Tracking

from ledger.domain.expiry import DueLot, MemberDue
from ledger.domain.member import CardAliased, MemberEvent
from ledger.policies.lots import Lot
from projections.sqlview import Cursor, SqlView, Table, utc_text

HEADS_TABLES: dict[str, Table] = {
    "heads": Table("member_uuid TEXT, version BIGINT, chain TEXT", key="member_uuid"),
    "lot_details": Table(
        "member_uuid TEXT, lot_id BIGINT, created BIGINT, idx INTEGER, reference TEXT, "
        "expires_at TEXT",
        key="member_uuid, lot_id",
    ),
}


class MemberHeads(SqlView):
    """The members view's heads and lot details (its `lots` table holds what remains)."""

    TABLES: ClassVar[dict[str, Table]] = HEADS_TABLES

    @staticmethod
    def detail(cursor: Cursor, member_uuid: str, lot: Lot, created: int, idx: int) -> None:
        """A new lot's details: made by the member's event `created`, `idx`-th of its lots."""
        cursor.write(
            "INSERT INTO {lot_details} (member_uuid, lot_id, created, idx, reference, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                member_uuid,
                lot.lot_id,
                created,
                idx,
                lot.reference,
                lot.expires_at.isoformat() if lot.expires_at else None,
            ),
        )

    def head(self, event: MemberEvent | CardAliased, tracking: Tracking) -> None:
        """The member's last event applied: its version and chain hash (every member event)."""
        with self.transaction() as cursor:
            cursor.write(
                "INSERT INTO {heads} (member_uuid, version, chain) VALUES (?, ?, ?) "
                "ON CONFLICT (member_uuid) DO UPDATE SET "
                "version = excluded.version, chain = excluded.chain",
                (str(event.originator_id), event.originator_version, event.chain),
            )
            cursor.track(tracking)

    def due_seen(self, members: Sequence[UUID], as_of: datetime) -> dict[UUID, MemberDue]:
        """What the view saw of these members for an expiry run as of `as_of` (D66): each one's
        head and due lots, in the member's order, read in one statement (one consistent state
        of the view): the heads of the members' key range, then their due lots with details.
        A member is left out when the view has no head for it, no due lot, or a due lot without
        its details (applied before the view kept them): the run reads those."""
        if not members:
            return {}
        keys = sorted(str(m) for m in members)
        low, high = keys[0], keys[-1]
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                # named columns: PostgreSQL's rows are dicts (an unnamed column's name repeats)
                "SELECT member_uuid, version, chain, CAST(NULL AS BIGINT) AS lot_id, "
                "CAST(NULL AS BIGINT) AS remaining, CAST(NULL AS BIGINT) AS created, "
                "CAST(NULL AS INTEGER) AS idx, CAST(NULL AS TEXT) AS reference, "
                "CAST(NULL AS TEXT) AS expires_at "
                "FROM {heads} WHERE member_uuid >= ? AND member_uuid <= ? "
                "UNION ALL "
                "SELECT l.member_uuid, NULL, NULL, l.lot_id, l.remaining, d.created, d.idx, "
                "d.reference, d.expires_at FROM {lots} l LEFT JOIN {lot_details} d "
                "ON d.member_uuid = l.member_uuid AND d.lot_id = l.lot_id "
                "AND d.member_uuid >= ? AND d.member_uuid <= ? "  # its key range too
                "WHERE l.member_uuid >= ? AND l.member_uuid <= ? "
                "AND l.expires_at <= ? AND l.remaining > 0",
                (low, high, low, high, low, high, utc_text(as_of)),
            )
            rows = cursor.all()
        wanted = set(keys)  # the range may hold others (members that fell due since listed)
        heads: dict[str, tuple[int, str]] = {}
        found: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[0] not in wanted:
                continue
            if row[3] is None:
                heads[row[0]] = (int(row[1]), str(row[2] or ""))
            else:
                found.setdefault(row[0], []).append(row)
        seen: dict[UUID, MemberDue] = {}
        for member_uuid, lots in found.items():
            head = heads.get(member_uuid)
            if head is None or any(r[5] is None for r in lots):
                continue
            lots.sort(key=lambda r: (int(r[5]), int(r[6])))
            member_id = UUID(member_uuid)
            seen[member_id] = MemberDue(
                member_id=member_id,
                version=head[0],
                chain=head[1],
                lots=[
                    DueLot(
                        lot_id=int(r[3]),
                        reference=str(r[7]),
                        expires_at=datetime.fromisoformat(r[8]),
                        remaining=int(r[4]),
                    )
                    for r in lots
                ],
            )
        return seen
