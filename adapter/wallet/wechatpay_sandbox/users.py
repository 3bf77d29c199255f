"""The sandbox's WeChat users: the Alipay sandbox's fictional people, as WeChat knows them.

WeChat shares no real name or document with a merchant: an official account sees an openid (one
per user and appid) and a nickname. The people behind them are the seeded users of
adapter/wallet/sandbox/users.py, so a test or a demo knows whose documents to bind with.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from adapter.wallet.sandbox.users import SandboxUser, seed_users


@dataclass(frozen=True)
class WechatUser:
    """A WeChat user as one official account (appid) sees them."""

    openid: str
    nickname: str
    person: SandboxUser
    subscribed: bool = True  # follows the official account: template messages reach them

    def as_json(self) -> dict:
        """The helper endpoints' view: the openid, and who the person is (for binding)."""
        return {"openid": self.openid, "nickname": self.nickname, "subscribed": self.subscribed,
                "person": self.person.as_json()}


def openid_for(appid: str, user_id: str) -> str:
    """A 28-character openid, stable for the person and the appid, shaped like WeChat's."""
    digest = hashlib.sha256(f"{appid}|{user_id}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode("ascii")[:27]


def wechat_users(appid: str, people: list[SandboxUser] | None = None) -> list[WechatUser]:
    """The seeded people as WeChat users of ``appid``; the last one does not follow it."""
    people = people if people is not None else seed_users()
    return [
        WechatUser(openid_for(appid, p.user_id), p.nick_name, p,
                   subscribed=index < len(people) - 1 or len(people) == 1)
        for index, p in enumerate(people)
    ]
