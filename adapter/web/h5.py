"""The patient pages under /h5/: thin HTML shells whose scripts call the JSON API (/api/v1).

Each page is rendered in the patient's language (zh-CN unless ``?lang=en``, the ``h5_lang``
cookie or Accept-Language asks for English) by Flask-Babel; the strings the scripts show come
in a translated JSON blob in the page, so the scripts hold no text of their own.

Messages are Chinese in the source (zh-CN is the default language) and translated to English in
adapter/translations/. After changing a string::

    pybabel extract -F babel.cfg -k N_ -o adapter/translations/messages.pot .
    pybabel update -i adapter/translations/messages.pot -d adapter/translations
    (translate adapter/translations/en/LC_MESSAGES/messages.po)
    pybabel compile -d adapter/translations

The compiled .mo files are committed, so installing needs no build step.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import Babel, get_locale, gettext

from adapter.identity.patients import list_patients
from adapter.web.api.errors import patient_account_id

logger = logging.getLogger(__name__)

bp = Blueprint("h5", __name__, url_prefix="/h5")

LANG_COOKIE = "h5_lang"

# Scripts and styles come from this origin only; the pages carry no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# How often the live queue page asks again: the HIS's queue moves by the minute, and a few
# hundred phones each asking every 5 s is a few requests a second.
QUEUE_POLL_MS = 5000


def _normalise(asked: str) -> str:
    return "en" if asked.lower().startswith("en") else "zh_CN"


def select_locale() -> str:
    """?lang= first, then the h5_lang cookie, then Accept-Language; zh_CN by default."""
    asked = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked:
        return _normalise(asked)
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"])
    return _normalise(best or "zh")


def html_lang() -> str:
    """The page's language as an HTML lang attribute (zh-CN or en)."""
    return "en" if str(get_locale()) == "en" else "zh-CN"


def lang_param() -> str:
    """The ?lang= value to keep on links and API calls ("" when the page was not given one)."""
    asked = request.args.get("lang", "")
    return _normalise(asked).replace("_", "-") if asked else ""


def h5_url(endpoint: str, **values: Any) -> str:  # noqa: ANN401
    """url_for that keeps ?lang= across pages."""
    if lang_param():
        values.setdefault("lang", lang_param())
    return url_for(endpoint, **values)


def switch_language_url() -> str:
    """This page in the other language."""
    other = "zh-CN" if html_lang() == "en" else "en"
    args = {k: v for k, v in request.args.items()
            if k not in ("lang", "auth_code", "code", "state")}
    return f"{request.path}?{urlencode({**args, 'lang': other})}"


