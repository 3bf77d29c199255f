from pathlib import Path

import pytest

from adapter.config import Address, ConfigError, load_config


def test_defaults_are_the_embedded_setup():
    config = load_config({})
    assert config.web_listen == Address("127.0.0.1", 8000)
    assert config.mllp_listen == Address("127.0.0.1", 2575)
    assert config.effective_database_url.startswith("sqlite:///")
    assert config.tz.key == "Asia/Shanghai"


def test_variables_are_read_by_name():
    config = load_config(
        {
            "ADAPTER_DATABASE_URL": "postgresql+psycopg://u@db/x",
            "ADAPTER_MLLP_LISTEN": "0.0.0.0:3000",
            "ADAPTER_HIS_MLLP": "[::1]:4000",
            "ADAPTER_HIS_ACK_TIMEOUT": "12.5",
            "ADAPTER_MAPPINGS_DIR": "/etc/adapter/mappings",
        }
    )
    assert config.mllp_listen == Address("0.0.0.0", 3000)
    assert config.his_mllp == Address("::1", 4000)
    assert config.his_ack_timeout == 12.5
    assert config.mappings_dir == Path("/etc/adapter/mappings")
    assert config.effective_database_url == "postgresql+psycopg://u@db/x"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"ADAPTER_MLLP_LISTEN": "2575"}, "ADAPTER_MLLP_LISTEN"),
        ({"ADAPTER_WEB_LISTEN": "host:99999"}, "ADAPTER_WEB_LISTEN"),
        ({"ADAPTER_HIS_ACK_TIMEOUT": "soon"}, "ADAPTER_HIS_ACK_TIMEOUT"),
        ({"ADAPTER_HIS_ACK_TIMEOUT": "0"}, "ADAPTER_HIS_ACK_TIMEOUT"),
        ({"ADAPTER_TIMEZONE": "Mars/Olympus"}, "ADAPTER_TIMEZONE"),
        ({"ADAPTER_DATABASE_URL": "mysql://x"}, "ADAPTER_DATABASE_URL"),
        ({"ADAPTER_ENV": "staging"}, "ADAPTER_ENV"),
        ({"ADAPTER_MLLP_LISTEN": "127.0.0.1:2576"}, "ADAPTER_HIS_MLLP"),
        ({"ADAPTER_ENV": "production"}, "ADAPTER_DATABASE_URL"),
        (
            {"ADAPTER_ENV": "production", "ADAPTER_DATABASE_URL": "postgresql://db/x"},
            "ADAPTER_SECRET_KEY",
        ),
        (
            {"ADAPTER_ENV": "production", "ADAPTER_DATABASE_URL": "postgresql://db/x",
             "ADAPTER_SECRET_KEY": "s"},
            "ADAPTER_DATA_KEY_FILE",
        ),
        ({"ADAPTER_ALIPAY_GATEWAY": "gateway.do"}, "ADAPTER_ALIPAY_GATEWAY"),
        ({"ADAPTER_SECRET_KEY_FILE": "/nonexistent/secret"}, "ADAPTER_SECRET_KEY_FILE"),
    ],
)
def test_bad_configuration_fails_fast_naming_the_variable(env, names):
    with pytest.raises(ConfigError, match=names):
        load_config(env)


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    config = load_config({"ADAPTER_SECRET_KEY_FILE": str(secret)})
    assert config.secret_key == "s3cret"


def test_production_needs_https_public_url(tmp_path):
    env = {
        "ADAPTER_ENV": "production", "ADAPTER_DATABASE_URL": "postgresql://db/x",
        "ADAPTER_SECRET_KEY": "s", "ADAPTER_DATA_KEY_FILE": "/k",
        "ADAPTER_ALIPAY_SELLER_ID": "2088", "ADAPTER_ALIPAY_MESSAGE_TEMPLATE_ID": "T1",
        "ADAPTER_ALIPAY_APP_PRIVATE_KEY_FILE": "/a", "ADAPTER_ALIPAY_PUBLIC_KEY_FILE": "/p",
        "ADAPTER_PUBLIC_URL": "http://hospital.example.cn",
    }
    with pytest.raises(ConfigError, match="https"):
        load_config(env)
    env["ADAPTER_PUBLIC_URL"] = "https://hospital.example.cn"
    assert load_config(env).effective_public_url == "https://hospital.example.cn"
    env["ADAPTER_NOTIFY_BASE_URL"] = "http://notify.hospital.example.cn"
    with pytest.raises(ConfigError, match="ADAPTER_NOTIFY_BASE_URL must be https"):
        load_config(env)


