"""What each class of discrepancy means and what to do about it, as staff read it in the CSV
export, the command's summary and the status page (zh-CN source, English in the catalogue)."""

from adapter.i18n import N_, translate
from adapter.reconciliation.matching import Action, Kind

KINDS = {
    Kind.WALLET_ONLY: N_("钱包有收款，本系统无此交易"),
    Kind.ADAPTER_ONLY: N_("本系统记为已付，钱包账单无此收款"),
    Kind.HIS_ONLY: N_("HIS有钱包渠道入账，钱包和本系统均无此交易"),
    Kind.AMOUNT_MISMATCH: N_("同一笔交易金额不一致"),
    Kind.PAID_NOT_POSTED: N_("已收款未入账（长款）"),
    Kind.POSTED_NOT_PAID: N_("已入账未收款（短款）"),
    Kind.REFUND_MISMATCH: N_("退款不一致"),
    Kind.REFUNDED_AT_WINDOW: N_("钱包支付的款项在窗口退了现金"),
}

ACTIONS = {
    Action.APPLY_PAYMENT: N_("已按支付成功处理，并经发件箱提交HIS"),
    Action.REFUND_UNPOSTABLE: N_("无法提交HIS，已原路退款"),
    Action.REFUND_HIS_REFUND: N_("HIS已退费但钱包未退款，已原路退款"),
    Action.FIND_OWNER: N_("查明该收款属于哪个系统；如不属于医院业务，在商户后台退款"),
    Action.QUERY_WALLET: N_("在钱包查询该交易；确认未收款时核对该笔业务"),
    Action.CHECK_HIS_POSTING: N_("在HIS核对该笔入账，确无收款时冲销"),
    Action.CHECK_AMOUNTS: N_("核对三方金额，以钱包实收为准调整"),
    Action.CHECK_POSTING: N_("查看该交易的提交状态；次日清单仍无时请HIS补入账"),
    Action.REVERSE_HIS_POSTING: N_("HIS冲销该笔入账，或向患者收取费用"),
    Action.REFUND_OUTSIDE: N_("该退款非本系统发起：查明原因，并在HIS做退费"),
    Action.QUERY_REFUND: N_("在钱包查询该退款，确认患者已收到退款"),
    Action.POST_HIS_REFUND: N_("钱包已退款，请在HIS做退费"),
    Action.WAIT_REFUND: N_("退款进行中，无需处理"),
    Action.SETTLE_WINDOW_REFUND: N_(
        "窗口以现金退还了钱包支付的款项：财务核对窗口现金与钱包账户，勿在钱包再退"),
    Action.RECOVER_DOUBLE_REFUND: N_("窗口现金和钱包都已退款：重复退款，请联系患者追回"),
}


def kind_text(kind: Kind, locale: str = "zh-CN") -> str:
    """The class in words."""
    return translate(KINDS[kind], locale)


def action_text(action: Action, locale: str = "zh-CN") -> str:
    """What to do, in words."""
    return translate(ACTIONS[action], locale)
