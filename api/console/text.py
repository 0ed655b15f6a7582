"""The console's words and numbers: labels in Chinese (the default) and English, amounts in fen
shown as yuan with two decimals, instants in the chain's time zone. Pure presentation."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

# key: (zh-CN, en)
_LABELS: dict[str, tuple[str, str]] = {
    "title": ("会员积分控制台", "Points console"),
    "colon": ("：", ": "),
    "comma": ("，", ", "),
    "nav_members": ("会员查询", "Members"),
    "nav_finance": ("财务", "Finance"),
    "nav_operations": ("运营", "Operations"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "api_key": ("API 密钥", "API key"),
    "sign_in_hint": (
        "用客服、财务或管理员的 API 密钥登录。密钥只保存在加密的会话 Cookie 中。",
        "Sign in with a service, finance or admin API key. It is kept only in an encrypted "
        "session cookie.",
    ),
    "bad_key": ("密钥无效或已吊销。", "Unknown or revoked API key."),
    "pos_refused": (
        "收银终端（pos）密钥不能登录控制台。",
        "A POS terminal key cannot sign in to the console.",
    ),
    "session_expired": ("会话已失效，请重新登录。", "The session has expired; sign in again."),
    "csrf_failed": (
        "表单已过期或来源不明（CSRF 校验失败），请重新打开页面再提交。",
        "The form is stale or came from elsewhere (CSRF check failed); reload the page.",
    ),
    "forbidden": (
        "此密钥的角色（{role}）无权查看此页面。",
        "This key's role ({role}) may not see this page.",
    ),
    "signed_in_as": ("角色", "Role"),
    "role_service": ("客服", "customer service"),
    "role_finance": ("财务", "finance"),
    "role_admin": ("管理员", "admin"),
    "role_pos": ("收银", "POS"),
    "language": ("English", "中文"),
    # members
    "card_number": ("会员卡号", "Card number"),
    "find": ("查询", "Find"),
    "member_not_found": ("未找到会员卡 {card}。", "No member with card {card}."),
    "bad_card": ("卡号格式不正确。", "That is not a card number."),
    "member": ("会员", "Member"),
    "points": ("可用积分", "Points"),
    "pending_points": ("待生效积分", "Pending points"),
    "held_points": ("冻结积分", "Held points"),
    "debt_points": ("欠分", "Debt"),
    "stored_value": ("储值余额", "Stored value"),
    "tier": ("等级", "Tier"),
    "discount": ("折扣", "Discount"),
    "tier_spend": ("等级累计消费（窗口内）", "Tier spend (in the window)"),
    "next_tier": ("下一等级", "Next tier"),
    "spend_needed": ("还需消费", "Spend needed"),
    "top_tier": ("已是最高等级", "Highest tier"),
    "enrolled_at": ("入会时间", "Enrolled"),
    "home_store": ("开卡门店", "Home store"),
    "lots": ("积分批次与有效期", "Lots and their expiry"),
    "lot": ("批次", "Lot"),
    "earned_at": ("获得时间", "Earned"),
    "available_at": ("可用时间", "Available from"),
    "expires_at": ("到期时间", "Expires"),
    "remaining": ("剩余", "Remaining"),
    "never": ("不过期", "never"),
    "overdue": ("已到期，待清零", "due, not yet expired"),
    "no_lots": ("没有剩余积分批次。", "No lot has points left."),
    "history": ("积分明细", "History"),
    "occurred_at": ("业务时间", "Business time"),
    "recorded_at": ("记录时间", "Recorded"),
    "type": ("类型", "Type"),
    "store": ("门店", "Store"),
    "reference": ("单号", "Reference"),
    "delta": ("变动", "Change"),
    "balance_after": ("变动后余额", "Balance after"),
    "rule_version": ("规则版本", "Rule set"),
    "operator": ("操作员", "Operator"),
    "cashier": ("收银员", "Cashier"),
    "explanation": ("说明", "Explanation"),
    "breakdown": ("计算明细", "How it was computed"),
    "line_no": ("行", "Line"),
    "sku": ("商品", "SKU"),
    "category": ("类别", "Category"),
    "amount": ("金额", "Amount"),
    "multiplier": ("倍数", "Multiplier"),
    "basis": ("依据", "Basis"),
    "reason": ("原因", "Reason"),
    "factors": ("整单倍数", "Receipt multipliers"),
    "applied": ("采用", "applied"),
    "not_applied": ("未采用", "not applied"),
    "older": ("更早的记录 →", "Older →"),
    "newest": ("← 最新记录", "← Newest"),
    "no_entries": ("暂无记录。", "Nothing yet."),
    "lag_note": (
        "明细、走势图和报表来自投影，可能滞后 {n} 个事件；余额和批次总是最新的。",
        "History, charts and reports come from projections and may lag by {n} events; the "
        "balance and lots are always current.",
    ),
    "as_of": ("历史时点余额", "Balance as of a date"),
    "as_of_date": ("日期（当日结束，连锁时区）", "Date (end of day, chain time)"),
    "show": ("查看", "Show"),
    "as_of_time": ("时点", "As of"),
    "as_of_result": ("{when} 时的余额", "Balance at {when}"),
    "chart_balance": ("积分余额走势", "Balance over time"),
    "no_chart": ("还没有可画的数据。", "Nothing to chart yet."),
    "adjust": ("积分调整", "Adjust points"),
    "adjust_points": ("积分（正数增加，负数扣减）", "Points (+ credit, − debit)"),
    "ticket": ("工单号", "Ticket"),
    "submit": ("提交", "Submit"),
    "adjusted": (
        "已调整 {points} 积分（{number}），当前可用积分 {balance}。",
        "Adjusted {points} points ({number}); the balance is now {balance}.",
    ),
    "replayed": (
        "该调整已提交过（{number}），未重复记账。",
        "That adjustment was already recorded ({number}); nothing was posted twice.",
    ),
    "failed": ("未完成：{detail}", "Not done: {detail}"),
    "phone": ("手机号", "Phone"),
    "find_by_phone": ("按手机号查询", "Find by phone"),
    "found_by_phone": ("手机号 {phone} 对应的会员：", "Members with phone {phone}:"),
    "no_phone_match": ("没有会员使用手机号 {phone}。", "No member has phone {phone}."),
    "bad_phone": ("手机号格式不正确。", "That is not a phone number."),
    "replaced_notice": (
        "卡 {card} 已挂失补卡，账户现在使用卡 {new}。",
        "Card {card} was replaced; the account reads under card {new} now.",
    ),
    "merged_notice": (
        "卡 {card} 是已合并的重复会员，账户在卡 {into}。",
        "Card {card} was a duplicate merged into card {into}.",
    ),
    "replace_card": ("挂失补卡", "Replace a lost card"),
    "new_card": ("新卡号", "New card number"),
    "store_id": ("办理门店", "Store"),
    "merge": ("合并重复会员", "Merge a duplicate"),
    "duplicate_card": ("重复会员卡号（并入本卡）", "Duplicate's card (moves into this one)"),
    "card_replaced": (
        "卡 {old} 已换为新卡 {new}，余额、积分批次、等级与明细随卡转移。",
        "Card {old} is replaced by card {new}: balance, lots, tier and history go with it.",
    ),
    "replace_replayed": (
        "卡 {old} 已换为 {new}（此前已办理，未重复操作）。",
        "Card {old} was already replaced by {new}; nothing was done twice.",
    ),
    "merged": (
        "已将卡 {dup} 并入：{points} 积分（{lots} 个批次，各自保留有效期）。",
        "Card {dup} merged in: {points} points in {lots} lots, each keeping its expiry.",
    ),
    "merge_replayed": (
        "卡 {dup} 此前已并入本卡，未重复操作。",
        "Card {dup} was already merged into this one; nothing was done twice.",
    ),
    # finance
    "settlement": ("门店积分结算（加盟店与直营店）", "Store settlement (franchise and direct)"),
    "settlement_note": (
        "加盟店按应结差额与总部结算：正数为门店付总部，负数为总部付门店。直营店同样计算，仅作内部核算，不付款。",
        "Franchise stores settle the difference with headquarters: positive, the store pays "
        "HQ; negative, HQ pays the store. Direct stores are computed the same way for the "
        "chain's own accounting; no money changes hands.",
    ),
    "who_pays": ("谁付谁", "Who pays whom"),
    "store_pays_hq": ("门店付总部 {amount}", "store pays HQ {amount}"),
    "hq_pays_store": ("总部付门店 {amount}", "HQ pays the store {amount}"),
    "nothing_to_settle": ("无需结算", "nothing to settle"),
    "internal_only": ("直营店：内部核算，不付款", "direct store: internal accounting, no payment"),
    "close_month": ("关账…", "Close the month…"),
    "close_title": ("关闭 {period} 的结算", "Close the settlement of {period}"),
    "close_explain": (
        "关账后本月结算不再变动：此后才到达的本月业务（如延迟上传的销售、退货）记入下一个未关账的月份，并标记为“补记”。关账不可撤销；系统记下本月结算事件的摘要（sha256），请另行保存。",
        "Once closed, the month's settlement no longer changes: what arrives later for it (a "
        "sale uploaded late, a refund) is settled in the next open month and marked late. A "
        "close cannot be undone; the ledger records a digest (sha256) of the month's settlement "
        "events, worth keeping elsewhere.",
    ),
    "close_confirm": ("确认关账", "Close it"),
    "cancel": ("返回", "Back"),
    "close_not_ended": (
        "本月结束后（连锁时区）才能关账。",
        "A month can be closed once it has ended (chain time).",
    ),
    "closed_at": ("关账时间", "Closed at"),
    "month_closed": ("已关账 {period}；摘要 {digest}", "Closed {period}; digest {digest}"),
    "month_closed_before": (
        "{period} 已关账，未重复操作；摘要 {digest}",
        "{period} was closed already; nothing was done twice. Digest {digest}",
    ),
    "period": ("结算月份", "Month"),
    "closed": ("已关账", "closed"),
    "open": ("未关账", "open"),
    "kind": ("类型", "Kind"),
    "kind_direct": ("直营", "direct"),
    "kind_franchise": ("加盟", "franchise"),
    "franchisee": ("加盟商", "Franchisee"),
    "points_issued": ("发放积分", "Points issued"),
    "fee_due": ("应收积分费用", "Fee due"),
    "redemption_cost": ("兑换成本", "Redemption cost"),
    "stored_value_cost": ("储值消费成本", "Stored value spent"),
    "difference": ("应结差额", "To settle"),
    "hq_bonus_points": ("总部承担的奖励积分", "Bonus points at HQ's cost"),
    "late": ("补记", "late"),
    "totals": ("合计", "Totals"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "liability": ("积分负债", "Points liability"),
    "outstanding_points": ("未兑积分", "Outstanding points"),
    "members_with_points": ("有积分的会员", "Members with points"),
    "liability_value": ("按成本计价", "Value at cost"),
    "cost_per_point": ("每积分成本（分）", "Cost per point (fen)"),
    "stored_value_outstanding": ("未用储值", "Stored value outstanding"),
    "by_version": ("按积分所属规则版本计价", "Valued by each lot's rule version"),
    "rule_version_short": ("规则版本", "Rule version"),
    "chart_months": ("每月积分发放与兑换", "Points issued vs. redeemed per month"),
    "issued": ("发放", "Issued"),
    "redeemed": ("兑换（含转储值）", "Redeemed (incl. stored value)"),
    "converted": ("转储值", "Converted"),
    "per_month": ("每月明细", "Per month"),
    # operations
    "lag": ("投影延迟", "Projection lag"),
    "projection": ("投影", "Projection"),
    "position": ("已处理到", "Applied up to"),
    "lag_events": ("未处理事件", "Events behind"),
    "head": ("日志最新位置", "Log head"),
    "analytics": ("会员分析（按门店）", "Member analytics per store"),
    "analytics_empty": ("本月没有销售。", "Nothing was sold in this month."),
    "analytics_note": (
        "会员指标按门店自己的会员计算（活跃：近3个月有消费；流失：前半年≥2次消费且近90天无消费），销售指标按门店发生的销售计算。",
        "Member figures are about each store's own members (active: a purchase in the last 3 "
        "months; churn: ≥2 purchases in the half year before the last 90 days, none since); "
        "sales figures are about what was sold at the store.",
    ),
    "all_stores": ("全部门店", "All stores"),
    "chain_median": ("全链中位数", "chain median"),
    "anomalies": ("异常", "Anomalies"),
    "frequent_card": ("一月内消费20次以上的卡", "Card with 20+ purchases in the month"),
    "refund_outlier": (
        "退货率远高于全链中位数的门店",
        "Store refunding far above the chain median",
    ),
    "col_store_id": ("门店", "Store"),
    "col_total_members": ("会员数", "Members"),
    "col_new_members": ("新会员", "New members"),
    "col_active_ratio": ("活动会员比率", "Active ratio"),
    "col_churn_rate": ("会员流失率", "Churn rate"),
    "col_member_sales_share": ("会员销售占比", "Member sales share"),
    "col_member_average_ticket_fen": ("会员客单价", "Member ticket"),
    "col_average_ticket_fen": ("平均客单价", "Average ticket"),
    "col_refund_rate": ("退货率", "Refund rate"),
}

TIERS = {"normal": ("普通", "normal"), "silver": ("银卡", "silver"), "gold": ("金卡", "gold")}
TIERS["vip"] = ("贵宾卡", "VIP")

EVENT_TYPES: dict[str, tuple[str, str]] = {
    "MemberEnrolled": ("入会", "enrolled"),
    "PointsAccrued": ("消费积分", "points earned"),
    "PointsReversed": ("退货冲回", "refund reversal"),
    "PointsHeld": ("兑换冻结", "hold"),
    "PointsRedeemed": ("积分兑换", "redemption"),
    "RedemptionVoided": ("兑换撤销", "redemption voided"),
    "PointsConverted": ("积分转储值", "converted to stored value"),
    "StoredValueCredited": ("储值入账", "stored value credited"),
    "StoredValueDebited": ("储值支付", "stored value payment"),
    "PointsExpired": ("积分过期", "expired"),
    "PointsAdjusted": ("客服调整", "adjustment"),
    "TierChanged": ("等级变更", "tier change"),
    "BonusGranted": ("奖励积分", "bonus"),
    "MemberErased": ("个人信息已删除", "personal data erased"),
    "MemberImported": ("迁移导入", "imported"),
    "OpeningLotImported": ("迁移积分", "imported points"),
}

PROJECTIONS = {"history": ("积分明细", "history"), "settlement": ("结算", "settlement")}
PROJECTIONS["members"] = ("会员批次与卡库存", "members: lots and cards")
PROJECTIONS["analytics"] = ("会员分析", "analytics")


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[LANGUAGES.index(lang)]


def labels(lang: str) -> dict[str, str]:
    """Every label in `lang` (zh-CN or en)."""
    return {key: _pick(pair, lang) for key, pair in _LABELS.items()}


def named(table: dict[str, tuple[str, str]], code: str | None, lang: str) -> str:
    """A code's name in `lang` (an event type, tier or projection); unknown codes as they are."""
    if code is None:
        return "—"
    pair = table.get(code)
    return _pick(pair, lang) if pair else code


