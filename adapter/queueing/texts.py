"""What queueing tells patients in the wallet (Chinese source strings; English in the
catalogues under adapter/translations/)."""

from __future__ import annotations

from adapter.i18n import N_
from adapter.refusals import register

CHECKED_IN = N_("您已签到，候诊队列中您前面还有{ahead}人。")
AHEAD = N_("您前面还有{ahead}人，请到诊室附近候诊。")
YOUR_TURN = N_("轮到您就诊了，请到{room}诊室。")
MISSED_CALL = N_("叫号时您不在，已按医院规则为您重新排队或过号，请联系分诊台。")

# Refusals of a check-in: code -> zh-CN text (the English is in adapter/translations/en/).
REFUSALS = {
    "check_in.not_confirmed": N_("这条预约尚未支付或医院尚未确认，暂不能签到。"),
    "check_in.too_early": N_("签到尚未开始，请于{opens_at}以后再签到。"),
    "check_in.too_late": N_("签到已于{closed_at}截止，请到分诊台办理。"),
    "check_in.outside_fence": N_(
        "您不在医院附近（{radius}米以内），请到院后再签到或扫描院内二维码。"),
    "check_in.remote_unavailable": N_("本院不支持远程签到，请到院后扫描院内签到二维码。"),
    "check_in.bad_token": N_("签到二维码无效，请扫描院内张贴的签到二维码。"),
    "check_in.token_expired": N_("签到二维码已过期，请重新扫描院内的签到二维码。"),
    "check_in.no_proof": N_("请允许获取位置，或扫描院内的签到二维码后再签到。"),
}
register(REFUSALS)
