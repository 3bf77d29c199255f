"""What queueing tells patients in the wallet (Chinese source strings; English in the
catalogues under adapter/translations/)."""

from __future__ import annotations

from adapter.i18n import N_

CHECKED_IN = N_("您已签到，候诊队列中您前面还有{ahead}人。")
AHEAD = N_("您前面还有{ahead}人，请到诊室附近候诊。")
YOUR_TURN = N_("轮到您就诊了，请到{room}诊室。")
MISSED_CALL = N_("叫号时您不在，已按医院规则为您重新排队或过号，请联系分诊台。")
