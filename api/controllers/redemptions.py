"""`/v1/redemptions`: spend or hold points at the POS, capture a hold, void a redemption."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from api.auth import require_store, roles
from ledger.apikey import Principal
from ledger.application import Ledger
from ledger.commands import Redeem
from ledger.redemptions import RedemptionReceipt, VoidReceipt


class RedemptionsController(Controller):
    path = "/v1/redemptions"
    tags = ["redemptions"]  # noqa: RUF012

    @post("/", operation_id="redeem", guards=[roles("pos")], sync_to_thread=True)
    def redeem(
        self,
        data: JSONBody[Redeem],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RedemptionReceipt]:
        require_store(principal, data.store_id)
        receipt, created = ledger.redeem(data, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{redemption_no:str}/capture",
        operation_id="captureRedemption",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def capture(
        self,
        store_id: FromPath[str],
        redemption_no: FromPath[str],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[RedemptionReceipt]:
        require_store(principal, store_id)
        receipt, created = ledger.capture(store_id, redemption_no, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)

    @post(
        "/{store_id:str}/{redemption_no:str}/void",
        operation_id="voidRedemption",
        guards=[roles("pos")],
        sync_to_thread=True,
    )
    def void(
        self,
        store_id: FromPath[str],
        redemption_no: FromPath[str],
        ledger: NamedDependency[Ledger],
        principal: NamedDependency[Principal],
        now: NamedDependency[datetime],
    ) -> Response[VoidReceipt]:
        require_store(principal, store_id)
        receipt, created = ledger.void(store_id, redemption_no, principal.key_id, now)
        return Response(receipt, status_code=201 if created else 200)
