"""`/v1/stores/{store_id}`: register or change a store (admin)."""

from __future__ import annotations

from litestar import Controller, Response, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import roles
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.commands import Identifier, RegisterStore
from ledger.store import StoreView


class StoresController(Controller):
    path = "/v1/stores"
    tags = ["stores"]  # noqa: RUF012

    @put("/{store_id:str}", operation_id="putStore", guards=[roles("admin")], sync_to_thread=True)
    def put_store(
        self,
        store_id: FromPath[Identifier],
        data: JSONBody[RegisterStore],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
    ) -> Response[StoreView]:
        view, created = ledger.configure_store(store_id, data, principal.key_id)
        return Response(view, status_code=201 if created else 200)
