"""Members across the chain: who holds which lots until when (expiry reminders), and each
store's card stock (门店发卡统计: dispatched, on hand, activated per month).

Lots are followed through every movement that touches them (accrual, credit, spending,
reversal, void, expiry), so `expiring()` answers "who has points expiring in the next N days"
with one indexed query. A card enrolled from a store's dispatched stock leaves that store's
stock; activations count at the enrolling store (a card never dispatched counts as issued there).

For the expiry run the view also keeps each member's head and each lot's details
(`projections.memberheads`, D66), so the run decides without reading members' events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import Tracking

from ledger.domain.cards import CardRange, CardsDispatched, card_range
from ledger.domain.identity import CardReplaced, MemberMerged
from ledger.domain.member import (
    BonusGranted,
    CardAliased,
    MemberEnrolled,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsConverted,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
    RedemptionVoided,
)
from ledger.domain.opening import MemberImported, OpeningLotImported
from ledger.domain.rulebook import RuleSetPublished
from ledger.domain.settlement import DEFAULT_ZONE
from ledger.policies.chaintime import month_of
from ledger.policies.lots import Lot, LotTake
from projections.chainzone import CHAIN_TABLE, ChainZoneView
from projections.memberheads import HEADS_TABLES, MemberHeads
from projections.sqlview import (
    Cursor,
    PostgresSqlView,
    SQLiteSqlView,
    Table,
    ViewProjection,
    handles,
    utc_text,
)


class ExpiringMember(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    store_id: str  # the member's home store, which sends the reminder
    points: int  # expiring within the window
    first_expires_at: datetime


class CardStock(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    dispatched: int
    on_hand: int  # dispatched and not yet enrolled anywhere
    activated: int  # enrolled at this store, all time
    activated_in_period: int | None = None
    period: str | None = None


class MembersView(ChainZoneView, MemberHeads):
    TABLES: ClassVar[dict[str, Table]] = {
        "directory": Table(
            "member_uuid TEXT, member_id TEXT, store_id TEXT, enrolled_at TEXT",
            key="member_uuid",
        ),
        "lots": Table(
            "member_uuid TEXT, lot_id BIGINT, expires_at TEXT, remaining BIGINT",
            key="member_uuid, lot_id",
            indexes=["expires_at"],
        ),
        "card_ranges": Table(
            "store_id TEXT, prefix TEXT, width INTEGER, low BIGINT, high BIGINT",
            key="prefix, width, low",
        ),
        "card_stock": Table(
            "store_id TEXT, dispatched BIGINT, taken BIGINT, activated BIGINT", key="store_id"
        ),
        "activations": Table("store_id TEXT, period TEXT, cards BIGINT", key="store_id, period"),
        "chain": CHAIN_TABLE,
        **HEADS_TABLES,  # D66: each member's last event applied, what expiring a lot names
    }

    # -- writing (the projection) ----------------------------------------------------------

    def enrolled(self, event: MemberEnrolled | MemberImported, tracking: Tracking) -> None:
        """A member in the directory; an enrolment also takes a card from stock (an imported
        member's card was issued by the legacy system)."""
        with self.transaction() as cursor:
            cursor.write(
                "INSERT INTO {directory} (member_uuid, member_id, store_id, enrolled_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    str(event.originator_id),
                    event.member_id,
                    event.store_id,
                    utc_text(event.occurred_at),
                ),
            )
            if isinstance(event, MemberImported):
                cursor.track(tracking)
                return
            source = self._stock_of(cursor, event.member_id)
            if source is not None:
                self._stock(cursor, source, taken=1)
            self._stock(cursor, event.store_id, activated=1)
            period = month_of(event.occurred_at, self.chain_zone(cursor))
            cursor.write(
                "INSERT INTO {activations} (store_id, period, cards) VALUES (?, ?, 1) "
                "ON CONFLICT (store_id, period) DO UPDATE SET cards = {activations}.cards + 1",
                (event.store_id, period),
            )
            cursor.track(tracking)

    def dispatched(self, event: CardsDispatched, tracking: Tracking) -> None:
        cards = card_range(event.store_id, event.first, event.last)
        with self.transaction() as cursor:
            ranges = self._ranges(cursor)
            cursor.write(
                "INSERT INTO {card_ranges} (store_id, prefix, width, low, high) "
                "VALUES (?, ?, ?, ?, ?)",
                (event.store_id, cards.prefix, cards.width, cards.low, cards.high),
            )
            self._stock(cursor, event.store_id, dispatched=cards.count)
            cursor.track(tracking)
            ranges.append(cards)

    def lots(
        self,
        member_uuid: str,
        tracking: Tracking,
        new: Lot | list[Lot] | None = None,
        takes: list[LotTake] | None = None,
        sign: int = 1,
        *,
        created: int = 0,
    ) -> None:
        """New lots (made by the member's event of version `created`), and/or points taken
        from (sign 1) or given back to (sign −1) lots. Both are additive upserts, so they
        commute (a batch may write them in any order)."""
        with self.transaction() as cursor:
            for idx, lot in enumerate(new if isinstance(new, list) else [new] if new else []):
                self.detail(cursor, member_uuid, lot, created, idx)
                cursor.write(
                    "INSERT INTO {lots} (member_uuid, lot_id, expires_at, remaining) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (member_uuid, lot_id) DO UPDATE SET "
                    "expires_at = excluded.expires_at, "
                    "remaining = {lots}.remaining + excluded.remaining",
                    (
                        member_uuid,
                        lot.lot_id,
                        utc_text(lot.expires_at) if lot.expires_at else None,
                        lot.remaining,
                    ),
                )
            for take in takes or []:
                cursor.write(
                    "INSERT INTO {lots} (member_uuid, lot_id, expires_at, remaining) "
                    "VALUES (?, ?, NULL, ?) ON CONFLICT (member_uuid, lot_id) DO UPDATE SET "
                    "remaining = {lots}.remaining + excluded.remaining",
                    (member_uuid, take.lot_id, -sign * take.points),
                )
            cursor.track(tracking)

    def card_replaced(self, event: CardReplaced, tracking: Tracking) -> None:
        """The account is listed under its new card (reminders name the card in the hand)."""
        with self.transaction() as cursor:
            cursor.write(
                "UPDATE {directory} SET member_id = ? WHERE member_uuid = ?",
                (event.new_member_id, str(event.originator_id)),
            )
            cursor.track(tracking)

    def _ranges(self, cursor: Cursor) -> list[CardRange]:
        memo = self.memo()
        if "ranges" not in memo:
            cursor.execute("SELECT store_id, prefix, width, low, high FROM {card_ranges}")
            memo["ranges"] = [
                CardRange(
                    store_id=r[0], prefix=r[1], width=int(r[2]), low=int(r[3]), high=int(r[4])
                )
                for r in cursor.all()
            ]
        ranges: list[CardRange] = memo["ranges"]
        return ranges

    def _stock_of(self, cursor: Cursor, card: str) -> str | None:
        """The store whose dispatched stock the card came from, if any."""
        for cards in self._ranges(cursor):
            if cards.holds(card):
                return cards.store_id
        return None

    @staticmethod
    def _stock(
        cursor: Cursor, store_id: str, dispatched: int = 0, taken: int = 0, activated: int = 0
    ) -> None:
        cursor.write(
            "INSERT INTO {card_stock} (store_id, dispatched, taken, activated) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (store_id) DO UPDATE SET "
            "dispatched = {card_stock}.dispatched + excluded.dispatched, "
            "taken = {card_stock}.taken + excluded.taken, "
            "activated = {card_stock}.activated + excluded.activated",
            (store_id, dispatched, taken, activated),
        )

    # -- reading ---------------------------------------------------------------------------

    def expiring(
        self,
        now: datetime,
        until: datetime,
        store_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> list[ExpiringMember]:
        """Members with points expiring after `now` and by `until`, soonest first; the instants
        in the chain's time zone (a reminder names the chain's day, SPEC 2.5)."""
        where = "l.remaining > 0 AND l.expires_at > ? AND l.expires_at <= ?"
        params: list[Any] = [utc_text(now), utc_text(until)]
        if store_id is not None:
            where += " AND d.store_id = ?"
            params.append(store_id)
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT d.member_id, d.store_id, SUM(l.remaining), MIN(l.expires_at) "
                "FROM {lots} l JOIN {directory} d ON d.member_uuid = l.member_uuid "
                f"WHERE {where} GROUP BY d.member_id, d.store_id "
                "ORDER BY MIN(l.expires_at), d.member_id LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
            rows = cursor.all()
            cursor.execute("SELECT value FROM {chain} WHERE name = 'zone'")
            found = cursor.one()
        zone = ZoneInfo(str(found[0]) if found else DEFAULT_ZONE)
        return [
            ExpiringMember(
                member_id=r[0],
                store_id=r[1],
                points=int(r[2]),
                first_expires_at=datetime.fromisoformat(r[3]).astimezone(zone),
            )
            for r in rows
        ]

    def due(self, as_of: datetime) -> list[UUID]:
        """Members holding points in lots whose expiry is not after `as_of`."""
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT DISTINCT member_uuid FROM {lots} WHERE expires_at <= ? AND remaining > 0 "
                "ORDER BY member_uuid",  # chunks of neighbours: `due_seen` reads a key range
                (utc_text(as_of),),
            )
            return [UUID(r[0]) for r in cursor.all()]

    def card_stock(self, store_id: str, period: str | None = None) -> CardStock:
        with self.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT dispatched, taken, activated FROM {card_stock} WHERE store_id = ?",
                (store_id,),
            )
            row = cursor.one() or (0, 0, 0)
            in_period = None
            if period is not None:
                cursor.execute(
                    "SELECT cards FROM {activations} WHERE store_id = ? AND period = ?",
                    (store_id, period),
                )
                found = cursor.one()
                in_period = int(found[0]) if found else 0
        return CardStock(
            store_id=store_id,
            dispatched=int(row[0]),
            on_hand=int(row[0]) - int(row[1]),
            activated=int(row[2]),
            activated_in_period=in_period,
            period=period,
        )


