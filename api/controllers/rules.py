"""`/v1/rules`: publish a rule-set version (admin) and read the one in force."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody

from api.auth import roles
from ledger.domain.apikey import Principal
from ledger.policies.ruleset import RuleSet
from ledger.services.rules import RulesService


class PublishedVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    effective_from: datetime


class CurrentRules(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    published_at: datetime
    rules: RuleSet


class RulesController(Controller):
    path = "/v1/rules"
    tags = ["rules"]  # noqa: RUF012 - Litestar's own class setting

    @put(
        "/",
        operation_id="publishRules",
        guards=[roles("admin")],
        status_code=201,
        sync_to_thread=True,
    )
    def publish(
        self,
        data: JSONBody[RuleSet],
        rules: NamedDependency[RulesService],
        principal: NamedDependency[Principal],
    ) -> PublishedVersion:
        version = rules.publish(data, principal.key_id)
        return PublishedVersion(
            version=version.version, effective_from=version.rules.effective_from
        )

    @get("/current", operation_id="getCurrentRules", sync_to_thread=True)
    def current(
        self, rules: NamedDependency[RulesService], now: NamedDependency[datetime]
    ) -> CurrentRules:
        version = rules.at(now)
        if version is None:
            raise NotFoundException("no rule set is in force now")
        return CurrentRules(
            version=version.version, published_at=version.published_at, rules=version.rules
        )
