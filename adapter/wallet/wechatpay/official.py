"""The official account (公众号) behind the payment app: OAuth2 sign-in (code -> openid) and
template messages, with its access token cached until it expires.

This API is not API v3: no signatures, answers carry ``errcode``/``errmsg`` (0 or absent is
success) beside HTTP 200, and the AppSecret authenticates us.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests

from adapter.ports import WalletRefused, WalletUnavailable
from adapter.wallet.transport import transport_failure
from adapter.wallet.wechatpay import consts

logger = logging.getLogger(__name__)

TOKEN_MARGIN_SECONDS = 300  # fetch a new access token this long before the old one expires


@dataclass(frozen=True)
class OAuthAnswer:
    """/sns/oauth2/access_token: who the user is (the token itself is not kept)."""

    openid: str
    unionid: str = ""

    def __repr__(self) -> str:  # an openid is a person's id at WeChat: keep it out of logs
        return "OAuthAnswer(...)"


class OfficialAccount:
    """The official account's API at ``api_url`` (https://api.weixin.qq.com)."""

    def __init__(
        self,
        api_url: str,
        appid: str,
        secret: str,
        *,
        template_id: str = "",
        template_field: str = consts.TEMPLATE_FIELD,
        timeout: tuple[float, float] = (5.0, 10.0),
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self.template_id = template_id
        self.template_field = template_field
        self.timeout = timeout
        self.session = session or requests.Session()
        self._monotonic = monotonic
        self._token = ""
        self._token_until = 0.0
        self._lock = threading.Lock()

    def _get_or_post(self, path: str, params: dict[str, str], body: dict[str, Any] | None,
                     what: str) -> dict[str, Any]:
        # The URL carries the secret or a token: it is never logged (transport_failure logs
        # the exception's type only).
        url = f"{self.api_url}{path}?{urlencode(params)}"
        try:
            if body is None:
                response = self.session.get(url, timeout=self.timeout)
            else:
                response = self.session.post(
                    url, data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                    headers={"Content-Type": "application/json"}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise transport_failure(what, exc) from None
        if response.status_code != 200:
            raise WalletUnavailable(f"{what}: HTTP {response.status_code}")
        try:
            data = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise WalletUnavailable(f"{what}: answer is not JSON") from None
        if not isinstance(data, dict):
            raise WalletUnavailable(f"{what}: answer is not a JSON object")
        code = data.get("errcode", 0)
        if code in (0, None):
            return data
        if code == consts.OFFICIAL_BUSY:
            raise WalletUnavailable(f"{what}: system busy")
        logger.info("%s: refused errcode %s", what, code)
        raise WalletRefused(str(code), "", str(data.get("errmsg", "")))

    # ----------------------------------------------------------------------------------------
    # Sign-in

    def oauth_openid(self, code: str) -> OAuthAnswer:
        """/sns/oauth2/access_token: a one-time OAuth code for the user's openid (40029
        invalid code, 40163 code already used: WalletRefused)."""
        data = self._get_or_post(consts.OAUTH_TOKEN_PATH, {
            "appid": self.appid, "secret": self._secret, "code": code,
            "grant_type": "authorization_code"}, None, "oauth access_token")
        openid = str(data.get("openid", ""))
        if not openid:
            raise WalletUnavailable("oauth access_token answered without an openid")
        return OAuthAnswer(openid, str(data.get("unionid", "")))

    # ----------------------------------------------------------------------------------------
    # Template messages

    def access_token(self, *, renew: bool = False) -> str:
        """The official account's access token, fetched from /cgi-bin/token when there is none
        or it is about to expire (WeChat: 7200 s, and fetching anew invalidates the old one
        after five minutes, so every process keeps its own and renews only when due)."""
        with self._lock:
            if not renew and self._token and self._monotonic() < self._token_until:
                return self._token
            data = self._get_or_post(consts.TOKEN_PATH, {
                "grant_type": "client_credential", "appid": self.appid,
                "secret": self._secret}, None, "access token")
            token = str(data.get("access_token", ""))
            expires_in = data.get("expires_in", 0)
            if not token or not isinstance(expires_in, int):
                raise WalletUnavailable("access token answered without a token")
            self._token = token
            self._token_until = self._monotonic() + max(0, expires_in - TOKEN_MARGIN_SECONDS)
            return token

    def send_template(self, openid: str, text: str, url: str = "") -> None:
        """/cgi-bin/message/template/send of the configured template, the text filling its
        ``template_field``; an access token WeChat calls invalid is renewed once."""
        if not self.template_id:
            raise ValueError("no template id configured")
        body: dict[str, Any] = {"touser": openid, "template_id": self.template_id,
                                "data": {self.template_field: {"value": text}}}
        if url:
            body["url"] = url
        for attempt in (1, 2):
            token = self.access_token(renew=attempt == 2)
            try:
                self._get_or_post(consts.TEMPLATE_SEND_PATH, {"access_token": token}, body,
                                  "template message")
                return
            except WalletRefused as exc:
                if attempt == 2 or int(exc.code) not in consts.ACCESS_TOKEN_INVALID:
                    raise
                logger.info("template message: access token refused (%s), renewing", exc.code)
