"""The core every service stands on: the event store, and the one way to read and write it.

`LedgerCore` is eventsourcing's `Application` for the ledger's log. It opens the store (SQLite
or PostgreSQL, `ledger.infrastructure.persistence`), reads aggregates (`get`), writes events
(`save`, the only write path), retries a command that lost an optimistic race (`retrying`),
chains every event's hash to its aggregate's previous one (`ledger.infrastructure.hashchain`)
and snapshots members. The services (`ledger.services.*`) hold the business commands; nothing
here knows what a sale or a redemption is.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application, LRUCache
from eventsourcing.persistence import DataError, IntegrityError, PersistenceError, Recording

from ledger.domain import identity, ids
from ledger.domain.errors import InvalidInput, MemberNotFound, Unavailable, invariant
from ledger.domain.member import Member, MemberEvent
from ledger.domain.member import evolve as evolve_member
from ledger.domain.model import Aggregate, DomainEvent, Evolve, Snapshot, projector
from ledger.infrastructure import hashchain, vault
from ledger.infrastructure.groupcommit import GroupCommit
from ledger.infrastructure.identityindex import BULK_EVENTS_MIN, IdentityChange, IdentityIndex
from ledger.infrastructure.keystore import SqlKeyStore
from ledger.infrastructure.logpages import notifications
from ledger.infrastructure.membercache import BudgetCache
from ledger.infrastructure.persistence import MsgspecMapper, eventsourcing_env, put_snapshots
from ledger.infrastructure.sessions import EndedSessions
from ledger.infrastructure.topics import topics_of
from ledger.settings import Settings

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)

RETRIES_MAX = 25
MERGES_FOLLOWED_MAX = 16  # a duplicate merged into a member later merged itself, and so on
SNAPSHOT_INTERVAL = 100  # a member snapshot at every 100th version
CHAINS_KEPT = 20_000  # (aggregate, version) hashes kept between a command's read and its save
CONSOLE_SESSIONS_KEPT = timedelta(hours=9)  # a console session lives 8 hours
BIRTHDAYS_KEPT = 100_000  # members' birthdays kept in memory (a few MB)
_canonical = msgspec.json.Encoder(order="deterministic")
project_member = projector(evolve_member)


def _without_cashier(encoded: bytes) -> bytes:
    """`encoded` without a top-level `"cashier":null` (never inside a string: JSON escapes a
    quote there, and no nested request struct has a cashier)."""
    return encoded.replace(b',"cashier":null', b"", 1)


class LedgerCore(Application[UUID]):
    """The ledger's event store and its one read path and one write path (thread-safe)."""

    name = "Ledger"  # the tables' names: `ledger_events` (PostgreSQL); never rename
    is_snapshotting_enabled = True
    snapshot_class = Snapshot

    def __init__(
        self,
        settings: Settings,
        env: dict[str, str] | None = None,
        on_appended: Callable[[int], None] | None = None,
    ) -> None:
        if len(settings.master_key) != vault.KEY_BYTES:
            raise ValueError("the master key must be 32 bytes (LEDGER_MASTER_KEY: 64 hex digits)")
        self.settings = settings
        self._on_appended = on_appended
        base = eventsourcing_env(settings.database_url, settings.postgres)
        # eventsourcing reads 0 as "unbounded"; here 0 means no cache (an empty setting).
        base["AGGREGATE_CACHE_MAXSIZE"] = str(settings.member_cache_size or "")
        self._chains: dict[tuple[UUID, int], str] = {}  # oldest first
        self._chains_lock = threading.Lock()
        self._birthdays: dict[UUID, str | None] = {}
        self._birthdays_loaded = False
        self._committer = GroupCommit(self._write)
        super().__init__(env=base | (env or {}))
        self._cache: BudgetCache | None = None
        if isinstance(self.repository.cache, LRUCache):  # bounded in bytes too (D68)
            self._cache = BudgetCache(settings.member_cache_size, settings.member_cache_mb << 20)
            self.repository.cache = self._cache
        self.keys: vault.KeyStore = SqlKeyStore(self.recorder)
        self.identities = IdentityIndex(self.recorder)
        self.ended_sessions = EndedSessions(self.recorder, keep=CONSOLE_SESSIONS_KEPT)

    def close(self) -> None:
        self._committer.close()
        super().close()

    def _notify(self, recordings: list[Any]) -> None:
        if self._on_appended is not None:
            self._on_appended(len(recordings))

    # -- writing ------------------------------------------------------------------------------

    def save(self, *events: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save `events` atomically: the one way anything is written.

        The events are chained (each aggregate's first one to the hash of the version before it)
        and handed to the group committer, which writes whatever commands are waiting in one
        transaction. That is always safe, so there is no other path: if that transaction
        clashes, each command's events are written again in a transaction of their own, so each
        command gets exactly its own outcome (saved, or the `IntegrityError` it must retry or
        report). `identity`: rows of the identity index written (or members forgotten) in the
        same transaction. Then any member whose version crossed SNAPSHOT_INTERVAL is snapshotted
        (eventsourcing snapshots only aggregates it saved itself, and these are saved as events),
        all of this save's snapshots in one transaction (an expiry run's chunk crosses many).
        """
        identity: IdentityChange | None = kwargs.pop("identity", None)
        invariant(not kwargs, "events are saved with no options but `identity`")
        self._committer.save(self._chained(events), identity)
        self._snapshot(
            [
                (event.originator_id, event.originator_version)
                for event in events
                if isinstance(event, MemberEvent)
                and event.originator_version % SNAPSHOT_INTERVAL == 0
            ]
        )
        return []

    def _snapshot(self, members: Sequence[tuple[UUID, int]]) -> None:
        """Snapshots of these members at these versions, written in one transaction (each is
        a read: the last snapshot before it and the events since)."""
        if not members:
            return
        snapshots = [
            Snapshot.take(self.repository.get(key, version=version, projector_func=project_member))
            for key, version in members
        ]
        invariant(self.snapshots is not None, "members are snapshotted")
        put_snapshots(self.snapshots, snapshots)

    def _write(self, *events: DomainEvent, **kwargs: Any) -> list[Recording[UUID]]:
        """One transaction of chained events (the committer's; eventsourcing's own save). An
        import's batch skips what `Application.save` adds for events alone — a runtime protocol
        check per event, ~40 µs each on Python 3.11 — and remembers no heads (no command
        of this process reads those members next)."""
        if len(events) >= BULK_EVENTS_MIN:
            bulk = self.events.put(list(events), tracking=None, **kwargs)
            self._notify(bulk)
            return bulk
        recordings = super().save(*events, **kwargs)
        self._remember((e.originator_id, e.originator_version, e.chain) for e in events)
        return recordings

    def _chained(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """`events` with their hashes. Each aggregate's first one chains to the hash of the
        version before it: the one this process read (`get`) or saved, else the stored one."""
        heads: dict[UUID, tuple[int, str]] = {}
        seen: set[UUID] = set()  # an aggregate's later events chain to its first one here
        for event in events:
            key = (event.originator_id, event.originator_version - 1)
            if key[0] in seen:
                continue
            seen.add(key[0])
            if key[1] < 1:
                continue
            with self._chains_lock:
                chain = self._chains.get(key)
            if chain is None:
                stored = list(self.events.get(key[0], gt=key[1] - 1, lte=key[1]))
                invariant(len(stored) == 1, f"{key[0]} v{key[1]} is stored before v{key[1] + 1}")
                chain = getattr(stored[0], "chain", "")
            heads[key[0]] = (key[1], chain)
        return hashchain.chained(events, heads)

    def remember_head(self, aggregate_id: UUID, version: int, chain: str) -> None:
        """Note an aggregate's head hash read elsewhere, so chaining need not read it again."""
        self._remember([(aggregate_id, version, chain)])

    def _remember(self, chains: Iterable[tuple[UUID, int, str]]) -> None:
        with self._chains_lock:
            for aggregate_id, version, chain in chains:
                if chain:  # "" is a state snapshotted before events were chained: read it again
                    self._chains[(aggregate_id, version)] = chain
            while len(self._chains) > CHAINS_KEPT:
                del self._chains[next(iter(self._chains))]

    def retrying(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it saves without a version clash (bounded), mapping outages to 503."""
        for n in range(RETRIES_MAX):
            try:
                return attempt()
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * (n + 1)))  # noqa: S311 - jitter, not crypto
            except DataError as e:  # a value the store refuses: the request's fault (SPEC 3.1)
                raise InvalidInput(f"the store refused a value: {type(e).__name__}") from e
            except PersistenceError as e:
                raise Unavailable(f"the event store is unavailable: {type(e).__name__}") from e
        raise Unavailable("too much contention on this member; try again")

    # -- reading ------------------------------------------------------------------------------

    def get(self, aggregate_id: UUID, evolve: Evolve[A]) -> A | None:
        """The aggregate, rebuilt with its module's `evolve` (None if it has no event)."""
        try:
            found: A = self.repository.get(aggregate_id, projector_func=projector(evolve))
        except AggregateNotFoundError:
            return None
        if self._cache is not None:  # the read fast-forwarded the cached state: weigh it again
            self._cache.reweigh(aggregate_id)
        self._remember([(found.id, found.version, found.chain)])
        return found

    def account(self, card: str) -> Member:
        """The account a card reads: its own member, or, for a replacement card, the account
        its alias points at (MemberNotFound if the card is neither)."""
        member = self.get(ids.member_id(card), evolve_member)
        if member is None:
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        if member.alias_of is not None:
            account = self.get(member.alias_of, evolve_member)
            invariant(account is not None, "an alias points at an enrolled member")
            return account  # type: ignore[return-value]
        return member

    def account_id(self, card: str) -> UUID:
        """The id of the account a card reads, from the card's first event alone (its enrolment
        or import, or a replacement card's `CardAliased`): no member state is built or copied."""
        card_id = ids.member_id(card)
        first = next(iter(self.events.get(card_id, lte=1)), None)
        if first is None:
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        account: UUID | None = getattr(first, "account_id", None)
        return account or card_id

    def read_as(
        self,
        aggregate_id: UUID,
        kind_of: Callable[[str], type[T] | None],
        gt: int | None = None,
        lte: int | None = None,
    ) -> list[T]:
        """The aggregate's events after version `gt` (up to `lte`), each decoded as the lighter type
        `kind_of(topic)` names (skipped when None): what a question needs of them, not the
        whole event (D67)."""
        mapper = cast(MsgspecMapper, self.mapper)
        found: list[T] = []
        for stored in self.recorder.select_events(aggregate_id, gt=gt, lte=lte):
            kind = kind_of(stored.topic)
            if kind is not None:
                found.append(mapper.decode_as(stored, kind))
        return found

    def member(self, card: str, *, old_card_ok: bool = False, follow_merge: bool = False) -> Member:
        """The account a write addressed to `card` acts on: 409 `card-replaced` if the card was
        replaced (unless `old_card_ok`: a refund or void of what the old card did), 409
        `member-merged` if its member was merged (unless `follow_merge`: a refund of the
        duplicate's sale acts on the account it went into)."""
        account = self.account(card)
        for _ in range(MERGES_FOLLOWED_MAX):
            if not follow_merge or account.merged_into is None:
                break
            account = self.account(account.merged_into)
        identity.check_writable(account, account.member_id if old_card_ok else card)
        return account

    def birthday(self, member: Member) -> str | None:
        """The member's birthday ('MM-DD') as the birthday multiplier needs it: from the identity
        index; for a member enrolled before the index, from their enrolment event; never for an
        erased member. Kept per process (a birthday never changes; erasure is seen on the member
        itself, which every read fast-forwards)."""
        if member.erased:
            return None
        if not member.personal:  # enrolled with no personal data: no index row to read
            return member.birthday
        with self._chains_lock:
            if member.id in self._birthdays:
                return self._birthdays[member.id]
            first, self._birthdays_loaded = not self._birthdays_loaded, True
        if first:  # the index's birthdays in one read, not one read per member's first sale
            loaded = self.identities.birthdays(BIRTHDAYS_KEPT)
            with self._chains_lock:
                self._birthdays = loaded | self._birthdays
            if member.id in loaded:
                return loaded[member.id]
        row = self.identities.row(member.id)
        found = row.birthday if row is not None else member.birthday
        with self._chains_lock:
            self._birthdays[member.id] = found
            while len(self._birthdays) > BIRTHDAYS_KEPT:
                del self._birthdays[next(iter(self._birthdays))]
        return found

    def fingerprint(self, *parts: object) -> str:
        """A request's identity: tells a retry from another request under the same number. A
        request naming no cashier reads as it did before requests could name one (a POS retry
        across the upgrade is the same request)."""
        return ids.fingerprint(b"|".join(_without_cashier(_canonical.encode(p)) for p in parts))

    def stored(self, *event_types: type[DomainEvent]) -> Iterator[DomainEvent]:
        """The log's events of these types, decoded, in log order."""
        for notification in notifications(self.recorder, topics=topics_of(*event_types)):
            yield cast(DomainEvent, self.mapper.to_domain_event(notification))

    def originators(self, *event_types: type[DomainEvent]) -> Iterator[UUID]:
        """Ids of aggregates with at least one event of these types, each once, in log order."""
        seen: set[UUID] = set()
        for notification in notifications(self.recorder, topics=topics_of(*event_types)):
            aggregate_id = UUID(str(notification.originator_id))
            if aggregate_id not in seen:
                seen.add(aggregate_id)
                yield aggregate_id

    def log_position(self) -> int:
        """The id of the log's last event (0 when empty): what projections catch up to."""
        return self.recorder.max_notification_id() or 0

    def ping(self) -> bool:
        """Whether the event store answers a query."""
        try:
            self.recorder.max_notification_id()
        except PersistenceError:
            return False
        return True