def test_notifications_go_to_the_notify_base_url_when_one_is_set():
    config = load_config({"ADAPTER_PUBLIC_URL": "https://hospital.example.cn"})
    assert config.alipay.notify_url == "https://hospital.example.cn/notify/alipay"
    config = load_config({"ADAPTER_PUBLIC_URL": "https://hospital.example.cn",
                          "ADAPTER_NOTIFY_BASE_URL": "https://notify.hospital.example.cn/"})
    assert config.alipay.notify_url == "https://notify.hospital.example.cn/notify/alipay"
    assert config.wechatpay_notify_url == "https://notify.hospital.example.cn/notify/wechatpay"


def test_session_timeouts_are_read_by_name_and_checked():
    config = load_config({"ADAPTER_SESSION_IDLE_MINUTES": "15", "ADAPTER_SESSION_MAX_HOURS": "8"})
    assert (config.session_idle_minutes, config.session_max_hours) == (15, 8)
    assert (load_config({}).session_idle_minutes, load_config({}).session_max_hours) == (30, 12)
    with pytest.raises(ConfigError, match="ADAPTER_SESSION_IDLE_MINUTES"):
        load_config({"ADAPTER_SESSION_IDLE_MINUTES": "0"})
    with pytest.raises(ConfigError, match="longer than ADAPTER_SESSION_MAX_HOURS"):
        load_config({"ADAPTER_SESSION_IDLE_MINUTES": "120", "ADAPTER_SESSION_MAX_HOURS": "1"})


def test_allowed_origins_must_be_origins():
    with pytest.raises(ConfigError, match="ADAPTER_ALLOWED_ORIGINS"):
        load_config({"ADAPTER_ALLOWED_ORIGINS": "https://a.example/h5"})
    assert load_config({"ADAPTER_PUBLIC_URL": "https://H.example/base/"}).public_origin == \
        "https://h.example"
def test_throttles_are_on_with_rates_a_patient_never_reaches():
    config = load_config({})
    assert config.throttle and config.throttle_storage == "memory://"
    assert config.throttles.booking_per_account == "10/minute;30/hour"
    assert config.trusted_proxies == 0


def test_throttle_variables_are_read_by_name():
    config = load_config({
        "ADAPTER_THROTTLE": "off",
        "ADAPTER_THROTTLE_STORAGE": "redis://10.0.0.5:6379/2",
        "ADAPTER_THROTTLE_BOOKING_PER_ACCOUNT": "5/minute;20/hour",
        "ADAPTER_THROTTLE_NOTIFY_REFUSED_PER_IP": "30/minute",
        "ADAPTER_TRUSTED_PROXIES": "1",
        "ADAPTER_NOTIFY_MAX_BYTES": "32768",
        "ADAPTER_NOTIFY_REFUSED_KEPT": "50",
    })
    assert not config.throttle and config.throttle_storage.startswith("redis://")
    assert config.throttles.booking_per_account == "5/minute;20/hour"
    assert config.throttles.notify_refused_per_ip == "30/minute"
    assert config.throttles.slots_per_ip == "600/minute"  # the others keep their defaults
    assert (config.trusted_proxies, config.notify_max_bytes, config.notify_refused_kept) == (
        1, 32768, 50)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"ADAPTER_THROTTLE": "maybe"}, "ADAPTER_THROTTLE"),
        ({"ADAPTER_THROTTLE_SLOTS_PER_IP": "lots"}, "ADAPTER_THROTTLE_SLOTS_PER_IP"),
        ({"ADAPTER_THROTTLE_STORAGE": "mysql://db/x"}, "ADAPTER_THROTTLE_STORAGE"),
        ({"ADAPTER_TRUSTED_PROXIES": "nginx"}, "ADAPTER_TRUSTED_PROXIES"),
        ({"ADAPTER_NOTIFY_MAX_BYTES": "0"}, "ADAPTER_NOTIFY_MAX_BYTES"),
        ({"ADAPTER_NOTIFY_REFUSED_KEPT": "-1"}, "ADAPTER_NOTIFY_REFUSED_KEPT"),
    ],
)
def test_bad_throttle_settings_fail_fast_naming_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        load_config(env)


