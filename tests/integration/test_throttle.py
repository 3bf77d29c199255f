"""Throttles: per client IP and per signed-in account on sign-in, booking, payment and slot
reads, refused notices per IP; 429 with Retry-After in the API's error shape."""

from __future__ import annotations

import datetime as dt
import os
import urllib.parse
import uuid
from dataclasses import replace

import pytest

from adapter import create_app
from adapter.config import Throttles, load_config
from adapter.web.throttle import GUARDED
from tests.fakes import sign_in
from tests.integration.test_notify_alipay import _notice, _signed
from tests.integration.test_notify_alipay import app as notify_app  # noqa: F401 - fixture
from tests.integration.test_registration import (
    _book,
    _patient,
    _slot_ids,
    system,  # noqa: F401 - the fixture
)

REDIS_URL = os.environ.get("ADAPTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
SLOTS = f"/api/v1/slots?department=PED&date={dt.date.today() + dt.timedelta(days=3)}"


def _rebuilt(system, **config):
    """The system's app again, built with other throttle settings."""
    _, runtime = system
    runtime.config = replace(runtime.config, **config)
    return create_app(runtime=runtime), runtime


def _throttled(response, locale: str = "zh-CN") -> None:
    assert response.status_code == 429
    assert response.json["error"] == "throttle.too_many"
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= 60
    if locale == "en":
        assert response.json["message"] == f"Too many requests. Please try again in {seconds} s."
    else:
        assert response.json["message"] == f"操作太频繁，请{seconds}秒后再试。"


def test_an_account_booking_too_often_is_told_to_wait(system):
    app, runtime = _rebuilt(system, throttles=Throttles(booking_per_account="3/minute"))
    client, patient_id, _ = _patient(app, runtime, 1)
    slot_id = _slot_ids(runtime)[0]
    answers = [_book(client, slot_id, patient_id).status_code for _ in range(3)]
    assert answers == [201, 409, 409]  # held, then the slot is full: every try counts
    _throttled(_book(client, slot_id, patient_id))
    english = client.post("/api/v1/bookings?lang=en", json={"slot_id": slot_id,
                                                            "patient_id": patient_id},
                          headers={"Idempotency-Key": str(uuid.uuid4())})
    _throttled(english, "en")
    other, other_patient, _ = _patient(app, runtime, 2)  # the same IP, another account
    assert _book(other, _slot_ids(runtime)[1], other_patient).status_code == 201


def test_slot_reads_are_counted_per_account_and_per_ip(system):
    app, runtime = _rebuilt(system, throttles=Throttles(slots_per_account="2/minute",
                                                        slots_per_ip="5/minute"))
    client, _, _ = _patient(app, runtime, 1)
    assert [client.get(SLOTS).status_code for _ in range(2)] == [200, 200]
    _throttled(client.get(SLOTS))
    # The account's count follows it to another address.
    _throttled(client.get(SLOTS, environ_base={"REMOTE_ADDR": "10.1.2.3"}))
    stranger = app.test_client()  # not signed in: only the per-IP rate applies
    answers = [stranger.get(SLOTS, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code
               for _ in range(6)]
    assert answers == [200] * 5 + [429]


def test_sign_in_is_counted_per_ip(system):
    app, runtime = _rebuilt(system, throttles=Throttles(sign_in_per_ip="2/minute"))
    for n in (1, 2):
        _patient(app, runtime, n)
    runtime.wallet.add_user("code3", user_id="2088000000000003", is_certified=False)
    _throttled(sign_in(app.test_client(), "code3"))


def test_payments_are_counted_per_account(system):
    app, runtime = _rebuilt(system, throttles=Throttles(payment_per_account="2/minute"))
    client, patient_id, _ = _patient(app, runtime, 1)
    held = _book(client, _slot_ids(runtime)[0], patient_id).json["id"]
    for _ in range(2):
        assert client.post("/api/v1/payments", json={"booking_id": held}).status_code == 201
    _throttled(client.post("/api/v1/payments", json={"booking_id": held}))


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(system):
    app, runtime = _rebuilt(system, throttles=Throttles(slots_per_ip="1/minute"),
                            trusted_proxies=1)
    client = app.test_client()
    for n in range(3):  # three patients behind the proxy
        forwarded = {"X-Forwarded-For": f"10.0.0.{n}"}
        assert client.get(SLOTS, headers=forwarded).status_code == 200
    assert client.get(SLOTS, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 429


def test_without_a_trusted_proxy_a_forged_forwarded_address_changes_nothing(system):
    app, _ = _rebuilt(system, throttles=Throttles(slots_per_ip="1/minute"))
    client = app.test_client()
    assert client.get(SLOTS, headers={"X-Forwarded-For": "10.0.0.1"}).status_code == 200
    assert client.get(SLOTS, headers={"X-Forwarded-For": "10.0.0.2"}).status_code == 429


def test_throttles_can_be_switched_off(system):
    _, runtime = system
    runtime.config = replace(load_config({"ADAPTER_THROTTLE": "off"}),
                             data_key_file=runtime.config.data_key_file, secret_key="k",
                             throttles=Throttles(slots_per_ip="1/minute"))
    app = create_app(runtime=runtime)
    assert "adapter_limiter" not in app.extensions
    assert {app.test_client().get(SLOTS).status_code for _ in range(5)} == {200}


def test_every_guarded_endpoint_exists(system):
    app, _ = system
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(GUARDED) <= endpoints and "notify.receive" in endpoints


def test_refused_notices_are_throttled_per_ip_and_genuine_ones_never(notify_app):  # noqa: F811
    runtime = notify_app.extensions["adapter"]
    runtime.config = replace(runtime.config,
                             throttles=Throttles(notify_refused_per_ip="3/minute"))
    app = create_app(runtime=runtime)
    client = app.test_client()

    def post(params, addr="127.0.0.1"):
        return client.post("/notify/alipay", data=urllib.parse.urlencode(params),
                           content_type="application/x-www-form-urlencoded",
                           environ_base={"REMOTE_ADDR": addr})

    genuine = _signed(_notice())
    assert {post(genuine).text for _ in range(5)} == {"success"}  # retries do not count
    forged = {**genuine, "total_amount": "0.01"}
    assert [post(forged).status_code for _ in range(4)] == [400, 400, 400, 429]
    answer = post(forged)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
    assert post(forged, addr="110.75.1.1").status_code == 400  # another IP: its own count


@pytest.fixture
def redis_prefix():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"adapter-test-{uuid.uuid4().hex}"
    yield prefix
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)


def test_instances_sharing_redis_share_the_counts(system, redis_prefix):
    first, runtime = _rebuilt(system, throttle_storage=REDIS_URL,
                              throttle_key_prefix=redis_prefix,
                              throttles=Throttles(slots_per_ip="3/minute"))
    second = create_app(runtime=runtime)  # another web instance
    answers = [app.test_client().get(SLOTS).status_code for app in (first, second, first)]
    assert answers == [200, 200, 200]
    _throttled(second.test_client().get(SLOTS))


def test_a_store_that_is_down_leaves_each_process_counting_for_itself(system):
    app, _ = _rebuilt(system, throttle_storage="redis://127.0.0.1:1/0",
                      throttles=Throttles(slots_per_ip="2/minute"))
    client = app.test_client()
    assert [client.get(SLOTS).status_code for _ in range(3)] == [200, 200, 429]
