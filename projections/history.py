"""The audit trail: every member event as an explained history entry with the balance after it.

The projection follows the ledger's log with eventsourcing's `ProjectionRunner`; the view
writes an entry, the member's running balance and the tracking position in one transaction,
so an event is applied exactly once however the process stops and restarts. The SQL is
written once (`projections/sqlview.py`) for both stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.member import MemberEvent
from projections.entries import Entry, entry_for
from projections.sqlview import (
    PostgresSqlView,
    SQLiteSqlView,
    SqlView,
    Table,
    ViewProjection,
    all_subclasses,
    handles,
    utc_text,
)


class HistoryEntry(Entry, frozen=True, kw_only=True):
    """SPEC 3's history entry."""

    seq: int
    balance_after: int


class HistoryQuery(msgspec.Struct, frozen=True, kw_only=True):
    member: str  # the member aggregate's id
    before_seq: int | None = None
    limit: int = 50
    type: str | None = None
    store_id: str | None = None
    reference: str | None = None
    as_of: datetime | None = None  # entries with occurred_at <= as_of


class BalanceStep(msgspec.Struct, frozen=True, kw_only=True):
    """The member's balance right after an entry, in business-time order (a chart's point)."""

    occurred_at: datetime
    balance: int


class Liability(msgspec.Struct, frozen=True, kw_only=True):
    points: int  # Σ over members of their positive balance (a member in debt owes, not is owed)
    members: int  # members with a positive balance


BALANCES_KEPT = 200_000  # members whose running balance the writer keeps in memory
_entry_encoder = msgspec.json.Encoder()
_entry_decoder = msgspec.json.Decoder(Entry)


class HistoryView(SqlView):
    """What the history projection writes and the API reads."""

    TABLES: ClassVar[dict[str, Table]] = {
        "entries": Table(
            "member_id TEXT, seq BIGINT, type TEXT, occurred_at TEXT, store_id TEXT, "
            "reference TEXT, points_delta BIGINT, balance_after BIGINT, body TEXT",
            key="member_id, seq",
            indexes=["member_id, reference", "occurred_at"],
        ),
        "balances": Table("member_id TEXT, points BIGINT", key="member_id"),
    }

    def record(self, member_uuid: str, entry: Entry, tracking: Tracking) -> None:
        """Append an entry (with the member's new balance) and the tracking, atomically."""
        balances: dict[str, int] = self.memo().setdefault("balances", {})
        with self.transaction() as cursor:
            balance = balances.get(member_uuid)
            if balance is None and self.memo_is_whole():
                balance = 0  # a member the rebuilt view has not seen yet
            elif balance is None:
                cursor.execute("SELECT points FROM {balances} WHERE member_id = ?", (member_uuid,))
                row = cursor.one()
                balance = row[0] if row else 0
            balance += entry.points_delta
            cursor.write(
                "INSERT INTO {entries} (member_id, seq, type, occurred_at, store_id, reference, "
                "points_delta, balance_after, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    member_uuid,
                    tracking.notification_id,
                    entry.type,
                    utc_text(entry.occurred_at),
                    entry.store_id,
                    entry.reference,
                    entry.points_delta,
                    balance,
                    _entry_encoder.encode(entry).decode(),
                ),
            )
            cursor.write(
                "INSERT INTO {balances} (member_id, points) VALUES (?, ?) "
                "ON CONFLICT (member_id) DO UPDATE SET points = excluded.points",
                (member_uuid, balance),
            )
            cursor.track(tracking)
            if len(balances) >= BALANCES_KEPT:
                balances.clear()
                self.memo_is_partial()
            balances[member_uuid] = balance

    def entries(self, query: HistoryQuery) -> list[HistoryEntry]:
        """Newest first."""
        clauses, params = ["member_id = ?"], list[Any]([query.member])
        for column, value in (
            ("type", query.type),
            ("store_id", query.store_id),
            ("reference", query.reference),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.before_seq is not None:
            clauses.append("seq < ?")
            params.append(query.before_seq)
        if query.as_of is not None:
            clauses.append("occurred_at <= ?")
            params.append(utc_text(query.as_of))
        where = " AND ".join(clauses)
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT seq, balance_after, body FROM {{entries}} WHERE {where} "
                "ORDER BY seq DESC LIMIT ?",
                [*params, query.limit],
            )
            return [self._row(seq, after, body) for seq, after, body in cursor.all()]

    def liability(self, as_of: datetime) -> Liability:
        """Outstanding points at business time `as_of`: each member's balance then (the sum of
        their entries up to it, in whatever order they were recorded), positive ones only."""
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT COALESCE(SUM(points), 0), COUNT(*) FROM (SELECT member_id, "
                "SUM(points_delta) AS points FROM {entries} WHERE occurred_at <= ? "
                "GROUP BY member_id) AS balances WHERE points > 0",
                (utc_text(as_of),),
            )
            row = cursor.one()
        return Liability(points=int(row[0]) if row else 0, members=int(row[1]) if row else 0)

    def balance_steps(self, member: str, limit: int) -> list[BalanceStep]:
        """The balance after each of the member's last `limit` entries by business time
        (`occurred_at`, then log order), oldest first; the balance before them is the sum of the
        member's other entries, so a long history is cut at its start, never miscounted."""
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT occurred_at, points_delta FROM {entries} WHERE member_id = ? "
                "ORDER BY occurred_at DESC, seq DESC LIMIT ?",
                (member, limit),
            )
            rows = cursor.all()
            cursor.execute(
                "SELECT COALESCE(SUM(points_delta), 0) FROM {entries} WHERE member_id = ?",
                (member,),
            )
            total = cursor.one()
        balance = (int(total[0]) if total else 0) - sum(int(r[1]) for r in rows)
        steps = []
        for occurred_at, delta in reversed(rows):
            balance += int(delta)
            steps.append(
                BalanceStep(occurred_at=datetime.fromisoformat(occurred_at), balance=balance)
            )
        return steps

    @staticmethod
    def _row(seq: int, balance_after: int, body: bytes | str) -> HistoryEntry:
        entry = _entry_decoder.decode(body)
        return HistoryEntry(seq=seq, balance_after=balance_after, **msgspec.structs.asdict(entry))


class PostgresHistoryView(PostgresSqlView, HistoryView):
    pass


class SQLiteHistoryView(SQLiteSqlView, HistoryView):
    pass


class HistoryProjection(ViewProjection[HistoryView]):
    """Every member event, as an entry. Other events only move the tracking position (no
    topic filter: a filtered view could never say it has caught up with the log's head)."""

    name = "history"

    @handles(*all_subclasses(MemberEvent))
    def _on_member_event(self, e: MemberEvent, tracking: Tracking) -> None:
        self.view.record(str(e.originator_id), entry_for(e), tracking)
