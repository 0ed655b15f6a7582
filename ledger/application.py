"""The ledger application: commands in, events saved atomically, views out.

Each command reads the aggregates it needs, lets a pure decision function produce events, and
saves them in one transaction. Concurrency is optimistic: a clash on (aggregate, version) is
retried with fresh state (bounded); a clash on a deterministic id is the idempotency check.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording
from eventsourcing.utils import get_topic

from ledger import (
    apikey,
    cards,
    enrolment,
    expiry,
    ids,
    privacy,
    redemptions,
    rulebook,
    sealing,
    settlement,
    store,
    tierreview,
    vault,
)
from ledger.adjustments import AdjustmentReceipt, adjust
from ledger.apikey import IssuedKey, Principal
from ledger.asof import MemberAsOf, member_as_of
from ledger.commands import (
    AdjustPoints,
    CardNumber,
    ConvertPoints,
    EnrolMember,
    Identifier,
    IssueApiKey,
    PayWithStoredValue,
    PostSale,
    Redeem,
    RefundSale,
    RefundStoredValue,
    RegisterStore,
    checked,
)
from ledger.errors import (
    ApiKeyNotFound,
    ApiKeyRevokedError,
    CardNotDispatched,
    IdempotencyConflict,
    IdNumberTaken,
    InvalidInput,
    MemberExists,
    MemberNotFound,
    NoRuleSetInForce,
    PaymentNotFound,
    RedemptionNotFound,
    SaleNotFound,
    StoreNotFound,
    Unavailable,
    invariant,
)
from ledger.groupcommit import GroupCommit
from ledger.keystore import SqlKeyStore
from ledger.member import (
    Member,
    MemberEnrolled,
    MemberErased,
    MemberEvent,
    PointsAccrued,
    PointsAdjusted,
    PointsExpired,
    RedemptionVoided,
)
from ledger.member import evolve as evolve_member
from ledger.model import Aggregate, DomainEvent, Evolve, Snapshot, projector
from ledger.nonmember import (
    NonMemberRefundReceipt,
    NonMemberSale,
    NonMemberSaleReceipt,
    evolve_receipt,
    record_non_member_sale,
    refund_non_member_sale,
)
from ledger.persistence import eventsourcing_env
from ledger.records import FollowUpRecorded, OperationRecorded, encode, evolve_operation
from ledger.records import replay as replay_record
from ledger.redemptions import Redemption, RedemptionReceipt, VoidReceipt, evolve_redemption
from ledger.refunds import refund_sale
from ledger.rules import RuleSet, RuleVersion, check
from ledger.sale import (
    FUTURE_TOLERANCE,
    RefundReceipt,
    Sale,
    SaleReceipt,
    check_business_time,
    record_sale,
)
from ledger.settings import Settings
from ledger.store import StoreView
from ledger.storedvalue import ConversionReceipt, StoredValueReceipt, convert, pay, refund_payment
from ledger.views import MemberView, member_view


def _erasure_receipt(card: str, event: MemberErased) -> privacy.ErasureReceipt:
    return privacy.ErasureReceipt(
        member_id=card, erased_at=event.occurred_at, reason=event.reason, operator=event.operator
    )


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an expiry run or a tier review did."""

    as_of: datetime
    members_reviewed: int = 0
    lots_expired: int = 0
    points_expired: int = 0
    downgraded: int = 0
    upgraded: int = 0


T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
R = TypeVar("R", bound=msgspec.Struct)
U = TypeVar("U")


