"""Refusal texts and wallet messages of fee payment (zh-CN; English in the catalogue)."""

from adapter.i18n import N_
from adapter.refusals import register

TEXTS = {
    "bill.empty": N_("请选择要支付的费用。"),
    "bill.unknown": N_("找不到所选的费用，请刷新后重试。"),
    "bill.not_payable": N_("所选费用当前不能支付，请刷新后重试。"),
    "bill.not_together": N_("所选费用不能一起支付，请按处方分别支付。"),
    "bill.one_patient": N_("一次只能支付同一位就诊人的费用。"),
    "bill.paid_elsewhere": N_("“{item}”已在医院窗口或其他渠道缴费，无需重复支付。"),
    "bill.changed": N_("“{item}”的费用已被医院调整，请刷新后确认新的金额。"),
    "bill.locked": N_("“{item}”正在其他渠道办理缴费，请稍后再试。"),
    "bill.refused": N_("医院暂时不能办理这笔缴费，请稍后再试或到窗口缴费。"),
}

register(TEXTS)

# Wallet messages (queued in zh-CN: accounts have no language of their own yet).
NEW_CHARGES = N_("您有{count}笔待缴费用，共¥{total}，可在线缴费。")
COMMITTED = N_("您已成功缴费¥{total}，收据号{receipt}。请按指引前往下一步。")
REFUNDED = N_("很抱歉，医院未能入账您的缴费，¥{total}将原路退回。如需帮助请联系医院。")
HIS_REFUND = N_("医院已为您办理退费¥{amount}，款项将原路退回。")
LATE_PAYMENT = N_("您的支付晚于缴费截止时间，¥{total}将原路退回，请重新缴费。")
