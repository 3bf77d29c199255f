"""Every patient page passes axe-core's WCAG 2.1 A and AA rules (text contrast included) in
Chromium, in both languages, and the patients page does not shift its layout while it loads.

axe-core is vendored (tests/e2e/vendor/axe.min.js, MPL-2.0, from ``npm pack axe-core``): the
tests need no network. The pages' Content-Security-Policy allows only their own scripts, so
the audit runs in a browser context that bypasses it (the pages are otherwise as served).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    PHONE,
    RunningSystem,
    days_ahead,
    get_json,
    require_browser,
    sign_in_on_page,
)

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

pytestmark = pytest.mark.slow

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# Google calls a Cumulative Layout Shift under 0.1 "good" (web.dev/articles/cls); the list
# arriving under the form measured 0.08 before the page reserved its rows. What the page's own
# loading moves must be nothing a reader notices: 0.01.
CLS_MAX = 0.01
# Sums the layout shifts not caused by the user's input since the page started loading
# (the Layout Instability API; buffered: shifts before the observer was made count too).
LAYOUT_SHIFT = """() => new Promise((resolve) => {
  let total = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (!entry.hadRecentInput) total += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  setTimeout(() => resolve(total), 1500);
})"""


@pytest.fixture
def auditor(browser):
    """A phone whose pages can be audited: axe-core injected into each page after load."""
    context = browser.new_context(**PHONE, locale="zh-CN", timezone_id="Asia/Shanghai",
                                  bypass_csp=True)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _violations(page) -> list[str]:
    page.add_script_tag(content=AXE)
    result = page.evaluate("""(tags) => axe.run(document, {
        runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] })""", WCAG_AA)
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:4]}"
            for v in result["violations"]]


def _sign_in(page, system: RunningSystem, lang: str) -> None:
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = next(u for u in users if u["cert_type"] == "0")  # type: ignore[union-attr]
    sign_in_on_page(page, system, user["user_id"], f"?lang={lang}")


def _a_booking(page, system: RunningSystem, days: int) -> str:
    patients = page.request.get(f"{system.web}/api/v1/patients").json()["patients"]
    slots = [s for s in get_json(f"{system.web}/api/v1/slots?department=PED&date="
                                 f"{days_ahead(days)}")[1]["slots"]  # type: ignore[index]
             if s["status"] == "open"]
    held = page.request.post(f"{system.web}/api/v1/bookings",
                             data={"slot_id": slots[-1]["id"], "patient_id": patients[0]["id"]},
                             headers={"Idempotency-Key": str(uuid.uuid4())})
    assert held.status == 201, held.text()
    return held.json()["id"]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_patient_page_passes_axe_wcag_aa(system, auditor, lang):
    page = auditor
    page.goto(f"{system.web}/h5/?lang={lang}")
    found = {"/h5/ (signed out)": _violations(page)}
    _sign_in(page, system, lang)
    found["/h5/"] = _violations(page)
    # One booking per patient, department and day (the anti-scalping rule): a day per language.
    day = 3 if lang == "zh-CN" else 4
    booking = _a_booking(page, system, day)
    for path, ready in (("book", "#departments button"), ("bookings", "#bookings li"),
                        (f"bookings/{booking}", "#status-card"),
                        (f"bookings/{booking}/queue", "#q-state"),
                        ("patients", "#patients li"), ("check-in", "#today li")):
        page.goto(f"{system.web}/h5/{path}?lang={lang}")
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_load_state("networkidle")
        found[f"/h5/{path}"] = _violations(page)
    # The booking steps past the first: doctors, dates, slots.
    page.goto(f"{system.web}/h5/book?lang={lang}")
    page.locator("#departments button[data-code=PED]").click()
    page.locator("#doctors button[data-code='']").click()
    expect(page.locator("#dates button").first).to_be_visible()
    page.locator(f"#dates button[data-date='{days_ahead(day)}']").click()
    expect(page.locator("#slots button").first).to_be_visible()
    found["/h5/book (slots)"] = _violations(page)
    failing = {p: v for p, v in found.items() if v}
    assert failing == {}, "\n".join(f"{p}: {v}" for p, v in failing.items())


def test_the_patients_page_does_not_shift_while_it_loads(system, auditor):
    page = auditor
    _sign_in(page, system, "zh-CN")

    def slow(route):  # a phone network: the list arrives well after the page is painted
        time.sleep(0.8)
        route.continue_()

    page.route("**/api/v1/patients?*", slow)
    page.goto(f"{system.web}/h5/patients")
    expect(page.locator("#patients li").first).to_be_visible()
    shift = page.evaluate(LAYOUT_SHIFT)
    assert shift < CLS_MAX, f"cumulative layout shift {shift:.3f}"


def test_an_uncertified_user_binds_on_the_binding_page_which_passes_axe(system, auditor):
    """The wallet shares only an id (the sandbox's uncertified user): the home page links to
    binding; the HIS simulator's 陈静 binds with the code her phone received, read from the
    sandbox's SMS inbox over HTTP. Each step of the page is audited in both languages."""
    page = auditor
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = next(u for u in users if not u["is_certified"])  # type: ignore[union-attr]
    sign_in_on_page(page, system, user["user_id"])
    expect(page.locator("#uncertified")).to_be_visible()
    page.locator("#binding-link").click()
    found = {}

    def audit(step: str, ready: str) -> None:
        for lang in ("en", "zh-CN"):
            page.goto(f"{system.web}/h5/binding?lang={lang}")
            expect(page.locator(ready)).to_be_visible()
            found[f"/h5/binding ({step}, {lang})"] = _violations(page)

    audit("form", "#his-form")
    page.fill("#bf-name", "陈静")
    page.fill("#bf-document-number", "110105199003081226")
    page.fill("#bf-phone", "13800138005")
    page.locator("#bf-submit").click()
    expect(page.locator("#code-form")).to_be_visible()
    audit("code", "#code-form")
    _, inbox = get_json(f"{system.sandbox}/sms/inbox/13800138005")
    code = re.search(r"[0-9]{6}", inbox["messages"][-1]["text"]).group(0)  # type: ignore[index]
    page.fill("#bf-code", code)
    page.locator("#bf-code-submit").click()
    expect(page.locator("#bound")).to_be_visible()
    audit("bound", "#bound")
    patients = page.request.get(f"{system.web}/api/v1/patients").json()["patients"]
    assert [(p["relation"], p["name"]) for p in patients] == [("self", "陈静")]
    failing = {p: v for p, v in found.items() if v}
    assert failing == {}, "\n".join(f"{p}: {v}" for p, v in failing.items())
