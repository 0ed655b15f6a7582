"""`/v1/sales`: the POS posts a sale and gets points, balance and tier back (idempotent)."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.commands import PostSale, RefundSale
from ledger.sale import RefundReceipt, SaleReceipt


class SalesController(Controller):
    path = "/v1/sales"
    tags = ["sales"]  # noqa: RUF012

    @post("/", operation_id="postSale", guards=[roles("pos")], sync_to_thread=True)
    def post_sale(
        self,
        data: JSONBody[PostSale],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[SaleReceipt]:
        require_store(principal, data.store_id)
        receipt, created = ledger.post_sale(data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{receipt_no:str}/refunds",
        operation_id="refundSale",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def refund(
        self,
        store_id: FromPath[str],
        receipt_no: FromPath[str],
        data: JSONBody[RefundSale],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RefundReceipt]:
        require_store(principal, store_id)
        receipt, created = ledger.refund_sale(store_id, receipt_no, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
