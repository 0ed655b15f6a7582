"""`/v1/members/{member_id}/stored-value`: convert points, pay with and refund stored value."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.domain.apikey import Principal
from ledger.domain.commands import CardNumber, ConvertPoints, PayWithStoredValue, RefundStoredValue
from ledger.domain.storedvalue import ConversionReceipt, StoredValueReceipt
from ledger.services.storedvalue import StoredValueService


class StoredValueController(Controller):
    path = "/v1/members/{member_id:str}/stored-value"
    tags = ["stored value"]  # noqa: RUF012

    @post("/conversions", operation_id="convertPoints", guards=[roles("pos")], sync_to_thread=True)
    def convert(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[ConvertPoints],
        stored_value: NamedDependency[StoredValueService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[ConversionReceipt]:
        require_store(principal, data.store_id)
        receipt, created = stored_value.convert(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/payments", operation_id="payWithStoredValue", guards=[roles("pos")], sync_to_thread=True
    )
    def pay(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[PayWithStoredValue],
        stored_value: NamedDependency[StoredValueService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[StoredValueReceipt]:
        require_store(principal, data.store_id)
        receipt, created = stored_value.pay(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post("/refunds", operation_id="refundStoredValue", guards=[roles("pos")], sync_to_thread=True)
    def refund(
        self,
        member_id: FromPath[CardNumber],
        data: JSONBody[RefundStoredValue],
        stored_value: NamedDependency[StoredValueService],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[StoredValueReceipt]:
        require_store(principal, data.store_id)
        receipt, created = stored_value.refund_payment(member_id, data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