def js_strings() -> dict[str, str]:
    """Every text the scripts show, in the page's language."""
    return {
        "error_network": gettext("网络不可用，请检查网络后重试"),
        "error_generic": gettext("出错了，请稍后再试"),
        "signing_in": gettext("正在登录…"),
        "signed_out": gettext("已退出登录"),
        "hello": gettext("你好，{name}"),
        "status_pending_payment": gettext("待支付"),
        "status_confirming": gettext("已支付，正在向医院确认"),
        "status_confirmed": gettext("预约成功"),
        "status_cancelling": gettext("正在取消，等待医院确认"),
        "status_cancelled": gettext("已取消"),
        "status_expired": gettext("已过期"),
        "status_rejected": gettext("医院未能确认预约"),
        "status_no_show": gettext("未就诊"),
        "hint_pending_payment": gettext("请在支付期限内完成支付，逾期号源将自动释放。"),
        "hint_confirming": gettext("支付成功，医院确认后即预约成功，请稍候。"),
        "hint_confirmed": gettext("请于就诊当日按时到院就诊。"),
        "hint_cancelling": gettext("医院同意取消后，挂号费将原路退回。"),
        "hint_cancelled": gettext("预约已取消。"),
        "hint_expired": gettext("未在支付期限内支付，号源已释放。"),
        "hint_rejected": gettext("医院未能确认此次预约，已支付的费用将原路退回。"),
        "refund_pending": gettext("退款中"),
        "refund_done": gettext("已退款"),
        "hold_left": gettext("剩余支付时间"),
        "hold_over": gettext("支付期限已过"),
        "paying": gettext("正在前往支付…"),
        "pay_cancelled": gettext("支付未完成"),
        "cancelling": gettext("正在取消…"),
        "booking": gettext("正在提交预约…"),
        "slot_full": gettext("已约满"),
        "slot_closed": gettext("已停诊"),
        "slot_not_released": gettext("未放号"),
        "remaining": gettext("余 {n}"),
        "releases_at": gettext("{time} 放号"),
        "not_released_date": gettext("{date} {time} 放号"),
        "today": gettext("今天"),
        "any_doctor": gettext("任意医生"),
        "any_doctor_hint": gettext("显示本科室所有医生的号源"),
        "no_slots": gettext("当天没有号源，请选择其他日期"),
        "no_bookings": gettext("还没有预约"),
        "no_departments": gettext("暂无可预约的科室"),
        "add_patient_first": gettext("请先添加就诊人"),
        "relation_self": gettext("本人"),
        "relation_child": gettext("子女"),
        "relation_spouse": gettext("配偶"),
        "relation_parent": gettext("父母"),
        "relation_other": gettext("其他"),
        "patient_added": gettext("已添加就诊人"),
        "consent_required": gettext("请勾选监护人同意"),
        "field_required": gettext("请填写此项"),
        "weekday_0": gettext("周日"),
        "weekday_1": gettext("周一"),
        "weekday_2": gettext("周二"),
        "weekday_3": gettext("周三"),
        "weekday_4": gettext("周四"),
        "weekday_5": gettext("周五"),
        "weekday_6": gettext("周六"),
        "fee": gettext("¥{amount}"),
        "bill_pay": gettext("去缴费"),
        "bill_total": gettext("合计"),
        "no_bills": gettext("暂无待缴费用"),
        "quantity": gettext("数量 {n}"),
        "minutes_seconds": gettext("{m} 分 {s} 秒"),
        "queue_wait": gettext("约 {low}–{high} 分钟"),
        "queue_updated": gettext("更新于 {time}"),
        "queue_checked_in": gettext("已签到"),
        "queue_checking_in": gettext("正在签到…"),
        "queue_locating": gettext("正在获取位置…"),
        "queue_no_location": gettext("无法获取位置，请到院后扫描签到二维码"),
        "queue_your_turn": gettext("轮到您了，请到 {room} 诊室"),
        "queue_room": gettext("{room} 诊室"),
        "check_in_none": gettext("今天没有可签到的预约"),
        "no_results": gettext("还没有报告"),
        "result_critical": gettext("请联系医院"),
        "result_abnormal": gettext("{n} 项异常"),
        "result_normal": gettext("未见异常标记"),
        "result_corrected": gettext("已更正"),
        "result_not_found": gettext("找不到这份报告。"),
        "flag_high": gettext("↑偏高"),
        "flag_very_high": gettext("↑↑危急偏高"),
        "flag_low": gettext("↓偏低"),
        "flag_very_low": gettext("↓↓危急偏低"),
        "flag_abnormal": gettext("异常"),
        "flag_very_abnormal": gettext("危急异常"),
        "trend_of": gettext("{name}的历次结果"),
        "open_report_file": gettext("查看报告文件：{name}"),
        "report_file_missing": gettext("报告文件未能收到，请到医院打印。"),
        "code_sent": gettext("验证码已发送至医院档案中的手机号 {phone}，5分钟内有效。"),
        "binding_done": gettext("实名绑定成功"),
        "bound_by_his_match": gettext("已通过医院档案核对完成实名绑定。"),
        "bound_by_health_card": gettext("已通过电子健康卡完成实名绑定。"),
        "bound_by_wallet": gettext("你的钱包账户已实名认证，无需绑定。"),
    }


def opened_from() -> str:
    """The wallet this page was opened from, which signing in uses: ``?platform=`` (the link a
    hospital puts in each wallet's menu: /h5/?platform=<name>) first, then the wallet whose
    in-app browser the User-Agent names (WalletGateway.browser_marker); "" for the default."""
    wallets = current_app.extensions["adapter"].wallets
    asked = request.args.get("platform", "")
    if asked in wallets:
        return asked
    agent = request.headers.get("User-Agent", "")
    return next((name for name, wallet in wallets.items()
                 if wallet.browser_marker and wallet.browser_marker in agent), "")


def wallet_name() -> str:
    """The name, in the page's language, of the wallet signing in here."""
    runtime = current_app.extensions["adapter"]
    platform = opened_from()
    wallet = runtime.wallet_for(platform) if platform else runtime.wallet
    return wallet.display_name(html_lang())


def signed_in() -> bool:
    """Whether the request carries a live patient session (the one POST /api/v1/session
    starts), resolved exactly as the API's guard resolves it."""
    return patient_account_id() is not None


def _page(template: str, page: str, **context: Any) -> ResponseReturnValue:  # noqa: ANN401
    runtime = current_app.extensions["adapter"]
    if page != "index" and not signed_in():
        # Sign in first (the home page offers it), rather than a page of 401s.
        return redirect(h5_url("h5.index"))
    config = {
        "page": page,
        "lang": html_lang(),
        "lang_param": lang_param(),
        "api": url_for("api.openapi").rsplit("/", 1)[0],
        "h5": url_for("h5.index"),
        "timezone": runtime.config.hospital_timezone,
        "signed_in": signed_in(),
        **context.pop("js_config", {}),
    }
    return render_template(f"h5/{template}", page=page, js_config=config,
                           js_strings=js_strings(), **context)


