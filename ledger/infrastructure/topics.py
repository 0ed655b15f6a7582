"""Stable topics: the name each stored class goes under in the log, wherever its code lives now.

eventsourcing names a stored event by its class's `module:qualname`. A topic is stored with every
event and hashed into its chain (`ledger.infrastructure.hashchain`), so it is forever: when a
class moves, its events keep the topic the log already knows. `STORED` names every event class,
and every aggregate whose state a snapshot holds, by the topic it was first stored under (the
flat `ledger.*` modules of contract version 1); `topic_of` is what the mapper and the hash chain
write; importing this module teaches eventsourcing's resolver those names. A new event class
gets its entry here when it is written (`tests/unit/test_architecture.py` checks that every
event class has one).
"""

from __future__ import annotations

from eventsourcing.utils import get_topic, register_topic

from ledger.domain import (
    apikey,
    cards,
    enrolment,
    identity,
    member,
    model,
    nonmember,
    opening,
    operation,
    privacy,
    redemption,
    rulebook,
    sale,
    settlement,
    store,
)
from ledger.policies import asofcheckpoint

STORED: dict[str, type] = {
    "ledger.model:Snapshot": model.Snapshot,
    "ledger.member:Member": member.Member,
    "ledger.member:MemberEnrolled": member.MemberEnrolled,
    "ledger.member:MemberErased": member.MemberErased,
    "ledger.member:PointsAccrued": member.PointsAccrued,
    "ledger.member:PointsReversed": member.PointsReversed,
    "ledger.member:PointsHeld": member.PointsHeld,
    "ledger.member:PointsRedeemed": member.PointsRedeemed,
    "ledger.member:RedemptionVoided": member.RedemptionVoided,
    "ledger.member:PointsConverted": member.PointsConverted,
    "ledger.member:StoredValueCredited": member.StoredValueCredited,
    "ledger.member:StoredValueDebited": member.StoredValueDebited,
    "ledger.member:PointsExpired": member.PointsExpired,
    "ledger.member:PointsAdjusted": member.PointsAdjusted,
    "ledger.member:TierChanged": member.TierChanged,
    "ledger.domain.member:BonusGranted": member.BonusGranted,  # contract version 2
    "ledger.domain.member:CardAliased": member.CardAliased,  # contract version 2
    "ledger.domain.identity:CardReplaced": identity.CardReplaced,  # contract version 2
    "ledger.domain.identity:MemberMerged": identity.MemberMerged,  # contract version 2
    "ledger.domain.opening:MemberImported": opening.MemberImported,  # contract version 2
    "ledger.domain.opening:OpeningLotImported": opening.OpeningLotImported,
    # the as-of fold's checkpoints (D67), in the snapshot store, never in the log
    "ledger.policies.asofcheckpoint:FoldCheckpoint": asofcheckpoint.FoldCheckpoint,
    "ledger.policies.asofcheckpoint:FoldIndex": asofcheckpoint.FoldIndex,
    "ledger.sale:SaleRecorded": sale.SaleRecorded,
    "ledger.sale:SaleRefunded": sale.SaleRefunded,
    "ledger.sale:Sale": sale.Sale,
    "ledger.nonmember:NonMemberSaleRecorded": nonmember.NonMemberSaleRecorded,
    "ledger.nonmember:NonMemberSaleRefunded": nonmember.NonMemberSaleRefunded,
    "ledger.nonmember:NonMemberSale": nonmember.NonMemberSale,
    "ledger.redemptions:RedemptionRecorded": redemption.RedemptionRecorded,
    "ledger.redemptions:RedemptionCaptured": redemption.RedemptionCaptured,
    "ledger.redemptions:RedemptionVoidRecorded": redemption.RedemptionVoidRecorded,
    "ledger.redemptions:Redemption": redemption.Redemption,
    "ledger.records:OperationRecorded": operation.OperationRecorded,
    "ledger.records:FollowUpRecorded": operation.FollowUpRecorded,
    "ledger.records:Operation": operation.Operation,
    "ledger.enrolment:IdentityClaimed": enrolment.IdentityClaimed,
    "ledger.enrolment:IdentityClaim": enrolment.IdentityClaim,
    "ledger.privacy:PersonalDataRead": privacy.PersonalDataRead,
    "ledger.privacy:AccessLog": privacy.AccessLog,
    "ledger.rulebook:RuleSetPublished": rulebook.RuleSetPublished,
    "ledger.rulebook:RuleBook": rulebook.RuleBook,
    "ledger.store:StoreConfigured": store.StoreConfigured,
    "ledger.store:Store": store.Store,
    "ledger.apikey:ApiKeyIssued": apikey.ApiKeyIssued,
    "ledger.apikey:ApiKeyRevoked": apikey.ApiKeyRevoked,
    "ledger.apikey:ApiKey": apikey.ApiKey,
    "ledger.cards:CardsDispatched": cards.CardsDispatched,
    "ledger.cards:CardRegistry": cards.CardRegistry,
    "ledger.settlement:PeriodClosed": settlement.PeriodClosed,
    "ledger.settlement:PeriodDigested": settlement.PeriodDigested,
    "ledger.settlement:SettlementPeriod": settlement.SettlementPeriod,
}
_BY_CLASS: dict[type, str] = {cls: topic for topic, cls in STORED.items()}

for _topic, _cls in STORED.items():
    register_topic(_topic, _cls)


def topic_of(cls: type) -> str:
    """The topic events of `cls` are stored under."""
    topic = _BY_CLASS.get(cls)
    return topic if topic is not None else get_topic(cls)


def topics_of(*classes: type) -> list[str]:
    """The stored topics of `classes`, to filter the log by (`select_notifications(topics=…)`)."""
    return [topic_of(cls) for cls in classes]
