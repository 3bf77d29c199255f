"""Alipay OpenAPI v1 names and codes in one place, and what they mean in the adapter's words."""

from __future__ import annotations

from adapter.ports import TradeState

PLATFORM = "alipay"  # WalletGateway.platform: /notify/alipay, the platform column of rows
DISPLAY_NAMES = {"zh-CN": "支付宝", "en": "Alipay"}
BROWSER_MARKER = "AlipayClient"  # Alipay's in-app browser says so in its User-Agent

# Alipay's own hosts, and the user-authorisation page published for each gateway: production
# (openapi.alipay.com), the sandbox (openapi-sandbox.dl.alipaydev.com) and the older sandbox
# (openapi.alipaydev.com). publicAppAuthorize.htm takes app_id, scope, redirect_uri and state and
# comes back to redirect_uri with auth_code and state.
ALIPAY_DOMAINS = ("alipay.com", "alipaydev.com")
PRODUCTION_GATEWAY_HOST = "openapi.alipay.com"
AUTHORIZE_PATH = "/oauth2/publicAppAuthorize.htm"
AUTHORIZE_PAGES = {
    PRODUCTION_GATEWAY_HOST: "https://openauth.alipay.com" + AUTHORIZE_PATH,
    "openapi-sandbox.dl.alipaydev.com":
        "https://openauth-sandbox.dl.alipaydev.com" + AUTHORIZE_PATH,
    "openapi.alipaydev.com": "https://openauth.alipaydev.com" + AUTHORIZE_PATH,
}
AUTH_SCOPE = "auth_user"  # the user_id plus what alipay.user.info.share shares

# In-wallet payment: AlipayJSBridge.call("tradePay", {tradeNO: <trade_no>}).
TRADE_PAY_TRADE_NO = "tradeNO"

# Notification answers: exactly "success" stops Alipay's retries; anything else is retried.
NOTIFY_SUCCESS = "success"
NOTIFY_FAIL = "fail"

# Gateway methods (the "method" common parameter).
OAUTH_TOKEN = "alipay.system.oauth.token"  # noqa: S105 (a method name)
USER_INFO_SHARE = "alipay.user.info.share"
TRADE_CREATE = "alipay.trade.create"
TRADE_QUERY = "alipay.trade.query"
TRADE_CLOSE = "alipay.trade.close"
TRADE_REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
MESSAGE_SINGLE_SEND = "alipay.open.public.message.single.send"
BILL_DOWNLOAD_URL = "alipay.data.dataservice.bill.downloadurl.query"

PRODUCT_CODE_JSAPI = "JSAPI_PAY"  # alipay.trade.create from a mini program / H5 in the wallet
SIGN_TYPE = "RSA2"
CHARSET = "utf-8"
FORMAT = "JSON"
VERSION = "1.0"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # timestamp, time_expire: Beijing time, no zone suffix

# Public response codes.
SUCCESS = "10000"
SERVICE_UNAVAILABLE = "20000"  # "服务不可用": the platform failed; the outcome is unknown
AUTH_INSUFFICIENT = "20001"
MISSING_PARAM = "40001"
INVALID_PARAM = "40002"
BUSINESS_FAILED = "40004"
PERMISSION_DENIED = "40006"

# Trade statuses (trade_status of alipay.trade.query and of notifications), and their states.
WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"
TRADE_STATES: dict[str, TradeState] = {
    WAIT_BUYER_PAY: TradeState.CREATED,
    TRADE_CLOSED: TradeState.CLOSED,  # closed unpaid, or refunded in full
    TRADE_SUCCESS: TradeState.PAID,
    TRADE_FINISHED: TradeState.PAID,  # paid, and past the refund period
}

REFUND_SUCCESS = "REFUND_SUCCESS"  # fastpay.refund.query refund_status
FUND_CHANGED = "Y"  # trade.refund fund_change: the money moved with this request
CERTIFIED = "T"  # user.info.share is_certified
GRANT_AUTHORIZATION_CODE = "authorization_code"  # oauth.token grant_type for an auth_code

# sub_codes that mean the platform does not know or did not say what happened: the request may
# or may not have taken effect, so the caller settles by querying, never by assuming.
SYSTEM_ERROR = "ACQ.SYSTEM_ERROR"
UNKNOWN_OUTCOME_SUB_CODES = frozenset(
    {
        SYSTEM_ERROR,
        "aop.ACQ.SYSTEM_ERROR",
        "isp.unknow-error",  # sic, Alipay's spelling
    }
)

