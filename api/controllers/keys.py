"""`/v1/admin/api-keys`: issue, list, rotate and revoke API keys (admin); a key is shown once."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import roles
from api.validation import KeyId, Reason
from ledger.domain.apikey import IssuedKey, KeyInfo, Principal
from ledger.domain.commands import IssueApiKey
from ledger.services.access import AccessService

ADMIN_ONLY = [roles("admin")]


class ApiKeysController(Controller):
    path = "/v1/admin/api-keys"
    tags = ["admin"]  # noqa: RUF012
    # Guards on each route, not the controller: a controller's guards also guard the OPTIONS
    # route Litestar adds, which the authentication middleware lets through unauthenticated.

    @post("/", operation_id="issueApiKey", guards=ADMIN_ONLY, sync_to_thread=True)
    def issue(
        self,
        data: JSONBody[IssueApiKey],
        access: NamedDependency[AccessService],
        principal: NamedDependency[Principal],
    ) -> IssuedKey:
        return access.issue_key(data, principal.key_id)

    @get("/", operation_id="listApiKeys", guards=ADMIN_ONLY, sync_to_thread=True)
    def list_keys(self, access: NamedDependency[AccessService]) -> list[KeyInfo]:
        """Every key ever issued, revoked ones included (the keys themselves are not kept)."""
        return access.keys()

    @post(
        "/{key_id:str}/rotate", operation_id="rotateApiKey", guards=ADMIN_ONLY, sync_to_thread=True
    )
    def rotate(
        self,
        key_id: FromPath[KeyId],
        access: NamedDependency[AccessService],
        principal: NamedDependency[Principal],
    ) -> IssuedKey:
        """A new key with the same role and store; the old key stops working."""
        return access.rotate_key(key_id, principal.key_id)

    @delete(
        "/{key_id:str}",
        operation_id="revokeApiKey",
        status_code=200,
        guards=ADMIN_ONLY,
        sync_to_thread=True,
    )
    def revoke(
        self,
        key_id: FromPath[KeyId],
        access: NamedDependency[AccessService],
        principal: NamedDependency[Principal],
        reason: FromQuery[Reason] = "revoked by an admin",
    ) -> Response[KeyInfo]:
        """Revoke a key (revoking it again changes nothing): other API processes refuse it
        within a second."""
        return Response(access.revoke_key(key_id, reason, principal.key_id))
