"""A parent books, pays for and cancels a visit for their child on a phone, through the real
system (`hospital-adapter run`: the adapter, the HIS simulator and the wallet sandbox)."""

from __future__ import annotations

import re
import time

import pytest

from tests.e2e.conftest import (
    Phone,
    RunningSystem,
    days_ahead,
    get_json,
    require_browser,
    sign_in_on_page,
)

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

pytestmark = pytest.mark.slow

CJK = re.compile(r"[\u3400-\u9fff]")


def _parent(system: RunningSystem) -> dict:
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    return next(u for u in users if u["children"] and u["cert_type"] == "0")  # type: ignore


def _sign_in(phone: Phone, system: RunningSystem, user_id: str, query: str = "") -> None:
    sign_in_on_page(phone.page, system, user_id, query)


def test_parent_books_pays_and_cancels_for_a_child(system, phone, tmp_path):
    page = phone.page
    parent = _parent(system)
    child = parent["children"][0]

    _sign_in(phone, system, parent["user_id"])
    expect(page.locator("#hello")).to_contain_text(parent["name"])

    # Patients: the child needs the guardian's consent; a bad number comes back in the API's words.
    page.get_by_role("link", name="就诊人").click()
    page.wait_for_url("**/h5/patients")
    form = page.locator("#patient-form")
    form.get_by_label("姓名").fill(child["name"])
    form.get_by_label("与你的关系").select_option("child")
    form.get_by_label("证件类型").select_option("RESIDENT_ID")
    form.get_by_label("证件号码").fill(child["cert_no"][:-1] + ("0" if child["cert_no"][-1] != "0"
                                                                else "1"))
    form.get_by_role("button", name="保存就诊人").click()
    expect(page.locator("#patient-form-error")).to_have_text("请勾选监护人同意")
    form.get_by_label("我是该儿童的监护人，同意医院为就诊处理其个人信息").check()
    form.get_by_role("button", name="保存就诊人").click()
    expect(page.locator("#patient-form-error")).to_contain_text("校验位")  # the API's refusal
    form.get_by_label("证件号码").fill(child["cert_no"])
    form.get_by_role("button", name="保存就诊人").click()
    expect(page.locator("#patients")).to_contain_text(child["name"])
    expect(page.locator("#patients")).to_contain_text(child["cert_no"][:3] + "*")
    assert child["cert_no"] not in page.content() and parent["cert_no"] not in page.content()

    # Book: department, any doctor, a date two days ahead (cancellable), the first open slot.
    page.goto(f"{system.web}/h5/")
    page.get_by_role("link", name="预约挂号").click()
    page.locator("#departments button[data-code=PED]").click()
    page.locator("#doctors button[data-code='']").click()
    expect(page.locator("#dates button:disabled").first).to_contain_text("放号")
    page.locator(f"#dates button[data-date='{days_ahead(2)}']").click()
    slot = page.locator("#slots button:enabled").first
    expect(slot).to_contain_text("¥")
    slot.click()
    page.locator("#patients button", has_text=child["name"]).click()
    expect(page.locator("#c-patient")).to_have_text(child["name"])
    expect(page.locator("#step-confirm")).to_contain_text("号源不得转让")  # the anti-scalping note
    page.get_by_role("button", name="确认预约并支付").click()

    # The sandbox's cashier, then back to the booking page.
    page.wait_for_url(f"{system.sandbox}/cashier/**")
    page.get_by_role("button", name="确认付款 / Pay").click()
    page.get_by_role("link", name="返回商户 / Back to the hospital").click()
    page.wait_for_url(re.compile(r".*/h5/bookings/B\w+$"))
    status = page.locator("#status-card")
    # Paid -> the worker sends SRM^S01 to the simulator -> SRR^S01 accepts it.
    expect(status).to_have_attribute("data-status", "confirmed", timeout=30_000)
    expect(page.locator("#status-text")).to_have_text("预约成功")
    expect(page.locator("#d-patient")).to_have_text(child["name"])
    screenshot = tmp_path / "booking-confirmed.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0

    # Cancel before the deadline: a confirm dialog, then cancelled and refunded.
    page.get_by_role("button", name="取消预约").click()
    dialog = page.locator("#cancel-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="确定取消").click()
    expect(status).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#status-text")).to_have_text("已取消")
    refund = page.locator("#refund")
    expect(refund).to_contain_text("¥")
    expect(refund).to_have_attribute("data-status", "done", timeout=20_000)
    expect(refund).to_contain_text("已退款")
    expect(page.locator("#cancel")).to_be_hidden()

    # My bookings lists it with its state.
    page.locator("header .back").click()
    expect(page.locator("#bookings")).to_contain_text("已退款")
    # Chromium logs every 4xx answer; the one refusal asked for above is not a fault.
    # The sandbox's own pages (not the adapter's) have no favicon.
    expected = (f"status of 422 (UNPROCESSABLE ENTITY) at {system.web}/api/v1/patients?",
                f"status of 404 (NOT FOUND) at {system.sandbox}/favicon.ico")
    assert [e for e in phone.errors if not any(x in e for x in expected)] == []


def test_a_wechat_user_binds_her_identity_books_and_pays_with_wechat_pay(system, phone):
    """WeChat shares no real name: the patient signs in with the official account's OAuth,
    binds her identity on the page (the HIS knows her; a code to the phone on file), books and
    pays on the WeChat Pay sandbox's cashier, and hears of it in a template message."""
    from adapter.demo import WechatDemo

    page = phone.page
    person = WechatDemo.PERSON
    _, users = get_json(f"{system.wechatpay}/_sandbox/users")
    user = next(u for u in users if u["subscribed"])  # type: ignore[union-attr]

    page.goto(f"{system.web}/h5/?platform=wechatpay")
    page.locator("#login").click()
    page.wait_for_url(f"{system.wechatpay}/connect/oauth2/authorize**")
    page.locator(f"input[name=openid][value='{user['openid']}']").check()
    page.get_by_role("button", name="允许 / Allow").click()
    page.wait_for_url(f"{system.web}/h5/**")
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#uncertified")).to_be_visible()  # no real name from WeChat

    page.locator("#binding-link").click()
    page.wait_for_url("**/h5/binding**")
    form = page.locator("#his-form")
    form.get_by_label("姓名").fill(person["name"])
    form.get_by_label("证件类型").select_option(person["document_type"])
    form.get_by_label("证件号码").fill(person["document_number"])
    form.get_by_label("手机号").fill(person["phone"])
    form.get_by_role("button", name="获取验证码").click()
    expect(page.locator("#code-form")).to_be_visible()
    deadline = time.monotonic() + 15
    texts: list = []
    while not texts and time.monotonic() < deadline:
        _, inbox = get_json(f"{system.sandbox}/sms/inbox/{person['phone']}")
        texts = inbox.get("messages", []) if isinstance(inbox, dict) else []
        time.sleep(0.2)
    code = re.search(r"\d{6}", texts[-1]["text"]).group(0)  # type: ignore[union-attr]
    page.locator("#code-form").get_by_label("短信验证码").fill(code)
    page.get_by_role("button", name="确认绑定").click()
    expect(page.locator("#bound")).to_be_visible()
    assert person["document_number"] not in page.content()

    page.goto(f"{system.web}/h5/?platform=wechatpay")
    page.get_by_role("link", name="预约挂号").click()
    page.locator("#departments button[data-code=GIM]").click()
    page.locator("#doctors button[data-code='']").click()
    page.locator(f"#dates button[data-date='{days_ahead(2)}']").click()
    page.locator("#slots button:enabled").first.click()
    page.locator("#patients button", has_text=person["name"]).click()
    page.get_by_role("button", name="确认预约并支付").click()

    page.wait_for_url(f"{system.wechatpay}/sandbox/cashier**")
    expect(page.locator("body")).to_contain_text("¥")
    page.get_by_role("button", name="立即支付 / Pay").click()
    page.get_by_role("link", name="完成 / Back to the hospital").click()
    page.wait_for_url(re.compile(r".*/h5/bookings/B\w+(\?.*)?$"))
    status = page.locator("#status-card")
    expect(status).to_have_attribute("data-status", "confirmed", timeout=30_000)
    expect(page.locator("#d-patient")).to_have_text(person["name"])
    deadline = time.monotonic() + 15
    inbox: object = []
    while not inbox and time.monotonic() < deadline:
        _, inbox = get_json(f"{system.wechatpay}/inbox/{user['openid']}")
        time.sleep(0.2)
    assert inbox, "the confirmation reached her WeChat as a template message"
    favicon = f"status of 404 (NOT FOUND) at {system.wechatpay}/favicon.ico"
    assert [e for e in phone.errors if favicon not in e] == []


def test_english_is_kept_across_pages(system, phone):
    page = phone.page
    page.goto(f"{system.web}/h5/?lang=en")
    expect(page.locator("#login")).to_have_text("Sign in with Alipay")
    parent = _parent(system)
    _sign_in(phone, system, parent["user_id"], "?lang=en")
    assert "lang=en" in page.url
    page.get_by_role("link", name="Book", exact=True).click()
    expect(page.locator("#departments button").first).to_be_visible()
    assert "lang=en" in page.url
    body = page.locator("body").inner_text()
    assert not CJK.findall(body.replace("中文", "")), body
    favicon = f"status of 404 (NOT FOUND) at {system.sandbox}/favicon.ico"
    assert [e for e in phone.errors if favicon not in e] == []