# Definite refusals the adapter acts on (any other non-10000 code that is not an unknown
# outcome is a refusal too; these are named because code branches on them).
TRADE_NOT_EXIST = "ACQ.TRADE_NOT_EXIST"
TRADE_HAS_SUCCESS = "ACQ.TRADE_HAS_SUCCESS"
TRADE_HAS_FINISHED = "ACQ.TRADE_HAS_FINISHED"
TRADE_HAS_CLOSE = "ACQ.TRADE_HAS_CLOSE"
TRADE_STATUS_ERROR = "ACQ.TRADE_STATUS_ERROR"
REFUND_AMT_NOT_EQUAL_TOTAL = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
SELLER_BALANCE_NOT_ENOUGH = "ACQ.SELLER_BALANCE_NOT_ENOUGH"
CODE_INVALID = "isv.code-invalid"  # auth_code expired or already used
INVALID_AUTH_TOKEN = "aop.invalid-auth-token"  # noqa: S105 (an error code)
INVALID_SIGNATURE = "isv.invalid-signature"
DEFINITE_REFUSAL_SUB_CODES = frozenset(
    {
        TRADE_NOT_EXIST,
        TRADE_HAS_SUCCESS,
        TRADE_HAS_FINISHED,
        TRADE_HAS_CLOSE,
        TRADE_STATUS_ERROR,
        REFUND_AMT_NOT_EQUAL_TOTAL,
        SELLER_BALANCE_NOT_ENOUGH,
        CODE_INVALID,
        INVALID_AUTH_TOKEN,
        INVALID_SIGNATURE,
        "ACQ.INVALID_PARAMETER",
        "ACQ.TRADE_HAS_EXIST",
        "ACQ.BUYER_NOT_EXIST",
        "ACQ.ACCESS_FORBIDDEN",
    }
)

# A trade.create refused with these says a trade exists under the out_trade_no already.
TRADE_EXISTS_SUB_CODES = frozenset(
    {"ACQ.TRADE_HAS_EXIST", TRADE_HAS_SUCCESS, TRADE_HAS_FINISHED, TRADE_HAS_CLOSE,
     TRADE_STATUS_ERROR}
)

# Ours, not Alipay's: an existing trade with this out_trade_no has a different amount.
AMOUNT_MISMATCH = "ADAPTER.AMOUNT_MISMATCH"

# Close refused because the trade moved on: ask what it became instead of failing.
CLOSE_REFUSED_BY_STATE = frozenset(
    {TRADE_STATUS_ERROR, TRADE_HAS_SUCCESS, TRADE_HAS_FINISHED, TRADE_HAS_CLOSE}
)


def is_unknown_outcome(code: str, sub_code: str = "") -> bool:
    """True when a non-success answer leaves the outcome unknown (query before acting)."""
    return code == SERVICE_UNAVAILABLE or sub_code in UNKNOWN_OUTCOME_SUB_CODES


# alipay.user.info.share cert_type -> mappings/document_types.csv code. Codes 0-12 are in the
# original table; 13-16 were added later (13 台湾居民居住证, 14 港澳居民居住证, 15 港澳身份证,
# 16 外国人永久居住证). 4 回乡证 and 8 台胞证 are the common names of 11 and 12's documents.
# Not mapped (no document type of ours): 2 军官证, 3 士兵证, 5 临时身份证, 6 户口簿, 7 警官证,
# 9 营业执照, 10 其它证件, 15 港澳身份证.
CERT_TYPES: dict[str, str] = {
    "0": "RESIDENT_ID",  # 身份证
    "1": "PASSPORT",  # 护照
    "4": "HK_MACAO_TRAVEL_PERMIT",  # 回乡证
    "8": "TAIWAN_TRAVEL_PERMIT",  # 台胞证
    "11": "HK_MACAO_TRAVEL_PERMIT",  # 港澳居民来往内地通行证
    "12": "TAIWAN_TRAVEL_PERMIT",  # 台湾居民来往大陆通行证
    "13": "HMT_RESIDENCE_PERMIT",  # 台湾居民居住证
    "14": "HMT_RESIDENCE_PERMIT",  # 港澳居民居住证
    "16": "FOREIGN_PERMANENT_RESIDENT",  # 外国人永久居住证
}

GENDERS = {"m": "M", "f": "F"}  # user.info.share gender -> HL7 table 0001