def _document_types() -> list[tuple[str, str]]:
    english = html_lang() == "en"
    types = current_app.extensions["adapter"].mappings.document_types.values()
    return [(t.code, t.name_en if english else t.name_zh) for t in types]


@bp.get("/")
def index() -> ResponseReturnValue:
    """Sign in with the wallet, then the home menu."""
    # Signing in starts here, with the wallet the page was opened from.
    return _page("index.html", "index", wallet_name=wallet_name(),
                 js_config={"platform": opened_from()})


@bp.get("/book")
def book() -> ResponseReturnValue:
    """Book: department, doctor, date, slot, patient, confirm, pay."""
    rules = current_app.extensions["adapter"].booking_rules
    return _page("book.html", "book", document_types=_document_types(), rules=rules)


@bp.get("/bookings")
def bookings() -> ResponseReturnValue:
    """My bookings."""
    return _page("bookings.html", "bookings")


@bp.get("/bookings/<booking_id>")
def booking(booking_id: str) -> ResponseReturnValue:
    """One booking as its state moves: pay, wait for the hospital, cancel, refund."""
    return _page("booking.html", "booking", js_config={"booking_id": booking_id})


@bp.get("/check-in")
def check_in() -> ResponseReturnValue:
    """Where the hospital's check-in QR code leads: today's confirmed bookings (and one just
    after midnight whose check-in has opened), each to its queue page carrying the code's
    token (straight there when there is one)."""
    opens = current_app.extensions["adapter"].config.check_in_opens_minutes
    return _page("check_in.html", "check_in", js_config={
        "token": request.args.get("token", "")[:200], "opens_ms": opens * 60_000})


@bp.get("/bookings/<booking_id>/queue")
def queue(booking_id: str) -> ResponseReturnValue:
    """The visit day, live: check in, then the place in the queue as it moves."""
    return _page("queue.html", "queue", js_config={
        "booking_id": booking_id, "poll_ms": QUEUE_POLL_MS,
        "token": request.args.get("token", "")[:200]})


@bp.get("/bills")
def bills() -> ResponseReturnValue:
    """Unpaid charges, one card per group the hospital lets be paid together."""
    return _page("bills.html", "bills")


@bp.get("/bills/<bill_id>")
def bill(bill_id: str) -> ResponseReturnValue:
    """A bill as it is paid and posted: the receipt and where to go next."""
    return _page("bill.html", "bill", js_config={"bill_id": bill_id})


@bp.get("/results")
def results() -> ResponseReturnValue:
    """My results: the released results of the signed-in user and their dependants."""
    return _page("results.html", "results")


@bp.get("/results/<int:result_id>")
def result(result_id: int) -> ResponseReturnValue:
    """One report: values, ranges, flags, trends, the report file (read from the API)."""
    return _page("result.html", "result", js_config={"result_id": result_id})


@bp.get("/patients")
def patients() -> ResponseReturnValue:
    """The patients the signed-in user books for, and the form to add one."""
    # As many rows as the list will hold are reserved, so the form below does not jump down
    # when the list arrives (layout shift, tests/e2e/test_h5_accessibility.py).
    account_id = patient_account_id()
    count = 0
    if account_id is not None:
        with current_app.extensions["adapter"].session_factory() as db:
            count = len(list_patients(db, account_id))
    return _page("patients.html", "patients", document_types=_document_types(),
                 patient_rows=count)


@bp.get("/binding")
def binding() -> ResponseReturnValue:
    """Real-name binding for an account its wallet did not certify (the hospital's methods)."""
    methods = current_app.extensions["adapter"].binding.methods
    names = {"his_match": gettext("核对医院档案（姓名、证件、手机号）"),
             "health_card": gettext("电子健康卡")}
    return _page("binding.html", "binding", document_types=_document_types(),
                 methods=list(methods), method_names=names)


@bp.after_request
def _headers(response: Response) -> Response:
    if request.args.get("lang"):
        response.set_cookie(LANG_COOKIE, lang_param(), max_age=365 * 24 * 3600,
                            samesite="Lax", httponly=True,
                            secure=current_app.config["SESSION_COOKIE_SECURE"])
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def init_app(app: Flask) -> None:
    """Register the pages and the language selection."""
    Babel(app, locale_selector=select_locale, default_locale="zh_CN",
          default_timezone=app.extensions["adapter"].config.hospital_timezone)
    app.jinja_env.globals.update(h5_url=h5_url, html_lang=html_lang,
                                 switch_language_url=switch_language_url)
    app.register_blueprint(bp)
