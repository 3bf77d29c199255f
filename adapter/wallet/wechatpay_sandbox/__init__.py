"""The WeChat Pay sandbox: a separate program speaking WeChat Pay APIv3 and the official-account
APIs the adapter uses, with its own platform keys.

The adapter reaches it only over HTTP, as it does the real platform. ``hospital-adapter
wechatpay-sandbox`` runs it (:func:`wechatpay_sandbox_command`); tests build it with
``serve_wechatpay_sandbox(WechatSandboxState(...), host, 0)``.

Paths: APIv3 under ``/v3/`` (certificates, pay/transactions/jsapi, the order query by
out-trade-no or id, close, refund/domestic/refunds, bill/tradebill, billdownload/file);
the official account's ``/connect/oauth2/authorize``, ``/sns/oauth2/access_token``,
``/sns/userinfo``, ``/cgi-bin/token``, ``/cgi-bin/message/template/send``; the pay confirmation
``/sandbox/cashier``; ``/inbox/<openid>``; helpers under ``/_sandbox/`` (users, oauth_code, pay,
orders, notifications, platform, faults). docs/wechatpay.md describes it.
"""

from adapter.wallet.wechatpay_sandbox.app import create_wechatpay_sandbox_app
from adapter.wallet.wechatpay_sandbox.cli import serve_wechatpay_sandbox, wechatpay_sandbox_command
from adapter.wallet.wechatpay_sandbox.state import WechatSandboxState
from adapter.wallet.wechatpay_sandbox.users import WechatUser, openid_for, wechat_users

__all__ = [
    "WechatSandboxState",
    "WechatUser",
    "create_wechatpay_sandbox_app",
    "openid_for",
    "serve_wechatpay_sandbox",
    "wechat_users",
    "wechatpay_sandbox_command",
]
