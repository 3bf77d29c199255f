"""The patient pages (/h5/): rendered in zh-CN and en, fully translated, their scripts and
styles served, and nothing secret or personal in them."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from adapter import create_app, migrate
from adapter.config import load_config
from adapter.db import make_engine, make_session_factory
from adapter.his.profile import Hl7Profile
from adapter.identity.sessions import key_id, start_session
from adapter.mappings import load_mappings
from adapter.models import WalletAccount
from adapter.runtime import Runtime
from adapter.web.api.errors import SESSION_FIELD
from tests.conftest import MAPPINGS, REPO
from tests.fakes import FakeWallet

PAGES = {  # path: a text only that page has, zh-CN and en
    "/h5/": ("用测试钱包登录", "Sign in with Fake Wallet"),  # the wallet signing in, by name
    "/h5/book": ("确认预约并支付", "Book and pay"),
    "/h5/bookings": ("我的预约", "My bookings"),
    "/h5/bookings/B2611280CD3EC94557C": ("取消预约", "Cancel booking"),
    "/h5/patients": ("我是该儿童的监护人，同意医院为就诊处理其个人信息",
                     "I am this child's guardian"),
}
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
STATIC = REPO / "adapter" / "static" / "h5"
TRANSLATIONS = REPO / "adapter" / "translations"
SECRET_KEY = "h5-test-secret-key-value"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    directory = tmp_path_factory.mktemp("h5")
    engine = make_engine(f"sqlite:///{directory / 'h5.db'}")
    migrate.upgrade(engine)
    config = replace(load_config({}), secret_key=SECRET_KEY)
    runtime = Runtime(config, engine, make_session_factory(engine), load_mappings(MAPPINGS),
                      Hl7Profile())
    runtime.wallet = FakeWallet()  # the pages name the wallet signing in
    return create_app(runtime=runtime)


@pytest.fixture
def client(app):
    """A signed-in browser (the pages other than /h5/ send a stranger there first)."""
    runtime = app.extensions["adapter"]
    with runtime.session_factory.begin() as db:
        account = WalletAccount(platform="fake", user_id=secrets.token_hex(8))
        db.add(account)
        db.flush()
        token = start_session(db, account.id, key=key_id(SECRET_KEY), now=runtime.clock.now())
    client = app.test_client()
    with client.session_transaction() as session:
        session[SESSION_FIELD] = token
    return client


class _Page(HTMLParser):
    """What the checks need from a page: its text, links, scripts, labels and blobs."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.hrefs: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.blobs: dict[str, object] = {}
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.attribute_text: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])  # type: ignore[arg-type]
        for name in ("aria-label", "title", "placeholder"):
            if attributes.get(name):
                self.attribute_text.append(attributes[name])  # type: ignore[arg-type]
        if tag == "a" and attributes.get("href"):
            self.hrefs.append(attributes["href"])  # type: ignore[arg-type]
        if tag == "label" and attributes.get("for"):
            self.label_for.add(attributes["for"])  # type: ignore[arg-type]
        if tag in ("input", "select", "textarea"):
            self.controls.append(attributes)
        if tag == "script":
            self._script = attributes
            self.scripts.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            if self._script.get("type") == "application/json" and data.strip():
                self.blobs[self._script["id"]] = json.loads(data)  # type: ignore[index]
            return
        self.text.append(data)


def _get(client, path: str, **kwargs) -> tuple[object, _Page]:
    response = client.get(path, **kwargs)
    assert response.status_code == 200, (path, response.status_code)
    assert response.mimetype == "text/html"
    return response, _Page(response.get_data(as_text=True))


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_chinese_by_default(client, path):
    response, page = _get(client, path)
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert PAGES[path][0] in html
    assert page.blobs["h5-config"]["lang"] == "zh-CN"
    assert page.blobs["h5-strings"]["status_confirmed"] == "预约成功"
    assert "English" in page.text  # the switch to English


