"""Customer service's forms for lost cards and duplicates (SPEC 2.8): replace a card (挂失补卡)
and merge a duplicate member, each the same ledger command as the JSON API's (so a double submit
acts once: the second is a replay), behind the session's CSRF token."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect

from api.console import text
from api.console.session import Viewer, check_csrf, set_flash
from ledger.domain.commands import CardNumber
from ledger.domain.errors import LedgerError
from ledger.domain.identity import MergeMember, ReplaceCard
from ledger.services.identity import IdentityService


def _to(card: str) -> Redirect:
    return Redirect(path=f"/console/members?card={quote(card)}", status_code=303)


async def _run(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    fields: tuple[str, ...],
    kind: type[Any],
    call: Callable[[Any], tuple[Any, bool]],
) -> tuple[Any, bool] | None:
    """The form's fields as the command `kind`, carried out by `call` off the event loop; None
    (and the reason flashed) when the form is invalid or the ledger refuses it."""
    form = dict(await request.form())
    check_csrf(request, form)
    viewer.require("members")
    labels = text.labels(viewer.lang)
    try:
        command = msgspec.convert({f: str(form.get(f, "")).strip() for f in fields}, kind)
        result: tuple[Any, bool] = await anyio.to_thread.run_sync(call, command)
    except msgspec.ValidationError as e:
        set_flash(request, labels["failed"].format(detail=e))
    except LedgerError as e:
        set_flash(request, labels["failed"].format(detail=e.detail))
    else:
        return result
    return None


class IdentityForms(Controller):
    path = "/console/members"
    include_in_schema = False

    @post("/{card:str}/replace-card", operation_id="consoleReplaceCard", status_code=303)
    async def replace_card(
        self,
        request: Request[Any, Any, Any],
        card: FromPath[CardNumber],
        viewer: NamedDependency[Viewer],
        identity: NamedDependency[IdentityService],
        now: NamedDependency[datetime],
    ) -> Redirect:
        fields = ("new_member_id", "store_id", "reason")
        key_id = viewer.principal.key_id
        outcome = await _run(
            request,
            viewer,
            fields,
            ReplaceCard,
            lambda command: identity.replace_card(card, command, key_id, now),
        )
        if outcome is None:
            return _to(card)
        done, created = outcome
        key = "card_replaced" if created else "replace_replayed"
        labels = text.labels(viewer.lang)
        set_flash(request, labels[key].format(old=card, new=done.member_id))
        return _to(done.member_id)

    @post("/{card:str}/merge", operation_id="consoleMerge", status_code=303)
    async def merge(
        self,
        request: Request[Any, Any, Any],
        card: FromPath[CardNumber],
        viewer: NamedDependency[Viewer],
        identity: NamedDependency[IdentityService],
        now: NamedDependency[datetime],
    ) -> Redirect:
        key_id = viewer.principal.key_id
        outcome = await _run(
            request,
            viewer,
            ("from_member_id", "reason"),
            MergeMember,
            lambda command: identity.merge(card, command, key_id, now),
        )
        if outcome is not None:
            done, created = outcome
            key = "merged" if created else "merge_replayed"
            points = text.points(done.points_moved)
            set_flash(
                request,
                text.labels(viewer.lang)[key].format(
                    dup=done.from_member_id, points=points, lots=done.lots_moved
                ),
            )
        return _to(card)