@pytest.mark.parametrize(("raw", "expected"), [
    ("", "10:00"), ("10:00", "10:00"), ("9:30", "09:30"), ("23:59", "23:59"), ("off", None),
    ("OFF", None)])
def test_reconcile_at_is_a_time_of_day_or_off(raw, expected):
    value = load_config({"ADAPTER_RECONCILE_AT": raw}).reconcile_at
    assert (value.strftime("%H:%M") if value else None) == expected


@pytest.mark.parametrize("raw", ["25:00", "10", "10:0", "ten", "10:00:00", "-1:30"])
def test_a_bad_reconcile_at_names_the_variable(raw):
    with pytest.raises(ConfigError, match="ADAPTER_RECONCILE_AT"):
        load_config({"ADAPTER_RECONCILE_AT": raw})


WECHATPAY = {
    "ADAPTER_WECHATPAY_MCHID": "1900000109",
    "ADAPTER_WECHATPAY_APPID": "wxd678efh567hg6787",
    "ADAPTER_WECHATPAY_PRIVATE_KEY_FILE": "/etc/hospital-adapter/wechatpay_apiclient_key.pem",
    "ADAPTER_WECHATPAY_CERT_SERIAL": "5157f09efdc096de15ebe81a47057a7232f1b8e1",
    "ADAPTER_WECHATPAY_APIV3_KEY_FILE": "/etc/hospital-adapter/wechatpay_apiv3.key",
    "ADAPTER_WECHATPAY_APP_SECRET_FILE": "/etc/hospital-adapter/wechatpay_app_secret",
    "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": "/etc/hospital-adapter/wechatpay_pub_key.pem",
    "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID": "PUB_KEY_ID_0119000000002024112700000000000001",
}


def test_wechat_pay_is_off_unless_its_merchant_number_is_set():
    assert load_config({}).wechatpay is None
    with pytest.raises(ConfigError, match="ADAPTER_WECHATPAY_APPID is set but"):
        load_config({"ADAPTER_WECHATPAY_APPID": "wx1"})


