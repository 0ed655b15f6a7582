"""The audit trail: every member event as an explained history entry with the balance after it,
and the moves of points in lots, debt and stored value that the liability sums (SPEC 2.7).

The projection follows the ledger's log with eventsourcing's `ProjectionRunner`; the view
writes an entry, the member's running balance, the event's moves (`projections.liability`) and
the tracking position in one transaction, so an event is applied exactly once however the
process stops and restarts. Lots are described once (what their reference numbers, earned and
due when, under which rule version), which also names them in later entries ("the lot of
receipt R1"). The SQL is written once (`projections/sqlview.py`) for both stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.apikey import ApiKeyIssued
from ledger.domain.identity import MemberMerged
from ledger.domain.member import MemberEvent
from projections import liability
from projections.entries import entry_for, named_lots
from projections.entrybase import Entry, Operator
from projections.liability import NewLot
from projections.sqlview import (
    Cursor,
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


class Outstanding(msgspec.Struct, frozen=True, kw_only=True):
    """What the liability values: each member's sums of moves by lot, and the lots' descriptions."""

    balances: dict[str, dict[int, int]]
    lots: dict[tuple[str, int], NewLot]


BALANCES_KEPT = 200_000  # members whose running balance the writer keeps in memory
NAMES_KEPT = 500_000  # lot names the writer keeps in memory
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
        "holders": Table("key_id TEXT, holder TEXT", key="key_id"),
        "lots": Table(
            "member_id TEXT, lot_id BIGINT, kind TEXT, reference TEXT, earned_at TEXT, "
            "expires_at TEXT, rule_version INTEGER",
            key="member_id, lot_id",
        ),
        "moves": Table(
            "member_id TEXT, seq BIGINT, lot_id BIGINT, occurred_at TEXT, amount BIGINT",
            key="member_id, seq, lot_id",
            indexes=["occurred_at"],
        ),
    }

    def apply(self, event: MemberEvent, tracking: Tracking) -> None:
        """An event's entry (its lots named), its moves and its new lot, atomically."""
        member_uuid = str(event.originator_id)
        with self.transaction() as cursor:
            names = self._names_of(cursor, member_uuid, named_lots(event))
            entry = self._with_holder(cursor, entry_for(event, names))
            lot = liability.new_lot(event)
            new = [lot] if lot is not None else self._moved_lots(cursor, event)
            for lot in new:
                cursor.write(
                    "INSERT INTO {lots} (member_id, lot_id, kind, reference, earned_at, "
                    "expires_at, rule_version) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        member_uuid,
                        lot.lot_id,
                        lot.kind,
                        lot.reference,
                        utc_text(lot.earned_at),
                        utc_text(lot.expires_at) if lot.expires_at else None,
                        lot.rule_version,
                    ),
                )
                self._remember_name(member_uuid, lot.lot_id, f"{lot.kind} {lot.reference}")
            occurred_at = utc_text(entry.occurred_at)
            for lot_id, amount in liability.moves(event).items():
                cursor.write(
                    "INSERT INTO {moves} (member_id, seq, lot_id, occurred_at, amount) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (member_uuid, tracking.notification_id, lot_id, occurred_at, amount),
                )
            self._record(cursor, member_uuid, entry, tracking)

    def _moved_lots(self, cursor: Cursor, event: MemberEvent) -> list[NewLot]:
        """The lots a merge brings in, described as they were in the duplicate (kind, number,
        rule version), under their new ids."""
        if not isinstance(event, MemberMerged) or event.direction != "in":
            return []
        found = []
        for moved in event.lots:
            cursor.execute(
                "SELECT kind, reference, rule_version FROM {lots} WHERE member_id = ? "
                "AND lot_id = ?",
                (str(event.from_account_id), moved.from_lot_id),
            )
            row = cursor.one()
            found.append(
                NewLot(
                    lot_id=moved.lot.lot_id,
                    kind=str(row[0]) if row else "lot",
                    reference=str(row[1]) if row else moved.lot.reference,
                    earned_at=moved.lot.earned_at,
                    expires_at=moved.lot.expires_at,
                    rule_version=None if row is None or row[2] is None else int(row[2]),
                )
            )
        return found

    def note_holder(self, event: ApiKeyIssued, tracking: Tracking) -> None:
        """Remember who holds a key (a key's holder never changes), for the entries it makes."""
        with self.transaction() as cursor:
            if event.holder is not None:
                cursor.write(
                    "INSERT INTO {holders} (key_id, holder) VALUES (?, ?)",
                    (str(event.originator_id), event.holder),
                )
                self.memo().setdefault("holders", {})[str(event.originator_id)] = event.holder
            cursor.track(tracking)

    def _with_holder(self, cursor: Cursor, entry: Entry) -> Entry:
        operator = entry.operator
        if not isinstance(operator, Operator) or operator.key_id is None:
            return entry
        holders: dict[str, str | None] = self.memo().setdefault("holders", {})
        if operator.key_id not in holders:
            holder = None
            if not self.memo_is_whole():
                cursor.execute("SELECT holder FROM {holders} WHERE key_id = ?", (operator.key_id,))
                row = cursor.one()
                holder = row[0] if row else None
            if len(holders) >= NAMES_KEPT:
                holders.clear()
                self.memo_is_partial()
            holders[operator.key_id] = holder
        return msgspec.structs.replace(
            entry, operator=msgspec.structs.replace(operator, holder=holders[operator.key_id])
        )

    def _names_of(self, cursor: Cursor, member_uuid: str, lot_ids: list[int]) -> dict[int, str]:
        """What the member's lots are called: the kind and number of what created each."""
        names: dict[tuple[str, int], str] = self.memo().setdefault("names", {})
        missing = [i for i in lot_ids if (member_uuid, i) not in names]
        if missing and not self.memo_is_whole():
            marks = ", ".join("?" for _ in missing)
            cursor.execute(
                "SELECT lot_id, kind, reference FROM {lots} "
                f"WHERE member_id = ? AND lot_id IN ({marks})",
                [member_uuid, *missing],
            )
            for lot_id, kind, reference in cursor.all():
                self._remember_name(member_uuid, int(lot_id), f"{kind} {reference}")
        return {i: names[(member_uuid, i)] for i in lot_ids if (member_uuid, i) in names}

    def _remember_name(self, member_uuid: str, lot_id: int, name: str) -> None:
        names: dict[tuple[str, int], str] = self.memo().setdefault("names", {})
        if len(names) >= NAMES_KEPT:
            names.clear()
            self.memo_is_partial()
        names[(member_uuid, lot_id)] = name

    def _record(self, cursor: Cursor, member_uuid: str, entry: Entry, tracking: Tracking) -> None:
        """Append an entry (with the member's new balance) and the tracking."""
        balances: dict[str, int] = self.memo().setdefault("balances", {})
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

    def outstanding(self, as_of: datetime) -> Outstanding:
        """Each member's lots, debt and stored value at business time `as_of` (the sums of their
        moves up to it, in whatever order they were recorded), and the lots' descriptions."""
        balances: dict[str, dict[int, int]] = {}
        lots: dict[tuple[str, int], NewLot] = {}
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT member_id, lot_id, SUM(amount) AS amount FROM {moves} "
                "WHERE occurred_at <= ? GROUP BY member_id, lot_id",
                (utc_text(as_of),),
            )
            for member, lot_id, amount in cursor.all():
                if int(amount):
                    balances.setdefault(str(member), {})[int(lot_id)] = int(amount)
            cursor.execute(
                "SELECT member_id, lot_id, kind, reference, earned_at, expires_at, rule_version "
                "FROM {lots} WHERE earned_at <= ?",
                (utc_text(as_of),),
            )
            for member, lot_id, kind, reference, earned, expires, version in cursor.all():
                lots[(str(member), int(lot_id))] = NewLot(
                    lot_id=int(lot_id),
                    kind=str(kind),
                    reference=str(reference),
                    earned_at=datetime.fromisoformat(earned),
                    expires_at=datetime.fromisoformat(expires) if expires else None,
                    rule_version=None if version is None else int(version),
                )
        return Outstanding(balances=balances, lots=lots)

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
        if isinstance(entry.operator, str):  # written before operators named holders
            entry = msgspec.structs.replace(entry, operator=Operator(key_id=entry.operator))
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
        self.view.apply(e, tracking)

    @handles(ApiKeyIssued)
    def _on_key_issued(self, e: ApiKeyIssued, tracking: Tracking) -> None:
        self.view.note_holder(e, tracking)