def _chunks(items: Iterable[U], size: int) -> Iterator[list[U]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


RETRIES_MAX = 25
RUN_PAGE = 1_000
SNAPSHOT_INTERVAL = 100
EXPIRY_CHUNK = 200  # members decided and saved per transaction by an expiry run
HISTORIES_KEPT = 64  # members whose decoded events are kept for as-of questions
RULES_TTL = 1.0
KEYS_TTL = 1.0  # seconds a process may go on accepting a key it read (revocation takes ≤ 1 s)
PRINCIPALS_KEPT = 10_000  # seconds another process may go on using the rule book it read
CHAINS_KEPT = 20_000  # (aggregate, version) hashes kept between a command's read and its save
_canonical = msgspec.json.Encoder(order="deterministic")

project_member = projector(evolve_member)


class Ledger(Application[UUID]):
    """The pharmacy points ledger (one instance per process; thread-safe)."""

    name = "Ledger"
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
        self._id_secret = ids.keyed_hash(settings.master_key, "key", "id-number").encode()
        self._on_appended = on_appended
        base = eventsourcing_env(settings.database_url)
        # eventsourcing reads 0 as "unbounded"; here 0 means no cache (an empty setting).
        base["AGGREGATE_CACHE_MAXSIZE"] = str(settings.member_cache_size or "")
        self._rulebook_cache: tuple[float, rulebook.RuleBook | None] | None = None
        self._known_stores: set[str] = set()
        self._principals: dict[str, tuple[float, Principal]] = {}
        self._histories: dict[UUID, list[MemberEvent]] = {}  # least recently asked first
        self._histories_lock = threading.Lock()
        self._chains: dict[tuple[UUID, int], str] = {}  # oldest first
        self._chains_lock = threading.Lock()
        self._committer = GroupCommit(self._record_sealed)
        super().__init__(env=base | (env or {}))
        self.keys: vault.KeyStore = SqlKeyStore(self.recorder)

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._committer.close()
        super().close()

    def _notify(self, recordings: list[Any]) -> None:
        if self._on_appended is not None:
            self._on_appended(len(recordings))

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save events atomically in a transaction of their own, sealed (`ledger.sealing`)."""
        return self._record_sealed(*self._seal(objs), **kwargs)

    def _record_sealed(self, *events: DomainEvent, **kwargs: Any) -> list[Recording[UUID]]:
        recordings = super().save(*events, **kwargs)
        self._remember((e.originator_id, e.originator_version, e.chain) for e in events)
        return recordings

    def _seal(self, events: Sequence[DomainEvent]) -> list[DomainEvent]:
        """`events` with their hashes. Each aggregate's first one chains to the hash of the
        version before it: the one this process read (`_get`) or saved, else the stored one."""
        heads: dict[UUID, tuple[int, str]] = {}
        for event in events:
            key = (event.originator_id, event.originator_version - 1)
            if key[1] < 1 or key[0] in heads:
                continue
            with self._chains_lock:
                chain = self._chains.get(key)
            if chain is None:
                stored = list(self.events.get(key[0], gt=key[1] - 1, lte=key[1]))
                invariant(len(stored) == 1, f"{key[0]} v{key[1]} is stored before v{key[1] + 1}")
                chain = getattr(stored[0], "chain", "")
            heads[key[0]] = (key[1], chain)
        return sealing.seal(events, heads)

    def _remember(self, chains: Iterable[tuple[UUID, int, str]]) -> None:
        with self._chains_lock:
            for aggregate_id, version, chain in chains:
                if chain:  # "" is a state snapshotted before events were sealed: read it again
                    self._chains[(aggregate_id, version)] = chain
            while len(self._chains) > CHAINS_KEPT:
                del self._chains[next(iter(self._chains))]

    def _save(self, *events: DomainEvent) -> None:
        """Save events sealed and atomically (in a group commit with other commands'), then
        snapshot any member whose version crossed the interval (eventsourcing only snapshots
        aggregates it saved itself, and these are saved as events)."""
        self._committer.save(self._seal(events))
        for event in events:
            if isinstance(event, MemberEvent) and event.originator_version % SNAPSHOT_INTERVAL == 0:
                self.take_snapshot(
                    event.originator_id,
                    version=event.originator_version,
                    projector_func=project_member,
                )

    def _get(self, aggregate_id: UUID, evolve: Evolve[A]) -> A | None:
        try:
            found: A = self.repository.get(aggregate_id, projector_func=projector(evolve))
        except AggregateNotFoundError:
            return None
        self._remember([(found.id, found.version, found.chain)])
        return found

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` until it saves without a version clash (bounded), mapping outages to 503."""
        for n in range(RETRIES_MAX):
            try:
                return attempt()
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * (n + 1)))  # noqa: S311 - jitter, not crypto
            except PersistenceError as e:
                raise Unavailable(f"the event store is unavailable: {type(e).__name__}") from e
        raise Unavailable("too much contention on this member; try again")

    def _fingerprint(self, *parts: object) -> str:
        return ids.fingerprint(b"|".join(_canonical.encode(p) for p in parts))

    # -- rules --------------------------------------------------------------------------------

    def _rulebook(self, fresh: bool = False) -> rulebook.RuleBook | None:
        """The rule book, re-read from the store at most every RULES_TTL seconds (every sale
        needs it; it changes a few times a year). `fresh` reads it now (to publish)."""
        cached = self._rulebook_cache
        if not fresh and cached is not None and time.monotonic() - cached[0] < RULES_TTL:
            return cached[1]
        book = self._get(ids.RULEBOOK_ID, rulebook.evolve)
        self._rulebook_cache = (time.monotonic(), book)
        return book

    def publish_rules(self, rules: RuleSet, operator: str) -> RuleVersion:
        rules = check(rules)
        if rules.timezone is None:  # pin the chain's zone on the version, so replay never drifts
            rules = msgspec.structs.replace(rules, timezone=self.settings.timezone)

        def attempt() -> RuleVersion:
            event = rulebook.publish(self._rulebook(fresh=True), rules, operator)
            self.save(event)
            self._rulebook_cache = None
            return RuleVersion(version=event.version, published_at=event.timestamp, rules=rules)

        return self._retrying(attempt)

    def rules_at(self, at: datetime) -> RuleVersion | None:
        return rulebook.in_force(self._rulebook(), at)

    def _rules_for(self, at: datetime) -> RuleVersion:
        version = self.rules_at(at)
        if version is None:
            raise NoRuleSetInForce(
                f"no rule set is in force at {at.isoformat()}", field="occurred_at"
            )
        return version

    # -- stores and keys -------------------------------------------------------------------

    def configure_store(
        self, store_id: str, cmd: RegisterStore, operator: str
    ) -> tuple[StoreView, bool]:
        checked(store_id, Identifier, "store_id")

        def attempt() -> tuple[StoreView, bool]:
            current = self._get(ids.store_id(store_id), store.evolve)
            event = store.configure(current, store_id, cmd, operator)
            if event is None:
                invariant(current is not None, "no change is only possible for a known store")
                return store.view(current), False  # type: ignore[arg-type]
            self.save(event)
            return store.view(store.evolve(current, event)), current is None

        return self._retrying(attempt)

    def get_store(self, store_id: str) -> StoreView | None:
        current = self._get(ids.store_id(store_id), store.evolve)
        return store.view(current) if current else None

    def require_store(self, store_id: str) -> None:
        """A registered store (stores are never removed, so once seen, always known)."""
        if store_id in self._known_stores:
            return
        if self.get_store(store_id) is None:
            raise StoreNotFound(f"store {store_id!r} is not registered", field="store_id")
        self._known_stores.add(store_id)

    def issue_api_key(self, cmd: IssueApiKey, operator: str) -> IssuedKey:
        if cmd.role == "pos" and cmd.store_id is None:
            raise InvalidInput("a pos key must be bound to a store", field="store_id")
        if cmd.role != "pos" and cmd.store_id is not None:
            raise InvalidInput("only pos keys are bound to a store", field="store_id")
        if cmd.store_id is not None:
            self.require_store(cmd.store_id)
        key = apikey.new_key()
        event = apikey.issue(key, cmd.role, cmd.store_id, operator)
        self._retrying(lambda: self._save(event))
        return IssuedKey(
            key=key, key_id=str(event.originator_id), role=cmd.role, store_id=cmd.store_id
        )

    def _api_key(self, key_id: str) -> apikey.ApiKey:
        try:
            state = self._get(UUID(key_id), apikey.evolve)
        except ValueError:
            state = None
        except TypeError:  # the id of an aggregate that is not a key
            state = None
        if not isinstance(state, apikey.ApiKey):
            raise ApiKeyNotFound(f"no API key {key_id!r}", field="key_id")
        return state

    def revoke_api_key(self, key_id: str, reason: str, operator: str) -> apikey.KeyInfo:
        """Revoke a key (again: a no-op). This process refuses it at once, others within
        KEYS_TTL seconds."""

        def attempt() -> apikey.KeyInfo:
            state = self._api_key(key_id)
            event = apikey.revoke(state, reason, operator)
            if event is not None:
                self._save(event)
                state = apikey.evolve(state, event)
            return apikey.info(state)

        info = self._retrying(attempt)
        self._principals.clear()
        return info

    def rotate_api_key(self, key_id: str, operator: str) -> IssuedKey:
        """A new key with the old one's role and store; the old one is revoked in the same
        transaction."""

        def attempt() -> IssuedKey:
            state = self._api_key(key_id)
            key = apikey.new_key()
            issued = apikey.issue(key, state.role, state.store_id, operator, replaces=key_id)
            revoked = apikey.revoke(
                state, "rotated", operator, replaced_by=str(issued.originator_id)
            )
            if revoked is None:
                raise ApiKeyRevokedError(f"API key {key_id!r} is revoked", field="key_id")
            self._save(issued, revoked)
            return IssuedKey(
                key=key,
                key_id=str(issued.originator_id),
                role=state.role,
                store_id=state.store_id,
                replaces=key_id,
            )

        issued = self._retrying(attempt)
        self._principals.clear()
        return issued

    def api_keys(self) -> list[apikey.KeyInfo]:
        """Every key ever issued, oldest first (there are a few per store)."""
        keys = []
        for notification in self._notifications(apikey.ApiKeyIssued):
            state = self._get(UUID(str(notification.originator_id)), apikey.evolve)
            if state is not None:
                keys.append(apikey.info(state))
        return keys

    def ensure_admin_key(self, key: str) -> None:
        """Register `LEDGER_ADMIN_KEY` as an admin key (once; later starts find it there)."""
        if self.authenticate(key) is None:
            with contextlib.suppress(IntegrityError):  # registered already (perhaps revoked)
                self._save(apikey.issue(key, "admin", None, "LEDGER_ADMIN_KEY"))

    def authenticate(self, key: str) -> Principal | None:
        """The key's principal; a known key is re-read from the store at most every KEYS_TTL
        seconds (every request is authenticated), an unknown one every time."""
        key_hash = ids.hash_api_key(key)
        kept = self._principals.get(key_hash)
        if kept is not None and time.monotonic() - kept[0] < KEYS_TTL:
            return kept[1]
        state = self._get(ids.api_key_id(key_hash), apikey.evolve)
        principal = apikey.principal(state) if state else None
        if principal is not None:
            if len(self._principals) >= PRINCIPALS_KEPT:
                self._principals.clear()
            self._principals[key_hash] = (time.monotonic(), principal)
        return principal

    def dispatch_cards(
        self, store_id: str, first: str, last: str, operator: str
    ) -> tuple[cards.DispatchReceipt, bool]:
        """Send the cards `first..last` to a store (a replay of the same range is a no-op)."""
        checked(store_id, Identifier, "store_id")
        checked(first, CardNumber, "from")
        checked(last, CardNumber, "to")
        self.require_store(store_id)

        def attempt() -> tuple[cards.DispatchReceipt, bool]:
            registry = self._get(ids.CARD_REGISTRY_ID, cards.evolve)
            event, receipt = cards.dispatch(registry, store_id, first, last, operator)
            if event is not None:
                self.save(event)
            return receipt, event is not None

        return self._retrying(attempt)

    # -- settlement ------------------------------------------------------------------------

    def close_period(
        self, period: str, operator: str, now: datetime
    ) -> tuple[settlement.CloseReceipt, bool]:
        """Close a settlement month (SPEC 2.7); closing it again replays the first close."""
        settlement.check_period(period)
        zone = ZoneInfo(self.settings.timezone)

        created = False

        def attempt() -> tuple[settlement.CloseReceipt, bool]:
            nonlocal created
            current = self._get(ids.settlement_period_id(period), settlement.evolve)
            closing, _ = settlement.close(current, period, zone, operator, now)
            if closing is not None:
                self.save(closing)
                created = True
                current = settlement.evolve(None, closing)
            invariant(current is not None, "the month is closed")
            digested = settlement.record_digest(current, self.month_digest(period))  # type: ignore[arg-type]
            if digested is not None:
                self.save(digested)
                current = settlement.evolve(current, digested)
            return settlement.receipt(current), created  # type: ignore[arg-type]

        return self._retrying(attempt)

    def settlement_log(self) -> Iterator[DomainEvent]:
        """The events that decide settlement months and their digests, in log order."""
        topics = [get_topic(t) for t in settlement.DIGESTED]
        start = 1
        while True:
            page = self.recorder.select_notifications(start, RUN_PAGE, topics=topics)
            for notification in page:
                yield cast("DomainEvent", self.mapper.to_domain_event(notification))
            if len(page) < RUN_PAGE:
                return
            start = page[-1].id + 1

    def month_digest(self, period: str) -> settlement.Digest:
        """The digest of a closed month, computed from the log (it is read to the close)."""
        digests = settlement.MonthDigests()
        for event in self.settlement_log():
            digests.add(event)
            if period in digests.closed:
                return digests.closed[period]
        raise InvalidInput(f"{period} is not closed", field="period")

    def log_position(self) -> int:
        """The id of the log's last event (0 when empty): what projections catch up to."""
        return self.recorder.max_notification_id() or 0

    # -- members ---------------------------------------------------------------------------

    def _member(self, card: str) -> Member:
        member = self._get(ids.member_id(card), evolve_member)
        if member is None:
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        return member

    def enrol(self, cmd: EnrolMember, operator: str, now: datetime) -> tuple[MemberView, bool]:
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        self.require_store(cmd.store_id)
        id_hash = (
            ids.keyed_hash(self._id_secret, "id-number", cmd.id_number.upper())
            if cmd.id_number
            else None
        )
        fingerprint = ids.keyed_hash(self._id_secret, "enrol", _canonical.encode(cmd).decode())

        def attempt() -> tuple[MemberView, bool]:
            existing = self._get(ids.member_id(cmd.member_id), evolve_member)
            if existing is not None:
                if self._enrol_fingerprint(existing) != fingerprint:
                    raise MemberExists(
                        f"card {cmd.member_id!r} is already enrolled", field="member_id"
                    )
                return self.member(cmd.member_id, now), False
            if id_hash is not None:
                claim = self._get(ids.identity_claim_id(id_hash), enrolment.evolve_claim)
                if claim is not None:
                    raise IdNumberTaken("this ID number is already enrolled", field="id_number")
            version = self.rules_at(occurred_at)
            tiers = version.rules.tiers if version else None
            if version and version.rules.cards and version.rules.cards.require_dispatch:
                registry = self._get(ids.CARD_REGISTRY_ID, cards.evolve)
                if cards.dispatched_to(registry, cmd.member_id) is None:
                    raise CardNotDispatched(
                        f"card {cmd.member_id!r} was never dispatched to a store",
                        field="member_id",
                    )
            personal = enrolment.personal_data(cmd)
            sealed = None
            if not personal.is_empty():
                member_uuid = ids.member_id(cmd.member_id)
                sealed = vault.seal(self._member_secret(member_uuid), member_uuid, personal)
            events = enrolment.enrol(
                cmd,
                occurred_at=occurred_at,
                tier=tiers.levels[0].code if tiers else None,
                id_hash=id_hash,
                fingerprint=fingerprint,
                operator=operator,
                sealed=sealed,
            )
            self._save(*events)
            return self.member(cmd.member_id, now), True

        return self._retrying(attempt)

    def _enrol_fingerprint(self, member: Member) -> str:
        return self._enrolled(member).fingerprint

    def member(self, card: str, now: datetime) -> MemberView:
        version = self.rules_at(now)
        return member_view(self._member(card), version.rules if version else None, now)

    # -- personal data ---------------------------------------------------------------------

    def _enrolled(self, member: Member) -> MemberEnrolled:
        first = next(iter(self.events.get(member.id, lte=1)))
        invariant(isinstance(first, MemberEnrolled), "a member's first event is its enrolment")
        return cast(MemberEnrolled, first)

    def _member_secret(self, member: UUID) -> bytes:
        """The member's own key: made, wrapped and kept on first use."""
        state = self.keys.get(member)
        if state is None:
            wrapped = vault.wrap(self.settings.master_key, member, vault.new_member_key())
            state = self.keys.create(member, wrapped)
        invariant(isinstance(state, bytes), f"member {member} has a live key")
        return vault.unwrap(self.settings.master_key, member, cast(bytes, state))

    def _record_read(
        self, member: Member, principal: Principal, purpose: privacy.Purpose, now: datetime
    ) -> None:
        """Log who reads whose personal data, before they see it."""
        log_id = ids.access_log_id(member.id)

        def attempt() -> None:
            last = self.recorder.select_events(log_id, desc=True, limit=1)
            if last:  # the head the new read chains to: sealing need not read it again
                head = cast(DomainEvent, self.mapper.to_domain_event(last[0]))
                self._remember([(log_id, head.originator_version, head.chain)])
            self._save(
                privacy.PersonalDataRead(
                    originator_id=log_id,
                    originator_version=last[0].originator_version + 1 if last else 1,
                    member_id=member.member_id,
                    key_id=principal.key_id,
                    role=principal.role,
                    purpose=purpose,
                    occurred_at=now,
                )
            )

        self._retrying(attempt)

    def rewrap_member_keys(self, previous_master: bytes) -> int:
        """Re-wrap every live member key from `previous_master` to this ledger's master key
        (a master key rotation; safe to run again: keys already re-wrapped are skipped)."""
        count = 0
        for member in self.keys.members():
            wrapped = self.keys.get(member)
            if not isinstance(wrapped, bytes):
                continue
            try:
                key = vault.unwrap(previous_master, member, wrapped)
            except vault.KeyUnreadable:
                vault.unwrap(self.settings.master_key, member, wrapped)  # done by a run before
                continue
            new = vault.wrap(self.settings.master_key, member, key)
            count += self.keys.rewrap(member, wrapped, new)
        return count

    def personal_data(
        self, card: str, principal: Principal, purpose: privacy.Purpose, now: datetime
    ) -> privacy.PersonalRecord:
        """The member's decrypted personal data; the read is recorded first."""
        member = self._member(card)
        sealed = self._enrolled(member).sealed
        if member.erased:
            return privacy.PersonalRecord(status="erased")
        if sealed is None:
            return privacy.PersonalRecord(status="none")
        self._record_read(member, principal, purpose, now)
        state = self.keys.get(member.id)
        if not isinstance(state, bytes):  # destroyed by an erasure that did not finish
            return privacy.PersonalRecord(status="erased")
        key = vault.unwrap(self.settings.master_key, member.id, state)
        return privacy.PersonalRecord(status="held", data=vault.open_sealed(key, member.id, sealed))

    def erase_member(
        self, card: str, reason: str, operator: str, now: datetime
    ) -> tuple[privacy.ErasureReceipt, bool]:
        """Crypto-shred a member's personal data: their key first (the part that cannot be
        undone), then `MemberErased`; a retry of an erasure cut short finishes it."""

        def attempt() -> tuple[privacy.ErasureReceipt, bool]:
            member = self._member(card)
            if member.erased:
                done = next(e for e in self.member_events(card) if isinstance(e, MemberErased))
                return _erasure_receipt(card, done), False
            self.keys.destroy(member.id)
            event = privacy.erase(member, reason, operator, now)
            invariant(event is not None, "a member not yet erased can be erased")
            self._save(cast(MemberErased, event))
            return _erasure_receipt(card, cast(MemberErased, event)), True

        return self._retrying(attempt)

    def export_member(self, card: str, principal: Principal, now: datetime) -> privacy.MemberExport:
        """Everything held on a member, their personal data decrypted (the read is logged)."""
        personal = self.personal_data(card, principal, "export", now)
        view = self.member(card, now)
        accesses = [  # personal_data found the member: its id is the card's
            privacy.access_entry(e)
            for e in self.events.get(ids.access_log_id(ids.member_id(card)))
            if isinstance(e, privacy.PersonalDataRead)
        ]
        return privacy.MemberExport(
            member_id=card,
            exported_at=now,
            personal=personal,
            member=view,
            events=[privacy.exported(e) for e in self.member_events(card)],
            accesses=accesses,
        )

    def member_key(self, card: str) -> UUID:
        """The member aggregate's id of an enrolled card (MemberNotFound otherwise): asks the
        store for the member's first event, without reading (and copying) the member."""
        member_uuid = ids.member_id(card)
        if not self.recorder.select_events(member_uuid, limit=1):
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        return member_uuid

    def member_events(self, card: str) -> list[MemberEvent]:
        """Every event of the member, in the order they were recorded. Recently asked-for
        members keep their decoded events in memory, read on from the last one kept (customer
        service asks about one member many times in a row; events never change)."""
        member_uuid = ids.member_id(card)
        with self._histories_lock:
            kept = self._histories.pop(member_uuid, [])
        newer = self.events.get(member_uuid, gt=kept[-1].originator_version if kept else None)
        events = kept + [e for e in newer if isinstance(e, MemberEvent)]
        if not events:  # no event at all: never enrolled (the member is not read for this)
            raise MemberNotFound(f"member {card!r} is not enrolled", field="member_id")
        with self._histories_lock:
            self._histories[member_uuid] = events
            while len(self._histories) > HISTORIES_KEPT:
                self._histories.pop(next(iter(self._histories)))
        return events

    def member_as_of(
        self, card: str, as_of: datetime, recorded_as_of: datetime | None = None
    ) -> MemberAsOf:
        """The member at business time `as_of` (and, if given, as recorded by `recorded_as_of`)."""
        for field, value in (("as_of", as_of), ("recorded_as_of", recorded_as_of)):
            if value is not None and value.tzinfo is None:
                raise InvalidInput(f"{field} needs a UTC offset", field=field)
        return member_as_of(self.member_events(card), as_of, recorded_as_of)

    # -- sales -----------------------------------------------------------------------------

    def _sale(self, sale_uuid: UUID) -> Sale | NonMemberSale | None:
        """The record under a receipt's id: a member's sale or a non-member one."""
        return self._get(sale_uuid, evolve_receipt)

    def sale_record(self, store_id: str, receipt_no: str) -> Sale | None:
        """A member's sale (None for a non-member sale or no sale)."""
        found = self._sale(ids.sale_id(store_id, receipt_no))
        return found if isinstance(found, Sale) else None

    def post_sale(self, cmd: PostSale, operator: str, now: datetime) -> tuple[SaleReceipt, bool]:
        """Record a POS sale exactly once; a retry of the same body gets the original receipt."""
        card = cmd.member_id
        if card is None:
            raise InvalidInput("a member's sale names the member", field="member_id")
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(cmd)
        sale_uuid = ids.sale_id(cmd.store_id, cmd.receipt_no)

        attempts = 0

        def attempt() -> tuple[SaleReceipt, bool]:
            # A new receipt is the common case: its insert is the idempotency check (the sale's
            # id is derived from the receipt number), so the store is asked only on a retry.
            nonlocal attempts
            attempts += 1
            existing = self._sale(sale_uuid) if attempts > 1 else None
            if existing is not None:
                return _replayed(existing, Sale, fingerprint, cmd).receipt, False
            self.require_store(cmd.store_id)
            version = self._rules_for(cmd.occurred_at)
            member = self._member(card)
            events, receipt = record_sale(
                cmd, member, version, fingerprint=fingerprint, operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    def post_non_member_sale(
        self, cmd: PostSale, operator: str, now: datetime
    ) -> tuple[NonMemberSaleReceipt, bool]:
        """Record a sale without a member exactly once: it earns nothing (analytics count it)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(cmd)
        sale_uuid = ids.sale_id(cmd.store_id, cmd.receipt_no)

        def attempt() -> tuple[NonMemberSaleReceipt, bool]:
            existing = self._sale(sale_uuid)
            if existing is not None:
                return _replayed(existing, NonMemberSale, fingerprint, cmd).receipt, False
            self.require_store(cmd.store_id)
            event, receipt = record_non_member_sale(cmd, fingerprint=fingerprint, operator=operator)
            self._save(event)
            return receipt, True

        return self._retrying(attempt)

    def _sale_or_404(self, store_id: str, receipt_no: str) -> Sale | NonMemberSale:
        checked(store_id, Identifier, "store_id")
        checked(receipt_no, Identifier, "receipt_no")
        sale = self._sale(ids.sale_id(store_id, receipt_no))
        if sale is None:
            raise SaleNotFound(f"no sale {receipt_no!r} at store {store_id!r}", field="receipt_no")
        return sale

    def refund_sale(
        self, store_id: str, receipt_no: str, cmd: RefundSale, operator: str, now: datetime
    ) -> tuple[RefundReceipt | NonMemberRefundReceipt, bool]:
        """Reverse the points of refunded lines, exactly once per refund number (a non-member
        sale's refund only records the amounts)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(store_id, receipt_no, cmd)

        def attempt() -> tuple[RefundReceipt | NonMemberRefundReceipt, bool]:
            sale = self._sale_or_404(store_id, receipt_no)
            if isinstance(sale, NonMemberSale):
                return self._refund_non_member(sale, cmd, fingerprint, operator)
            done = sale.refunds.get(cmd.refund_no)
            if done is not None:
                if done.fingerprint != fingerprint:
                    raise IdempotencyConflict(
                        f"refund {cmd.refund_no!r} of this sale was posted with a different body",
                        field="refund_no",
                    )
                return done.receipt, False
            self._rules_for(cmd.occurred_at)
            member = self._member(sale.member_id)
            events, receipt = refund_sale(
                sale, member, cmd, fingerprint=fingerprint, operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    def _refund_non_member(
        self, sale: NonMemberSale, cmd: RefundSale, fingerprint: str, operator: str
    ) -> tuple[NonMemberRefundReceipt, bool]:
        done = sale.refunds.get(cmd.refund_no)
        if done is not None:
            if done.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    f"refund {cmd.refund_no!r} of this sale was posted with a different body",
                    field="refund_no",
                )
            return done.receipt, False
        event, receipt = refund_non_member_sale(
            sale, cmd, fingerprint=fingerprint, operator=operator
        )
        self._save(event)
        return receipt, True

    # -- redemptions -------------------------------------------------------------------------

    def _redemption(self, store_id: str, redemption_no: str) -> Redemption:
        checked(store_id, Identifier, "store_id")
        checked(redemption_no, Identifier, "redemption_no")
        found = self._get(ids.redemption_id(store_id, redemption_no), evolve_redemption)
        if found is None:
            raise RedemptionNotFound(
                f"no redemption {redemption_no!r} at store {store_id!r}", field="redemption_no"
            )
        return found

    def redeem(self, cmd: Redeem, operator: str, now: datetime) -> tuple[RedemptionReceipt, bool]:
        """Spend or hold points, exactly once per (store_id, redemption_no)."""
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(cmd)
        redemption_id = ids.redemption_id(cmd.store_id, cmd.redemption_no)

        def attempt() -> tuple[RedemptionReceipt, bool]:
            existing = self._get(redemption_id, evolve_redemption)
            if existing is not None:
                if existing.fingerprint != fingerprint:
                    raise IdempotencyConflict(
                        f"redemption {cmd.redemption_no!r} of store {cmd.store_id!r} was "
                        "posted with a different body",
                        field="redemption_no",
                    )
                return existing.first_receipt, False
            self.require_store(cmd.store_id)
            version = self._rules_for(cmd.occurred_at)
            member = self._member(cmd.member_id)
            events, receipt = redemptions.redeem(
                cmd, member, version, fingerprint=fingerprint, operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    def capture(
        self, store_id: str, redemption_no: str, operator: str, now: datetime
    ) -> tuple[RedemptionReceipt, bool]:
        """Complete a held redemption; capturing again replays the result."""

        def attempt() -> tuple[RedemptionReceipt, bool]:
            found = self._redemption(store_id, redemption_no)
            if found.status == "redeemed":
                return found.receipt, False
            events, receipt = redemptions.capture(
                found, self._member(found.member_id), operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    def void(
        self, store_id: str, redemption_no: str, operator: str, now: datetime
    ) -> tuple[VoidReceipt, bool]:
        """Void a redemption (or release its hold); voiding again replays the result."""

        def attempt() -> tuple[VoidReceipt, bool]:
            found = self._redemption(store_id, redemption_no)
            if found.void_receipt is not None:
                return found.void_receipt, False
            events, receipt = redemptions.void(
                found, self._member(found.member_id), operator=operator, now=now
            )
            self._save(*events)
            return receipt, True

        return self._retrying(attempt)

    # -- numbered operations: conversions, stored value, adjustments --------------------------

    def _numbered(
        self,
        record_id: UUID,
        *,
        kind: str,
        number: str,
        card: str,
        fingerprint: str,
        receipt_type: type[R],
        decide: Callable[[Member], tuple[list[DomainEvent], R]],
        amount_fen: Callable[[R], int] = lambda _: 0,
    ) -> tuple[R, bool]:
        """Run `decide` once per record id; a retry with the same fingerprint replays."""

        def attempt() -> tuple[R, bool]:
            existing = self._get(record_id, evolve_operation)
            if existing is not None:
                what = f"{kind} number {number!r}"
                return replay_record(
                    fingerprint, existing.fingerprint, existing.receipt, receipt_type, what
                ), False
            member = self._member(card)
            events, receipt = decide(member)
            record = OperationRecorded(
                originator_id=record_id,
                originator_version=1,
                kind=kind,
                number=number,
                member_id=card,
                fingerprint=fingerprint,
                amount_fen=amount_fen(receipt),
                receipt=encode(receipt),
            )
            self._save(*events, record)
            return receipt, True

        return self._retrying(attempt)

    def convert_points(
        self, card: str, cmd: ConvertPoints, operator: str, now: datetime
    ) -> tuple[ConversionReceipt, bool]:
        checked(card, CardNumber, "member_id")
        check_business_time(cmd.occurred_at, now)
        self.require_store(cmd.store_id)
        version = self._rules_for(cmd.occurred_at)
        return self._numbered(
            ids.conversion_id(cmd.store_id, cmd.conversion_no),
            kind="conversion",
            number=cmd.conversion_no,
            card=card,
            fingerprint=self._fingerprint(card, cmd),
            receipt_type=ConversionReceipt,
            decide=lambda member: convert(cmd, member, version, operator=operator, now=now),
        )

    def pay_with_stored_value(
        self, card: str, cmd: PayWithStoredValue, operator: str, now: datetime
    ) -> tuple[StoredValueReceipt, bool]:
        checked(card, CardNumber, "member_id")
        check_business_time(cmd.occurred_at, now)
        self.require_store(cmd.store_id)
        return self._numbered(
            ids.payment_id(cmd.store_id, cmd.payment_no),
            kind="payment",
            number=cmd.payment_no,
            card=card,
            fingerprint=self._fingerprint(card, cmd),
            receipt_type=StoredValueReceipt,
            decide=lambda member: pay(cmd, member, operator=operator, now=now),
            amount_fen=lambda receipt: receipt.amount_fen,
        )

    def refund_stored_value(
        self, card: str, cmd: RefundStoredValue, operator: str, now: datetime
    ) -> tuple[StoredValueReceipt, bool]:
        """Give back (part of) a stored-value payment, once per refund number of that payment."""
        checked(card, CardNumber, "member_id")
        check_business_time(cmd.occurred_at, now)
        fingerprint = self._fingerprint(card, cmd)
        payment_id = ids.payment_id(cmd.store_id, cmd.payment_no)

        def attempt() -> tuple[StoredValueReceipt, bool]:
            payment = self._get(payment_id, evolve_operation)
            if payment is None or payment.member_id != card:
                raise PaymentNotFound(
                    f"member {card!r} made no payment {cmd.payment_no!r} at {cmd.store_id!r}",
                    field="payment_no",
                )
            done = payment.follow_ups.get(cmd.refund_no)
            if done is not None:
                what = f"refund number {cmd.refund_no!r} of this payment"
                return replay_record(
                    fingerprint, done.fingerprint, done.receipt, StoredValueReceipt, what
                ), False
            events, receipt = refund_payment(
                payment, cmd, self._member(card), operator=operator, now=now
            )
            follow_up = FollowUpRecorded(
                originator_id=payment.id,
                originator_version=payment.version + 1,
                number=cmd.refund_no,
                fingerprint=fingerprint,
                amount_fen=cmd.amount_fen,
                receipt=encode(receipt),
            )
            self._save(*events, follow_up)
            return receipt, True

        return self._retrying(attempt)

    def adjust_points(
        self, card: str, cmd: AdjustPoints, operator: str, now: datetime
    ) -> tuple[AdjustmentReceipt, bool]:
        checked(card, CardNumber, "member_id")
        occurred_at = cmd.occurred_at or now
        check_business_time(occurred_at, now)
        version = self.rules_at(occurred_at)
        return self._numbered(
            ids.adjustment_id(cmd.adjustment_no),
            kind="adjustment",
            number=cmd.adjustment_no,
            card=card,
            # the default time is not part of the request: a retry without it is the same one
            fingerprint=self._fingerprint(card, cmd),
            receipt_type=AdjustmentReceipt,
            decide=lambda member: adjust(
                cmd, member, version, occurred_at=occurred_at, operator=operator, now=now
            ),
        )

    # -- runs over all members: expiry and tier review ----------------------------------------

    def _notifications(self, *event_types: type[DomainEvent]) -> Iterator[Any]:
        """The log's notifications of events of the given types, in log order."""
        topics = [get_topic(t) for t in event_types]
        start = 1
        while True:
            page = self.recorder.select_notifications(start, RUN_PAGE, topics=topics)
            yield from page
            if len(page) < RUN_PAGE:
                return
            start = page[-1].id + 1

    def _member_ids(self, *event_types: type[MemberEvent]) -> Iterator[UUID]:
        """Ids of members with at least one event of the given types, each once."""
        seen: set[UUID] = set()
        for notification in self._notifications(*event_types):
            member_uuid = UUID(str(notification.originator_id))
            if member_uuid not in seen:
                seen.add(member_uuid)
                yield member_uuid

    def _run_as_of(self, as_of: datetime, now: datetime) -> None:
        if as_of > now + FUTURE_TOLERANCE:
            raise InvalidInput("as_of is in the future", field="as_of")

    def expire_points(
        self,
        as_of: datetime,
        operator: str,
        now: datetime,
        members: Iterable[UUID] | None = None,
    ) -> RunResult:
        """Expire every lot due at `as_of` (idempotent; safe beside POS traffic).

        `members` narrows the run to these members (a view's list of members with due lots);
        by default every member that ever held a lot is looked at. Members are decided in
        chunks saved in one transaction each; a chunk that clashes with a concurrent write is
        redone member by member with fresh state, so a busy member is retried, never skipped.
        """
        self._run_as_of(as_of, now)
        candidates = (
            members
            if members is not None
            else self._member_ids(PointsAccrued, PointsAdjusted, RedemptionVoided)
        )
        result = RunResult(as_of=as_of, members_reviewed=0, lots_expired=0, points_expired=0)
        for chunk in _chunks(candidates, EXPIRY_CHUNK):
            try:
                expired = self._expire_chunk(chunk, as_of, operator)
            except IntegrityError:
                expired = []
                for member_uuid in chunk:
                    expired += self._retrying(
                        functools.partial(self._expire_chunk, [member_uuid], as_of, operator)
                    )
            except PersistenceError as e:
                raise Unavailable(f"the event store is unavailable: {type(e).__name__}") from e
            result = msgspec.structs.replace(
                result,
                members_reviewed=result.members_reviewed + len(chunk),
                lots_expired=result.lots_expired + len(expired),
                points_expired=result.points_expired + sum(e.points for e in expired),
            )
        return result

    def _expire_chunk(
        self, members: Sequence[UUID], as_of: datetime, operator: str
    ) -> list[PointsExpired]:
        events: list[PointsExpired] = []
        for member_uuid in members:
            member = self._get(member_uuid, evolve_member)
            if member is not None:
                events += expiry.expire(member, as_of, operator)
        if events:
            self._save(*events)
        return events

    def review_tiers(self, as_of: datetime, operator: str, now: datetime) -> RunResult:
        """Recompute every member's tier from the spend in the window ending `as_of`."""
        self._run_as_of(as_of, now)
        version = self._rules_for(as_of)
        members = down = up = 0
        for member_uuid in self._member_ids(MemberEnrolled):

            def attempt(member_uuid: UUID = member_uuid) -> str | None:
                member = self._get(member_uuid, evolve_member)
                invariant(member is not None, "an enrolled member exists")
                change = tierreview.review(member, version, as_of, operator)  # type: ignore[arg-type]
                if change is None:
                    return None
                self._save(change)
                return change.direction

            direction = self._retrying(attempt)
            members += 1
            down += direction == "downgrade"
            up += direction == "upgrade"
        return RunResult(as_of=as_of, members_reviewed=members, downgraded=down, upgraded=up)

    def ping(self) -> bool:
        """Whether the event store answers a query."""
        try:
            self.recorder.max_notification_id()
        except PersistenceError:
            return False
        return True


S = TypeVar("S", Sale, NonMemberSale)


def _replayed(existing: Sale | NonMemberSale, kind: type[S], fingerprint: str, cmd: PostSale) -> S:
    """The recorded sale a retry of `cmd` replays; 409 if that receipt was posted otherwise."""
    if not isinstance(existing, kind) or existing.fingerprint != fingerprint:
        raise IdempotencyConflict(
            f"receipt {cmd.receipt_no!r} of store {cmd.store_id!r} was posted with a different body",
            field="receipt_no",
        )
    return existing


STARTS_MAX = 5


def open_ledger(settings: Settings, **kwargs: Any) -> Ledger:
    """A Ledger, its tables made if missing. Worker processes started together race to make
    them: PostgreSQL answers one of two concurrent `CREATE OR REPLACE FUNCTION`s (eventsourcing's
    insert function) with "tuple concurrently updated", so a start is retried, with jitter.
    The service and every `ledger` command build their ledger this way."""
    for n in range(STARTS_MAX):
        try:
            return Ledger(settings, **kwargs)
        except PersistenceError:
            if n == STARTS_MAX - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (n + 1))  # noqa: S311 - jitter, not crypto
    raise AssertionError("unreachable")