def test_wechat_pay_section_is_read_with_derived_pages():
    section = load_config(WECHATPAY).wechatpay
    assert (section.mchid, section.cert_serial_no) == (
        "1900000109", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
    assert not section.platform_certificates and not section.is_imitation
    assert section.sign_in_page == "https://open.weixin.qq.com/connect/oauth2/authorize"
    assert (section.official_api, section.cashier_page) == ("https://api.weixin.qq.com", "")
    sandbox = load_config({**WECHATPAY, "ADAPTER_WECHATPAY_API_URL": "http://127.0.0.1:8910",
                           "ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES": "on"}).wechatpay
    assert sandbox.platform_certificates and sandbox.is_imitation
    assert sandbox.sign_in_page == "http://127.0.0.1:8910/connect/oauth2/authorize"
    assert sandbox.cashier_page == "http://127.0.0.1:8910/sandbox/cashier"


@pytest.mark.parametrize(("change", "variable"), [
    ({"ADAPTER_WECHATPAY_CERT_SERIAL": ""}, "ADAPTER_WECHATPAY_CERT_SERIAL"),
    ({"ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID": ""}, "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID"),
    ({"ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID": "abc"}, "PUB_KEY_ID_"),
    ({"ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_ID": "", "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE":
      ""}, "ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES"),
    ({"ADAPTER_WECHATPAY_PLATFORM_CERTIFICATES": "maybe"}, "on or off"),
    ({"ADAPTER_WECHATPAY_API_URL": "api.mch.weixin.qq.com"}, "ADAPTER_WECHATPAY_API_URL"),
])
def test_bad_wechat_pay_configuration_fails_naming_the_variable(change, variable):
    with pytest.raises(ConfigError, match=variable):
        load_config({**WECHATPAY, **change})


def test_wechat_pay_key_files_are_checked(tmp_path):
    from adapter.wallet.wechatpay.config import key_file_problems
    from tests import wechatpay_kit as kit

    files = {"key.pem": kit.private_pem(kit.MERCHANT_KEY), "apiv3.key": "short\n",
             "secret": "s3cret\n", "pub.pem": kit.public_pem(kit.PLATFORM_KEY)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    section = load_config({**WECHATPAY,
                           "ADAPTER_WECHATPAY_PRIVATE_KEY_FILE": str(tmp_path / "key.pem"),
                           "ADAPTER_WECHATPAY_APIV3_KEY_FILE": str(tmp_path / "apiv3.key"),
                           "ADAPTER_WECHATPAY_APP_SECRET_FILE": str(tmp_path / "secret"),
                           "ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE": str(tmp_path / "none"),
                           }).wechatpay
    problems = key_file_problems(section)
    assert len(problems) == 2
    assert problems[0].startswith("ADAPTER_WECHATPAY_APIV3_KEY_FILE") and "32 bytes" in problems[0]
    assert problems[1].startswith("ADAPTER_WECHATPAY_PLATFORM_PUBLIC_KEY_FILE")


def test_development_defaults_to_the_wechat_pay_sandbox_which_run_starts(tmp_path):
    from adapter.devkeys import ensure_development_keys

    config = load_config({"ADAPTER_DATA_DIR": str(tmp_path),
                          "ADAPTER_WECHATPAY_API_URL": "http://127.0.0.1:8911",
                          "ADAPTER_WECHATPAY_SANDBOX_BILLS_TODAY": "1"})  # the sandbox's own
    assert config.wechatpay is None and config.wechatpay_sandbox == "http://127.0.0.1:8911"
    assert config.effective_wallets == ("alipay",)  # until its keys are made
    ready = ensure_development_keys(config)
    section = ready.wechatpay
    assert section.api_url == "http://127.0.0.1:8911" and section.is_imitation
    assert ready.effective_wallets == ("alipay", "wechatpay")
    assert section.private_key_file.exists() and len(section.apiv3_key_file.read_text()) == 32
    assert (section.private_key_file.stat().st_mode & 0o777) == 0o600
    assert ensure_development_keys(config).wechatpay == section  # made once, then reused
    assert load_config({"ADAPTER_WECHATPAY": "off"}).wechatpay_sandbox == ""
    with pytest.raises(ConfigError, match="ADAPTER_WECHATPAY=off contradicts"):
        load_config({"ADAPTER_WECHATPAY": "off", "ADAPTER_WECHATPAY_MCHID": "1900000001"})


def test_production_has_no_wechat_pay_unless_a_merchant_is_given():
    with pytest.raises(ConfigError, match="ADAPTER_WECHATPAY_API_URL is set but"):
        load_config({"ADAPTER_ENV": "production",
                     "ADAPTER_WECHATPAY_API_URL": "https://api.mch.weixin.qq.com"})


@pytest.mark.parametrize(("wallets", "problem"), [
    ("alipay,alipay", "once each"), ("paypal", "alipay and/or wechatpay"),
    ("wechatpay", None), ("wechatpay,alipay", None)])
def test_the_wallets_offered_are_named_in_order(wallets, problem):
    if problem:
        with pytest.raises(ConfigError, match=problem):
            load_config({"ADAPTER_WALLETS": wallets})
    else:
        assert load_config({"ADAPTER_WALLETS": wallets}).effective_wallets == tuple(
            wallets.split(","))
    with pytest.raises(ConfigError, match="set ADAPTER_WECHATPAY_MCHID"):
        load_config({"ADAPTER_WALLETS": "wechatpay", "ADAPTER_WECHATPAY": "off"})
