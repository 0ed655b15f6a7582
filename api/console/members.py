"""Customer service's page: find a member by card number; balance, tier and the way to the next
one, lots and their expiry, the explained history, the balance as of a date, a chart of the
balance over time, and the adjustment form. Reads through the same services and Queries as the
JSON API; the adjustment is the same ledger command as `POST /v1/members/{id}/adjustments`."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio.to_thread
import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from api.console import text
from api.console.charts import balance_line
from api.console.render import page
from api.console.session import Viewer, check_csrf, set_flash
from api.validation import Count
from ledger.domain.commands import AdjustPoints, CardNumber, Phone
from ledger.domain.errors import LedgerError, MemberMergedError, MemberNotFound
from ledger.services.identity import IdentityService
from ledger.services.members import MembersService
from ledger.services.storedvalue import StoredValueService
from projections.queries import HistoryFilter, Queries

HISTORY_PAGE = 20


def _card(value: str | None) -> str | None:
    try:
        return msgspec.convert(value.strip(), CardNumber) if value else None
    except msgspec.ValidationError:
        return None


def member_context(
    members: MembersService,
    queries: Queries,
    *,
    card: str,
    now: datetime,
    zone: ZoneInfo,
    as_of: date | None,
    cursor: int | None,
) -> dict[str, Any]:
    """Everything the member page shows (MemberNotFound for an unknown card)."""
    view = members.view(card, now)
    lots = [lot for lot in members.as_of(card, now).lots if lot.remaining > 0]
    history = queries.history(card, HistoryFilter(cursor=cursor, limit=HISTORY_PAGE))
    steps = queries.balance_steps(card)
    chart = balance_line(
        [(s.occurred_at, s.balance) for s in steps],
        now,
        lambda instant: text.local(instant, zone, with_time=False),
    )
    then = members.as_of(card, text.end_of_day(as_of, zone)) if as_of else None
    lag = max((v.lag_events for v in queries.lag().views if v.projection == "history"), default=0)
    return {
        "member": view,
        "lots": sorted(lots, key=lambda lot: (lot.expires_at is None, lot.expires_at)),
        "history": history,
        "chart": chart,
        "then": then,
        "as_of": as_of,
        "lag": lag,
        "now": now,
        "adjustment_no": f"CS-{now.astimezone(zone):%Y%m%d}-{secrets.token_hex(4)}",
    }


class MembersPage(Controller):
    path = "/console/members"
    include_in_schema = False

    @get("/", operation_id="consoleMember", sync_to_thread=True)
    def read(
        self,
        request: Request[Any, Any, Any],
        viewer: NamedDependency[Viewer],
        members: NamedDependency[MembersService],
        identity: NamedDependency[IdentityService],
        queries: NamedDependency[Queries],
        now: NamedDependency[datetime],
        zone: NamedDependency[ZoneInfo],
        card: FromQuery[str | None] = None,
        phone: FromQuery[str | None] = None,
        as_of: FromQuery[date | None] = None,
        cursor: FromQuery[Count | None] = None,
    ) -> Template:
        viewer.require("members")
        if phone and not card:
            listed = self._by_phone(request, viewer, identity, phone.strip(), now)
            if isinstance(listed, Template):
                return listed
            card = listed
        found = _card(card)
        if card and found is None:
            return page(request, viewer, "members.html", status=422, card=card, error="bad_card")
        if found is None:
            return page(request, viewer, "members.html", card=None, error=None)
        try:
            context = member_context(
                members, queries, card=found, now=now, zone=zone, as_of=as_of, cursor=cursor
            )
        except MemberNotFound:
            return page(request, viewer, "members.html", status=404, card=found, error="not_found")
        except MemberMergedError as e:
            return page(
                request,
                viewer,
                "members.html",
                card=found,
                error="merged",
                into=e.current_member_id,
            )
        return page(request, viewer, "members.html", card=found, error=None, **context)

    @staticmethod
    def _by_phone(
        request: Request[Any, Any, Any],
        viewer: Viewer,
        identity: IdentityService,
        phone: str,
        now: datetime,
    ) -> Template | str:
        """The members a phone number finds: the card of the only one (shown at once), or the
        page listing them (or saying none)."""
        try:
            number = msgspec.convert(phone, Phone)
        except msgspec.ValidationError:
            return page(request, viewer, "members.html", status=422, card=None, error="bad_phone")
        found = identity.by_phone(number, now).items
        if len(found) == 1:
            return found[0].member_id
        return page(
            request, viewer, "members.html", card=None, error=None, phone=number, found=found
        )

    @post("/{card:str}/adjustments", operation_id="consoleAdjust", status_code=303)
    async def adjust(
        self,
        request: Request[Any, Any, Any],
        card: FromPath[CardNumber],
        viewer: NamedDependency[Viewer],
        stored_value: NamedDependency[StoredValueService],
        now: NamedDependency[datetime],
    ) -> Redirect:
        form = dict(await request.form())
        check_csrf(request, form)
        viewer.require("members")
        labels = text.labels(viewer.lang)
        try:
            command = msgspec.convert(
                {
                    "adjustment_no": form.get("adjustment_no"),
                    "points": int(str(form.get("points", "")).strip()),
                    "reason": str(form.get("reason", "")).strip(),
                    "ticket": str(form.get("ticket", "")).strip(),
                },
                AdjustPoints,
            )
            receipt, created = await anyio.to_thread.run_sync(
                stored_value.adjust, card, command, viewer.principal.key_id, now
            )
        except (ValueError, msgspec.ValidationError) as e:
            set_flash(request, labels["failed"].format(detail=e))
        except LedgerError as e:
            set_flash(request, labels["failed"].format(detail=e.detail))
        else:
            done = labels["adjusted" if created else "replayed"]
            set_flash(
                request,
                done.format(
                    points=text.points(receipt.points, signed=True),
                    number=receipt.adjustment_no,
                    balance=text.points(receipt.balance.points),
                ),
            )
        return Redirect(path=f"/console/members?card={quote(card)}", status_code=303)
