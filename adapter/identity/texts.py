"""Refusal texts of real-name identity: documents, names, dependants, binding."""

from adapter.i18n import N_
from adapter.refusals import register

# code -> zh-CN text (the English is in adapter/translations/en/); params in braces.
TEXTS = {
    "document.type_unknown": N_("暂不支持这种证件类型，请选择其他证件。"),
    "document.empty": N_("请输入证件号码。"),
    "document.length": N_("证件号码位数不对，应为{expected}位，请核对后重新输入。"),
    "document.old_id": N_("15位的旧身份证号码已停止使用，请输入18位居民身份证号码。"),
    "document.format": N_("证件号码格式不正确（{expected}），请核对后重新输入。"),
    "document.checksum": N_("身份证号码校验位不正确，请核对后重新输入。"),
    "document.birth_date": N_("证件号码中的出生日期不正确，请核对后重新输入。"),
    "document.region": N_("证件号码前6位的地区代码不正确，请核对后重新输入。"),
    "document.type_mismatch": N_("这个号码属于另一种证件，请重新选择证件类型。"),
    "document.mismatch": N_("证件信息与实名认证的信息不一致，请使用本人实名认证的证件。"),
    "name.empty": N_("请输入姓名。"),
    "name.mismatch": N_("姓名与实名认证的姓名不一致，请核对后重新输入。"),
    "name.too_long": N_("姓名过长，最多{limit}个字符，请核对后重新输入。"),
    "phone.too_long": N_("电话号码过长，最多{limit}位，请核对后重新输入。"),
    "sex.mismatch": N_("证件号码中的性别与实名认证信息不一致，请核对证件号码。"),
    "birth_date.mismatch": N_("出生日期与证件号码中的出生日期不一致，请核对后重新输入。"),
    "patient.unknown": N_("找不到这位就诊人，请从您的就诊人列表中选择。"),
    "account.not_certified": N_(
        "请先完成实名绑定（绑定本人证件），再添加就诊人、预约挂号、缴费或查看报告。"),
    "account.disabled": N_("此账户已停用，如有疑问请联系医院。"),
    "patient.exists": N_("这位就诊人已经在您的就诊人列表中。"),
    "patients.limit": N_("每个账户最多添加{limit}位就诊人（含本人），请先删除不再需要的就诊人。"),
    "relation.unknown": N_("请选择与就诊人的关系。"),
    "relation.self": N_("本人信息来自实名认证，无需另外添加。"),
    "relation.adult_as_child": N_(
        "年满{adult_age}周岁的就诊人不能以“子女（被监护人）”关系添加，请选择其他关系。"),
    "child.guardian_required": N_(
        "不满{age}周岁的儿童只能由其监护人添加，关系请选择“子女（被监护人）”。"),
    "child.consent_required": N_("为不满{age}周岁的儿童就诊，需要您作为监护人同意处理其个人信息。"),
    # Real-name binding (adapter/identity/binding.py)
    "binding.method_unknown": N_("医院暂不支持这种绑定方式，请选择其他方式。"),
    "binding.already_certified": N_("您的账户已完成实名认证，无需再绑定。"),
    "binding.phone_empty": N_("请输入您在医院登记的手机号。"),
    "binding.his_unknown": N_(
        "医院没有找到这个证件的就诊档案。请核对证件信息，或携带证件到医院服务台建档后再绑定。"),
    "binding.name_mismatch": N_("姓名与医院档案中的不一致，请核对后重新输入。"),
    "binding.his_no_phone": N_("医院档案中没有登记手机号，请到医院服务台登记手机号后再绑定。"),
    "binding.phone_mismatch": N_(
        "手机号与医院档案中登记的不一致。如已更换手机号，请到医院服务台更新后再绑定。"),
    "binding.card_empty": N_("请扫描或输入电子健康卡。"),
    "binding.card_unknown": N_("没有找到这张电子健康卡，或二维码已过期，请刷新健康卡后重试。"),
    "binding.bound_elsewhere": N_(
        "这个证件已绑定在另一个账户上。如需更换账户，请携带证件到医院服务台办理。"),
    "binding.too_many": N_("尝试次数过多，请{hours}小时后再试，或携带证件到医院服务台办理。"),
    "binding.nothing_pending": N_("没有待确认的绑定，请重新开始绑定。"),
    "binding.code_expired": N_("验证码已过期，请重新获取验证码。"),
    "binding.code_wrong": N_("验证码不正确，还可以再试{left}次。"),
    "binding.too_many_tries": N_("验证码错误次数过多，请重新开始绑定。"),
    "binding.resend_wait": N_("请{seconds}秒后再重新获取验证码。"),
    "binding.too_many_sends": N_("获取验证码次数过多，请重新开始绑定。"),
}

register(TEXTS)
