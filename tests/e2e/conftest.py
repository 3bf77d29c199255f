"""Browser tests: the real system started as a newcomer starts it, driven by Chromium.

Chromium comes from the system (Debian's ``chromium``; ``ADAPTER_TEST_CHROMIUM`` names another
binary): ``playwright install`` is never run. Without a browser the tests are skipped, unless
``CI`` is set: there a missing browser is a failure.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import urllib.error
import urllib.request
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from adapter.demo import LocalSystem, start_local_system
from tests.conftest import MAPPINGS

CHROMIUM = os.environ.get("ADAPTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}


def require_browser() -> None:
    """Skip the calling module without Playwright or Chromium (fail instead when CI is set)."""
    reason = ""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is missing: pip install -e '.[test]'"
    if not reason and not os.access(CHROMIUM, os.X_OK):
        reason = (f"no Chromium at {CHROMIUM}: apt-get install chromium, or set "
                  "ADAPTER_TEST_CHROMIUM to a Chromium binary")
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


def days_ahead(days: int) -> str:
    """The date ``days`` after today in the hospital's zone, as YYYY-MM-DD."""
    today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()
    return (today + dt.timedelta(days=days)).isoformat()


def get_json(url: str, timeout: float = 5) -> tuple[int, object]:
    """GET a JSON document; (status, body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


RunningSystem = LocalSystem


def _wait(condition: object, what: str, system: RunningSystem, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert system.process.poll() is None, f"run exited while {what}:\n{system.output()}"
        try:
            if condition():  # type: ignore[operator]
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out {what}:\n{system.output()[-4000:]}")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """The whole system on free ports with a fresh data directory, ready with synced slots."""
    running = start_local_system(tmp_path_factory.mktemp("run"), MAPPINGS)
    try:
        _wait(lambda: get_json(f"{running.web}/readyz")[0] == 200, "waiting for /readyz",
              running, 60)
        # The worker pulls the HIS simulator's slot pool soon after start.
        _wait(lambda: get_json(f"{running.web}/api/v1/slots?department=PED&date="
                               f"{days_ahead(2)}")[1].get("slots"),  # type: ignore[union-attr]
              "waiting for the slot pool", running, 45)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium, headless, from the system."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Phone:
    """A page on a phone-sized screen, and what went wrong in it."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return self.console_errors + self.page_errors


@pytest.fixture
def phone(browser: object) -> Iterator[Phone]:
    """A fresh phone (its own cookies), zh-CN, in the hospital's time zone."""
    context = browser.new_context(**PHONE, locale="zh-CN",  # type: ignore[attr-defined]
                                  timezone_id="Asia/Shanghai")
    context.set_default_timeout(15_000)
    page = context.new_page()
    phone = Phone(page)
    page.on("console", lambda message: message.type == "error" and phone.console_errors.append(
        f"{message.text} at {message.location.get('url', '')}"))
    page.on("pageerror", lambda exc: phone.page_errors.append(str(exc)))
    yield phone
    context.close()


def sign_in_on_page(page: object, system: RunningSystem, user_id: str, query: str = "") -> None:
    """Sign in on the home page through the wallet sandbox's login page, as a patient does."""
    from playwright.sync_api import expect

    page.goto(f"{system.web}/h5/{query}")  # type: ignore[attr-defined]
    page.locator("#login").click()  # type: ignore[attr-defined]
    # the wallet's login page, at the path of Alipay's own
    page.wait_for_url(f"{system.sandbox}/oauth2/publicAppAuthorize.htm**")  # type: ignore[attr-defined]
    page.locator(f"input[name=user_id][value='{user_id}']").check()  # type: ignore[attr-defined]
    page.locator("button[type=submit]").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{system.web}/h5/**")  # type: ignore[attr-defined]
    expect(page.locator("#signed-in")).to_be_visible()  # type: ignore[attr-defined]
    assert "auth_code" not in page.url  # type: ignore[attr-defined] - replaceState dropped it