@pytest.mark.parametrize("path", PAGES)
def test_english_pages_have_no_untranslated_text(client, path):
    response, page = _get(client, path, query_string={"lang": "en"})
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html and PAGES[path][1] in html
    # Every Chinese msgid has an English translation: no CJK text anywhere a patient reads it,
    # but the link back to Chinese, which is in Chinese on purpose.
    shown = " ".join(page.text + page.attribute_text).replace("中文", "")
    assert not CJK.findall(shown), CJK.findall(shown)
    strings = page.blobs["h5-strings"]
    assert not [k for k, v in strings.items() if CJK.search(v)]
    assert page.blobs["h5-config"]["lang"] == "en"


def test_english_is_chosen_by_the_cookie_then_accept_language(client):
    response, _ = _get(client, "/h5/", query_string={"lang": "en"})
    assert "h5_lang=en" in response.headers["Set-Cookie"]
    response, page = _get(client, "/h5/patients")  # the cookie remembers ?lang=en
    assert page.blobs["h5-config"]["lang"] == "en"
    fresh = client.application.test_client()
    _, page = _get(fresh, "/h5/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert page.blobs["h5-config"]["lang"] == "en"
    _, page = _get(fresh, "/h5/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert page.blobs["h5-config"]["lang"] == "zh-CN"
    _, page = _get(fresh, "/h5/", headers={"Accept-Language": "fr-FR"})
    assert page.blobs["h5-config"]["lang"] == "zh-CN"


def test_lang_is_kept_on_links_and_the_switch_goes_to_the_other_language(client):
    _, page = _get(client, "/h5/", query_string={"lang": "en"})
    internal = [h for h in page.hrefs if h.startswith("/h5/")]
    assert len(internal) >= 4
    switch, *others = sorted(internal, key=lambda h: "lang=zh-CN" not in h)
    assert switch == "/h5/?lang=zh-CN"
    assert all("lang=en" in h for h in others), others
    assert page.blobs["h5-config"]["lang_param"] == "en"


def test_a_stranger_is_sent_to_sign_in_keeping_the_language(app):
    stranger = app.test_client()
    response = stranger.get("/h5/bookings", query_string={"lang": "en"})
    assert response.status_code == 302 and response.location.endswith("/h5/?lang=en")
    _, page = _get(stranger, "/h5/")
    assert page.blobs["h5-config"]["signed_in"] is False


def test_document_types_come_from_the_mappings_in_the_page_language(client):
    _, zh = _get(client, "/h5/patients")
    _, en = _get(client, "/h5/patients", query_string={"lang": "en"})
    for page, name in ((zh, "居民身份证"), (en, "Resident identity card")):
        assert name in page.text
    codes = {"RESIDENT_ID", "PASSPORT", "HK_MACAO_TRAVEL_PERMIT", "TAIWAN_TRAVEL_PERMIT",
             "HMT_RESIDENCE_PERMIT", "FOREIGN_PERMANENT_RESIDENT"}
    html = client.get("/h5/patients").get_data(as_text=True)
    assert all(f'value="{code}"' in html for code in codes)


@pytest.mark.parametrize("path", PAGES)
def test_every_form_control_has_a_label(client, path):
    _, page = _get(client, path)
    for control in page.controls:
        if control.get("type") == "hidden":
            continue
        assert control.get("id") in page.label_for or control.get("aria-label"), control


@pytest.mark.parametrize("path", PAGES)
def test_scripts_and_styles_are_served_and_pages_hold_no_secrets(client, app, path):
    response, page = _get(client, path)
    html = response.get_data(as_text=True)
    # Only external scripts and JSON data: nothing inline to run, and a policy that says so.
    for script in page.scripts:
        assert script.get("src") or script.get("type") == "application/json", script
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    for url in [s["src"] for s in page.scripts if s.get("src")] + ["/static/h5/h5.css"]:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.mimetype in ("text/javascript", "application/javascript", "text/css")
        asset.close()
    assert set(page.blobs["h5-config"]) <= {"page", "lang", "lang_param", "api", "h5", "platform",
                                            "timezone", "signed_in", "booking_id"}
    runtime = app.extensions["adapter"]
    for secret in (SECRET_KEY, "PRIVATE KEY", runtime.config.alipay_app_id):
        assert secret not in html
    assert not re.search(r"\d{17}[\dXx]", html)  # no resident ID number


def test_the_booking_id_in_the_url_cannot_inject_markup(client):
    response = client.get("/h5/bookings/%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html and "</script><script>" not in html


def test_every_module_a_page_imports_exists_and_every_string_it_asks_for_is_given(client):
    _, page = _get(client, "/h5/")
    strings = set(page.blobs["h5-strings"])
    for script in STATIC.glob("*.js"):
        source = script.read_text(encoding="utf-8")
        for module in re.findall(r'from "\./([\w-]+\.js)"', source):
            assert (STATIC / module).is_file(), (script.name, module)
        for key in re.findall(r'\bt\("(\w+)"', source):
            assert key in strings, (script.name, key)
    for name in ("index", "book", "bookings", "booking", "patients"):
        assert (STATIC / f"{name}.js").is_file()


def test_catalogs_are_complete_compiled_and_match_the_sources():
    """Every message in the templates and the code (pages, refusal texts, API words marked N_)
    is in messages.pot, translated in en, and the committed .mo files say what the .po files
    say."""
    method_map = [("adapter/**.py", "python"), ("adapter/templates/h5/**.html", "jinja2"),
                  ("adapter/templates/admin/**.html", "jinja2")]
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    extracted = {(context, message if isinstance(message, str) else message[0])
                 for _, _, message, _, context in extract_from_dir(REPO, method_map,
                                                                   keywords=keywords)}
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = {(m.context, m.id) for m in read_po(f) if m.id}
    assert extracted == template, "run pybabel extract/update (see adapter/web/h5.py)"
    for locale in ("en", "zh_CN"):
        folder = TRANSLATIONS / locale / "LC_MESSAGES"
        with (folder / "messages.po").open("rb") as f:
            catalog = read_po(f, locale=locale)
        translated = {(m.context, m.id): m.string for m in catalog if m.id}
        assert set(translated) == template, locale
        assert all(translated.values()), [k for k, v in translated.items() if not v]
        assert not [m.id for m in catalog if m.id and m.fuzzy], locale
        with (folder / "messages.mo").open("rb") as f:
            # read_mo leaves a message context as bytes
            compiled = {(m.context.decode() if isinstance(m.context, bytes) else m.context, m.id):
                        m.string for m in read_mo(f) if m.id}
        assert compiled == translated, "run pybabel compile -d adapter/translations"
        if locale == "en":
            assert not [v for v in translated.values() if CJK.search(v)]


def test_a_page_knows_the_wallet_it_was_opened_from(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'h5.db'}")
    migrate.upgrade(engine)
    runtime = Runtime(replace(load_config({}), secret_key=SECRET_KEY), engine,
                      make_session_factory(engine), load_mappings(MAPPINGS), Hl7Profile())
    second = FakeWallet("second")
    second.browser_marker = "MicroMessenger"
    runtime.wallets = {"fake": FakeWallet(), "second": second}
    client = create_app(runtime=runtime).test_client()

    def platform(path: str, agent: str = "Mozilla/5.0") -> str:
        page = client.get(path, headers={"User-Agent": agent}).get_data(as_text=True)
        blob = re.search(r'id="h5-config">(.*?)</script>', page).group(1)
        return json.loads(blob)["platform"]

    assert platform("/h5/") == ""  # the default wallet signs in
    assert platform("/h5/?platform=second") == "second"  # the link in the wallet's menu
    assert platform("/h5/", "Mozilla/5.0 MicroMessenger/8.0.50") == "second"  # its browser
    assert platform("/h5/?platform=nowhere") == ""  # a wallet not offered is ignored
