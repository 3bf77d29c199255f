"""What staff are told when a rule says no (zh-CN source, English in the catalogue)."""

from adapter.i18n import N_
from adapter.refusals import register

TEXTS = {
    # One text for a wrong name and a wrong password: which of them was wrong is not said.
    "staff.bad_credentials": N_("用户名或密码不正确。"),
    "staff.locked": N_("密码错误次数过多，账户已暂时锁定，请{minutes}分钟后再试。"),
    "staff.username_invalid": N_("用户名须为1至64个字母、数字或 . _ - 字符。"),
    "staff.username_taken": N_("该用户名已被使用。"),
    "staff.password_too_short": N_("密码至少需要{minimum}个字符。"),
    "staff.password_too_long": N_("密码最多{maximum}个字符。"),
    "staff.role_unknown": N_("未知的角色。"),
    "staff.doctor_code_required": N_("医生账户须填写医院信息系统中的医生编码。"),
    "staff.doctor_code_unknown": N_("医生编码不在医生对照表中。"),
    "staff.not_your_patient": N_("这份报告不属于您的患者。"),
    "reconciliation.unknown": N_("找不到这条对账记录。"),
    "reconciliation.bad_day": N_("只能对今天以前{days}天内的日期重新对账。"),
}

register(TEXTS)
