"""What results tell patients (never a value, a test name or a number) and their refusals."""

from adapter.i18n import N_
from adapter.refusals import register

# The wallet messages: {name} is the patient as the account's own list shows them, masked.
READY = N_("就诊人{name}有一份新的检查检验报告，请点击查看。")
CORRECTED = N_("就诊人{name}的一份检查检验报告已更正，请点击查看更正后的报告。")
# A critical value is never pushed: the patient is asked to contact the hospital.
CRITICAL = N_("请尽快联系医院或回院复诊：就诊人{name}的一项检查结果需要医生当面告知您。")

NOTICES = {"ready": READY, "corrected": CORRECTED, "critical": CRITICAL}

TEXTS = {
    "result.unknown": N_("找不到这份报告。"),
    "result.not_held": N_("这份报告不在待发布状态，无需发布。"),
    "alert.unknown": N_("找不到这条危急值提醒。"),
}

register(TEXTS)
