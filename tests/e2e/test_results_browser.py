"""A patient reads the day's results on a phone, through the real system (`hospital-adapter
run`): the simulator's laboratory sends them over MLLP once the patient has signed in."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Phone, RunningSystem, get_json, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

pytestmark = pytest.mark.slow

def _sign_in(phone: Phone, system: RunningSystem, user_id: str, query: str = "") -> None:
    page = phone.page
    page.goto(f"{system.web}/h5/{query}")
    page.locator("#login").click()
    page.wait_for_url(f"{system.sandbox}/oauth2/publicAppAuthorize.htm**")
    page.locator(f"input[name=user_id][value='{user_id}']").check()
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"{system.web}/h5/**")
    expect(page.locator("#signed-in")).to_be_visible()


def test_a_patient_reads_the_report_with_flags_trends_and_the_pdf(system, phone):
    page = phone.page
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = next(u for u in users if u["cert_type"] == "0")  # type: ignore[union-attr]
    _sign_in(phone, system, user["user_id"])

    # Signing in adds the patient to the HIS; the laboratory's next rounds send the day's
    # results, then the blood count's correction.
    page.get_by_role("link", name="检查检验报告").click()
    page.wait_for_url("**/h5/results")
    items = page.locator("#results a.item")
    for _ in range(60):
        if items.count() >= 4 and page.locator("#results", has_text="已更正").count():
            break
        page.wait_for_timeout(1000)
        page.reload()
    expect(items).to_have_count(4)  # history blood count, blood count, biochemistry, CT
    expect(page.locator("#results .badge.critical")).to_have_text("请联系医院")

    page.locator("#results a.item", has_text="血常规").first.click()
    page.wait_for_url(re.compile(r".*/h5/results/\d+$"))
    expect(page.locator("#r-title")).to_have_text("血常规")
    expect(page.locator("#corrected")).to_be_visible()
    platelets = page.locator("#r-values tr[data-code=PLT]")
    expect(platelets).to_have_class(re.compile("abnormal"))
    expect(platelets.locator(".value")).to_contain_text("412")
    expect(platelets.locator(".value")).to_contain_text("↑偏高")
    expect(platelets.locator(".range")).to_have_text("125-350")
    # Each value's trend: an inline SVG drawn by the page (two points: three months ago, today).
    charts = page.locator("#r-values svg.trend")
    expect(charts).to_have_count(5)
    expect(charts.first.locator("circle")).to_have_count(2)
    assert page.evaluate("() => [...document.querySelectorAll('img, link[rel=stylesheet], "
                         "script[src]')].every(e => (e.src || e.href).startsWith("
                         "location.origin))")

    # The biochemistry: the critical value, shown now that it is released, and the note.
    page.locator("header .back").click()
    page.locator("#results a.item", has_text="生化全项").click()
    expect(page.locator("#critical")).to_be_visible()
    expect(page.locator("#r-values tr[data-code=K] .value.critical")).to_contain_text("6.9")

    # The CT report's PDF: the right type, as an attachment.
    page.locator("header .back").click()
    page.locator("#results a.item", has_text="胸部CT平扫").click()
    link = page.get_by_role("link", name=re.compile("查看报告文件"))
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".pdf")
    answer = page.request.get(f"{system.web}{link.get_attribute('href')}")
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.body().startswith(b"%PDF")

    # English.
    page.goto(page.url.split("?")[0] + "?lang=en")
    expect(page.locator("header h1")).to_have_text("Report")
    expect(page.locator("#values thead")).to_contain_text("Reference range")
    favicon = f"status of 404 (NOT FOUND) at {system.sandbox}/favicon.ico"  # the sandbox's
    assert [e for e in phone.errors if favicon not in e] == []
