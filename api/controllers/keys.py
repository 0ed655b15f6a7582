"""`/v1/admin/api-keys`: issue an API key (admin); the key is shown once."""

from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from api.auth import roles
from ledger.apikey import IssuedKey, Principal
from ledger.application import Ledger
from ledger.commands import IssueApiKey


class ApiKeysController(Controller):
    path = "/v1/admin/api-keys"
    tags = ["admin"]  # noqa: RUF012

    @post("/", operation_id="issueApiKey", guards=[roles("admin")], sync_to_thread=True)
    def issue(
        self,
        data: JSONBody[IssueApiKey],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
    ) -> IssuedKey:
        return ledger.issue_api_key(data, principal.key_id)
