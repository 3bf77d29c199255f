"""The sandbox's seeded wallet users: fictional people with valid documents.

Resident ID numbers (GB 11643-1999) are built here, area code + birth date + sequence (odd for
men, even for women) + the check digit stdnum computes, so they pass the adapter's checks. The
children are not wallet users: they hang off a parent so tests and demos can add them as
dependants. Children's birth dates are relative to today so they stay under 14.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from stdnum.cn import ric

# Alipay alipay.user.info.share cert_type values (documented enumeration).
CERT_RESIDENT_ID = "0"
CERT_PASSPORT = "1"


@dataclass(frozen=True)
class Child:
    """A child of a wallet user (not a wallet user): a dependant with their own resident ID."""

    name: str
    gender: str  # F / M
    birth_date: dt.date
    cert_no: str
    cert_type: str = CERT_RESIDENT_ID


@dataclass(frozen=True)
class SandboxUser:
    """A wallet user as alipay.user.info.share describes them."""

    user_id: str
    name: str
    nick_name: str
    gender: str  # F / M
    is_certified: bool
    mobile: str
    cert_type: str = ""
    cert_no: str = ""
    birth_date: dt.date | None = None
    children: tuple[Child, ...] = field(default_factory=tuple)

    @property
    def logon_id(self) -> str:
        """The masked logon id Alipay shows merchants (buyer_logon_id)."""
        return f"{self.mobile[:3]}****{self.mobile[-4:]}" if self.mobile else ""

    def as_json(self) -> dict:
        """A JSON-able description for the sandbox's helper endpoints."""
        return {
            "user_id": self.user_id,
            "name": self.name,
            "nick_name": self.nick_name,
            "gender": self.gender,
            "is_certified": self.is_certified,
            "mobile": self.mobile,
            "cert_type": self.cert_type,
            "cert_no": self.cert_no,
            "birth_date": self.birth_date.isoformat() if self.birth_date else "",
            "children": [
                {"name": c.name, "gender": c.gender, "birth_date": c.birth_date.isoformat(),
                 "cert_type": c.cert_type, "cert_no": c.cert_no}
                for c in self.children
            ],
        }


def resident_id(area: str, birth: dt.date, sequence: int, gender: str) -> str:
    """A GB 11643 number: the sequence's last digit is made odd for M, even for F."""
    seq = sequence - sequence % 2 + (1 if gender == "M" else 0)
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    # stdnum's calc_check_digit takes the full 18 characters and ignores the last one.
    return body + ric.calc_check_digit(body + "0")


def _years_ago(today: dt.date, years: int, month: int, day: int) -> dt.date:
    return dt.date(today.year - years, month, day)


def seed_users(today: dt.date | None = None) -> list[SandboxUser]:
    """The test users: certified adults, parents of under-14s, a foreigner, an uncertified user."""
    today = today or dt.date.today()

    def adult(user_id: str, name: str, nick: str, gender: str, area: str, birth: dt.date,
              seq: int, mobile: str, children: tuple[Child, ...] = ()) -> SandboxUser:
        return SandboxUser(
            user_id=user_id, name=name, nick_name=nick, gender=gender, is_certified=True,
            mobile=mobile, cert_type=CERT_RESIDENT_ID,
            cert_no=resident_id(area, birth, seq, gender), birth_date=birth, children=children,
        )

    def child(name: str, gender: str, area: str, birth: dt.date, seq: int) -> Child:
        return Child(name, gender, birth, resident_id(area, birth, seq, gender))

    return [
        adult("2088000000000101", "王建国", "建国", "M", "110105", dt.date(1980, 3, 15), 11,
              "13800000101",
              (child("王小雨", "F", "110105", _years_ago(today, 8, 5, 20), 22),)),
        adult("2088000000000102", "李秀英", "秀英", "F", "310104", dt.date(1988, 9, 2), 42,
              "13900000102",
              (child("陈子轩", "M", "310104", _years_ago(today, 11, 1, 10), 15),
               child("陈子涵", "F", "310104", _years_ago(today, 5, 8, 8), 26))),
        adult("2088000000000103", "赵敏", "小敏", "F", "440106", dt.date(1995, 12, 1), 64,
              "13700000103"),
        adult("2088000000000104", "刘洋", "老刘", "M", "110108", dt.date(1956, 7, 7), 35,
              "13600000104"),
        SandboxUser(
            user_id="2088000000000105", name="JOHN SMITH", nick_name="John", gender="M",
            is_certified=True, mobile="13500000105", cert_type=CERT_PASSPORT,
            cert_no="E98765432", birth_date=dt.date(1979, 4, 30),
        ),
        # Not real-name certified: the wallet shares no name or document for this user.
        SandboxUser(
            user_id="2088000000000106", name="", nick_name="游客", gender="F",
            is_certified=False, mobile="13400000106",
        ),
    ]


# Test users made on demand (POST /_sandbox/users), for load tests that need many people.
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
          "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "文", "晨")
_AREAS = ("110105", "310104", "440106", "110108")  # the seeded users' (known) address codes
_FIRST_BIRTH = dt.date(1960, 1, 1)
_BIRTH_SPAN_DAYS = 9000  # 1960-01-01 .. 1984-08: always an adult
DEFAULT_TEST_USER_PREFIX = "2088100"


def make_test_user(number: int, prefix: str = DEFAULT_TEST_USER_PREFIX) -> SandboxUser:
    """The ``number``-th generated test user: a certified adult with a resident ID of their own.

    Distinct numbers give distinct user ids (``prefix`` padded with the number to Alipay's 16
    digits) and distinct resident ID numbers (address code, birth date and sequence all follow
    from the number). ValueError when the number does not fit after the prefix.
    """
    width = 16 - len(prefix)
    if number < 0 or len(str(number)) > width:
        raise ValueError(f"user number {number} does not fit in {width} digits")
    gender = "M" if number % 2 else "F"
    birth = _FIRST_BIRTH + dt.timedelta(days=number % _BIRTH_SPAN_DAYS)
    rest = number // _BIRTH_SPAN_DAYS
    area = _AREAS[rest % len(_AREAS)]
    sequence = 100 + 2 * (rest // len(_AREAS))  # made odd for men by resident_id()
    if sequence > 998:
        raise ValueError(f"user number {number} is beyond the generated ID numbers")
    name = _SURNAMES[number % len(_SURNAMES)] + _GIVEN[(number // len(_SURNAMES)) % len(_GIVEN)]
    return SandboxUser(
        user_id=f"{prefix}{number:0{width}d}", name=name, nick_name=f"测试{number}",
        gender=gender, is_certified=True, mobile=f"147{number % 100_000_000:08d}",
        cert_type=CERT_RESIDENT_ID, cert_no=resident_id(area, birth, sequence, gender),
        birth_date=birth,
    )
