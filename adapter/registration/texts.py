"""Refusal texts of registration: slots, bookings, cancelling, repeated requests."""

from adapter.i18n import N_
from adapter.refusals import register

# code -> zh-CN text (the English is in adapter/translations/en/); params in braces.
TEXTS = {
    "slot.unknown": N_("该号源不存在，请刷新后重新选择。"),
    "slot.not_released": N_("该号源将于{release_at}开放预约，请届时再来。"),
    "slot.closed": N_("该号源已停止预约，请选择其他时段。"),
    "slot.full": N_("该号源已被约满，请选择其他时段或医生。"),
    "booking.unknown": N_("找不到这条预约记录。"),
    "booking.not_payable": N_("这条预约当前无需支付。"),
    "booking.confirming": N_("正在向医院确认您的预约，请稍后再取消。"),
    "booking.not_cancellable": N_("这条预约当前不能取消。"),
    "cancel.deadline_passed": N_(
        "已超过取消截止时间（{deadline}），不能在线取消，如需帮助请联系医院。"),
    "idempotency.mismatch": N_("请求重复但内容不同，请刷新页面后重新提交。"),
    "booking.per_day": N_("每位就诊人同一天最多预约{limit}个号。"),
    "booking.per_department": N_("每位就诊人同一天同一科室最多预约{limit}个号。"),
    "booking.per_doctor": N_("每位就诊人同一天同一医生最多预约{limit}个号。"),
    "booking.unpaid_holds": N_(
        "您已有{limit}个待支付的预约，请先支付或取消后再预约。"),
    "booking.banned": N_("{window_days}天内爽约已达{limit}次，{allowed_from}起才能再次预约。"),
}

register(TEXTS)
