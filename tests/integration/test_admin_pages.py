"""Every staff page in both languages: zh-CN by default, English fully translated."""

from __future__ import annotations

import re

import pytest

from adapter.staff.accounts import StaffRole
from tests.integration.admin_kit import DOCTOR_CODE, make_app, signed_in

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
PAGES = {
    StaffRole.ADMIN: ("/admin/", "/admin/messages", "/admin/messages?source=outbox",
                      "/admin/alerts", "/admin/audit", "/admin/staff", "/admin/parked",
                      "/admin/reconciliation"),
    StaffRole.DOCTOR: ("/admin/doctor",),
}


@pytest.fixture
def app(engine):
    return make_app(engine)


def _text(html: str) -> str:
    html = re.sub(r'<a class="lang"[^>]*>[^<]*</a>', "", html)  # the switch says 中文
    return re.sub(r"<[^>]+>", " ", html)


@pytest.mark.parametrize("role", list(PAGES))
def test_pages_are_chinese_by_default_and_english_when_asked(app, role):
    client = signed_in(app, f"u-{role}", role, DOCTOR_CODE if role == StaffRole.DOCTOR else None)
    for path in PAGES[role]:
        chinese = client.get(path)
        assert chinese.status_code == 200, path
        assert '<html lang="zh-CN">' in chinese.get_data(as_text=True)
        joiner = "&" if "?" in path else "?"
        english = client.get(f"{path}{joiner}lang=en").get_data(as_text=True)
        assert '<html lang="en">' in english
        assert not CJK.findall(_text(english)), (path, CJK.findall(_text(english))[:10])


def test_the_sign_in_page_in_english(app):
    page = app.test_client().get("/admin/login?lang=en").get_data(as_text=True)
    assert "Sign in" in page and not CJK.findall(_text(page))
