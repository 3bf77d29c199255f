"""WeChat Pay API v3 and official-account names and codes in one place, and what they mean in
the adapter's words."""

from __future__ import annotations

from adapter.ports import TradeState

PLATFORM = "wechatpay"  # WalletGateway.platform: /notify/wechatpay, the platform column of rows
DISPLAY_NAMES = {"zh-CN": "微信支付", "en": "WeChat Pay"}
BROWSER_MARKER = "MicroMessenger"  # WeChat's in-app browser says so in its User-Agent

# WeChat's own hosts. Any other API URL is taken for an imitation of the platform (a sandbox),
# which serves the OAuth page, the official-account API and a cashier page on its own host.
WECHAT_DOMAINS = ("weixin.qq.com", "wechatpay.cn")
API_URL = "https://api.mch.weixin.qq.com"
OAUTH_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
OAUTH_PATH = "/connect/oauth2/authorize"
OFFICIAL_API_URL = "https://api.weixin.qq.com"
# An imitation's browser cashier (?prepay_id=&return_url=): WeChat has none (JSAPI pays through
# WeixinJSBridge), so the path is the sandbox's own and says so.
CASHIER_PATH = "/sandbox/cashier"

# API v3 paths (https://pay.weixin.qq.com/doc/v3/merchant/: JSAPI payment, refunds, bills).
JSAPI_PATH = "/v3/pay/transactions/jsapi"
QUERY_PATH = "/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mchid}"
CLOSE_PATH = "/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
REFUND_PATH = "/v3/refund/domestic/refunds"
REFUND_QUERY_PATH = "/v3/refund/domestic/refunds/{out_refund_no}"
TRADE_BILL_PATH = "/v3/bill/tradebill?bill_date={bill_date}&bill_type=ALL"
CERTIFICATES_PATH = "/v3/certificates"

# Signatures: requests carry Authorization "WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,
# signature=...,timestamp=...,serial_no=..."; answers and callbacks carry these headers.
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
HEADER_TIMESTAMP = "wechatpay-timestamp"
HEADER_NONCE = "wechatpay-nonce"
HEADER_SIGNATURE = "wechatpay-signature"
HEADER_SERIAL = "wechatpay-serial"
HEADER_SIGNATURE_TYPE = "wechatpay-signature-type"
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"  # the platform public key's id; certificates have hex
# WeChat's documented bound: a signed answer or callback whose timestamp is further than this
# from our clock is refused (a replay, or a clock to fix).
MAX_CLOCK_SKEW_SECONDS = 300
RESOURCE_ALGORITHM = "AEAD_AES_256_GCM"
ENCRYPTED_RESOURCE = "encrypt-resource"

# JSAPI payment: WeixinJSBridge.invoke("getBrandWCPayRequest", ...) / wx.chooseWCPay take these.
PAY_SIGN_TYPE = "RSA"
PACKAGE_PREFIX = "prepay_id="
CURRENCY = "CNY"

# Trade states (trade_state of the query and of TRANSACTION.SUCCESS callbacks).
SUCCESS = "SUCCESS"
REFUND = "REFUND"  # paid, then (partly) refunded: the money was taken
NOTPAY = "NOTPAY"
CLOSED = "CLOSED"
REVOKED = "REVOKED"  # 已撤销 (payment-code trades)
USERPAYING = "USERPAYING"  # the buyer is entering a password
PAYERROR = "PAYERROR"  # the payment failed (a bank said no); the order stays open to pay again
TRADE_STATES: dict[str, TradeState] = {
    SUCCESS: TradeState.PAID,
    REFUND: TradeState.PAID,
    NOTPAY: TradeState.CREATED,
    USERPAYING: TradeState.CREATED,
    PAYERROR: TradeState.CREATED,  # not paid, not closed: the hold's expiry closes it
    CLOSED: TradeState.CLOSED,
    REVOKED: TradeState.CLOSED,
}

# Refund statuses (status of the refund answer and query).
REFUND_SUCCESS = "SUCCESS"
REFUND_PROCESSING = "PROCESSING"  # accepted; WeChat completes it by itself
REFUND_ABNORMAL = "ABNORMAL"  # the buyer's account cannot take it back: staff act in the console
REFUND_CLOSED = "CLOSED"
REFUND_ON_ITS_WAY = frozenset({REFUND_SUCCESS, REFUND_PROCESSING})

# Callback event types.
TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})

# Error codes of v3 answers ({"code": ..., "message": ...} with a 4xx or 5xx status).
SYSTEM_ERROR = "SYSTEM_ERROR"
FREQUENCY_LIMITED = "FREQUENCY_LIMITED"
BANK_ERROR = "BANK_ERROR"
# The platform failed or would not say: the request may or may not have taken effect.
UNKNOWN_OUTCOME_CODES = frozenset({SYSTEM_ERROR, FREQUENCY_LIMITED, BANK_ERROR, "BANKERROR"})
ORDER_NOT_EXIST = "ORDER_NOT_EXIST"
ORDER_NOT_EXIST_CODES = frozenset({ORDER_NOT_EXIST, "ORDERNOTEXIST"})  # v3, and v2's spelling
RESOURCE_NOT_EXISTS = "RESOURCE_NOT_EXISTS"  # refund query: no such out_refund_no
ORDERPAID = "ORDERPAID"
ORDER_CLOSED = "ORDER_CLOSED"
OUT_TRADE_NO_USED = "OUT_TRADE_NO_USED"  # the same out_trade_no with other parameters
# An order refused with these says a trade exists under the out_trade_no already.
TRADE_EXISTS_CODES = frozenset({ORDERPAID, ORDER_CLOSED, OUT_TRADE_NO_USED})
# Close refused because the trade moved on: ask what it became instead of failing.
CLOSE_REFUSED_BY_STATE = frozenset({ORDERPAID, ORDER_CLOSED, "TRADE_ERROR"})
NO_STATEMENT_EXIST = "NO_STATEMENT_EXIST"  # no bill for the day
STATEMENT_CREATING = "STATEMENT_CREATING"  # the bill is being made: try later
# Ours, not WeChat's: an answer we cannot stand by.
AMOUNT_MISMATCH = "ADAPTER.AMOUNT_MISMATCH"

# Official-account API (access token, OAuth2, template messages). Answers carry errcode/errmsg;
# errcode 0 or absent is success.
TOKEN_PATH = "/cgi-bin/token"  # noqa: S105 (a path)
TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"
OAUTH_TOKEN_PATH = "/sns/oauth2/access_token"  # noqa: S105 (a path)
OAUTH_SCOPE = "snsapi_base"  # the openid only, without a confirmation page
OAUTH_FRAGMENT = "#wechat_redirect"
OFFICIAL_BUSY = -1  # 系统繁忙: try again
ACCESS_TOKEN_INVALID = frozenset({40001, 40014, 42001})  # invalid or expired: fetch a new one
TEMPLATE_FIELD = "keyword1"  # the template keyword the message text fills, by default