class PostgresMembersView(PostgresSqlView, MembersView):
    pass


class SQLiteMembersView(SQLiteSqlView, MembersView):
    pass


class MembersProjection(ViewProjection[MembersView]):
    name = "members"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Every member event also moves the member's head (D66), in the same transaction as
        its rows and the view's position."""
        if not isinstance(domain_event, MemberEvent | CardAliased):
            super().process_event(domain_event, tracking)
            return
        with self.view.atomic():
            super().process_event(domain_event, tracking)
            self.view.head(domain_event, tracking)

    @handles(RuleSetPublished)
    def _on_rulesetpublished(self, e: RuleSetPublished, tracking: Tracking) -> None:
        self.view.zone(e, tracking)

    @handles(MemberEnrolled)
    def _on_memberenrolled(self, e: MemberEnrolled, tracking: Tracking) -> None:
        self.view.enrolled(e, tracking)

    @handles(MemberImported)
    def _on_memberimported(self, e: MemberImported, tracking: Tracking) -> None:
        self.view.enrolled(e, tracking)

    @handles(OpeningLotImported)
    def _on_openinglotimported(self, e: OpeningLotImported, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, new=e.lot, created=e.originator_version)

    @handles(CardsDispatched)
    def _on_cardsdispatched(self, e: CardsDispatched, tracking: Tracking) -> None:
        self.view.dispatched(e, tracking)

    @handles(PointsAccrued)
    def _on_pointsaccrued(self, e: PointsAccrued, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, new=e.lot, created=e.originator_version)

    @handles(BonusGranted)
    def _on_bonusgranted(self, e: BonusGranted, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, new=e.lot, created=e.originator_version)

    @handles(PointsAdjusted)
    def _on_pointsadjusted(self, e: PointsAdjusted, tracking: Tracking) -> None:
        self.view.lots(
            str(e.originator_id), tracking, new=e.lot, takes=e.takes, created=e.originator_version
        )

    @handles(PointsReversed)
    def _on_pointsreversed(self, e: PointsReversed, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, takes=e.takes)

    @handles(PointsRedeemed)
    def _on_pointsredeemed(self, e: PointsRedeemed, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, takes=e.takes)

    @handles(PointsConverted)
    def _on_pointsconverted(self, e: PointsConverted, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, takes=e.takes)

    @handles(RedemptionVoided)
    def _on_redemptionvoided(self, e: RedemptionVoided, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, takes=e.restores, sign=-1)

    @handles(PointsExpired)
    def _on_pointsexpired(self, e: PointsExpired, tracking: Tracking) -> None:
        self.view.lots(str(e.originator_id), tracking, takes=[LotTake(e.lot_id, e.points)])

    @handles(CardReplaced)
    def _on_cardreplaced(self, e: CardReplaced, tracking: Tracking) -> None:
        self.view.card_replaced(e, tracking)

    @handles(MemberMerged)
    def _on_membermerged(self, e: MemberMerged, tracking: Tracking) -> None:
        member_uuid = str(e.originator_id)
        if e.direction == "out":
            takes = [LotTake(m.from_lot_id, m.lot.remaining) for m in e.lots]
            self.view.lots(member_uuid, tracking, takes=takes)
        else:
            lots = [m.lot for m in e.lots]
            self.view.lots(member_uuid, tracking, new=lots, created=e.originator_version)