def who_pays(kind: str | None, difference_fen: int, lang: str) -> str:
    """A settlement row's difference as who pays whom (SPEC 2.7: positive, the store pays
    headquarters); a direct store's is the chain's own accounting, not a payment."""
    words = labels(lang)
    if kind == "direct":
        return words["internal_only"]
    if difference_fen > 0:
        return words["store_pays_hq"].format(amount=yuan(difference_fen))
    if difference_fen < 0:
        return words["hq_pays_store"].format(amount=yuan(-difference_fen))
    return words["nothing_to_settle"]


def language(value: object) -> str:
    return value if isinstance(value, str) and value in LANGUAGES else DEFAULT_LANGUAGE


def yuan(amount_fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators: 123456 → ¥1,234.56."""
    sign = "-" if amount_fen < 0 else ""
    whole, cents = divmod(abs(amount_fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def points(value: int, signed: bool = False) -> str:
    return f"{value:+,}" if signed else f"{value:,}"


def local(instant: datetime | None, zone: ZoneInfo, with_time: bool = True) -> str:
    """An instant in the chain's time zone: 2026-11-23 14:05 (or just the date)."""
    if instant is None:
        return "—"
    shown = instant.astimezone(zone)
    return shown.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last instant of `day` in the chain's time zone (an as-of is inclusive)."""
    return datetime.combine(day + timedelta(days=1), time(0), zone) - timedelta(microseconds=1)


def month_of_day(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_back(period: str, count: int) -> str:
    """The period `count` months before `period` (YYYY-MM)."""
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + month - 1 - count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
