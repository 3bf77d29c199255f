"""Check-in on the visit day: the window, the geofence, the QR token, and the HIS told once."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from adapter.queueing.check_in import (
    CheckInMethod,
    CheckInTokens,
    Location,
    check_in,
    distance_m,
)
from adapter.refusals import Refusal
from tests.unit.conftest import VISIT

# The hospital's centre, and points about 300 m and 2 km from it (0.001 degree of latitude is
# about 111 m).
CENTRE = (31.2165, 121.4575)
NEAR = Location(31.2165 + 0.0027, 121.4575, accuracy_m=30)
FAR = Location(31.2165 + 0.018, 121.4575, accuracy_m=30)


@pytest.fixture
def fenced(hospital):
    hospital.runtime.config = replace(hospital.runtime.config, hospital_latitude=CENTRE[0],
                                      hospital_longitude=CENTRE[1], geofence_radius_m=500)
    return hospital


def _confirmed_at(hospital, before_start: dt.timedelta):
    """A confirmed booking (its slot at VISIT), the clock moved to ``before_start`` ahead."""
    account_id, public_id, _ = hospital.confirmed()
    hospital.clock.set(VISIT - before_start)
    return account_id, public_id


def _check_in(hospital, account_id, public_id, *, location=None, token=None):
    return check_in(hospital.runtime, account_id, public_id, location=location, token=token,
                    now=hospital.clock.now())


def _refusal(call) -> str:
    with pytest.raises(Refusal) as caught:
        call()
    return caught.value.code


def test_haversine_distance_matches_a_known_degree_of_latitude():
    assert distance_m((0.0, 0.0), (1.0, 0.0)) == pytest.approx(111_195, rel=1e-3)
    assert distance_m(CENTRE, (NEAR.latitude, NEAR.longitude)) == pytest.approx(300, rel=0.01)


def test_remote_check_in_inside_the_fence_tells_the_his_once(fenced):
    account_id, public_id = _confirmed_at(fenced, dt.timedelta(minutes=30))
    done = _check_in(fenced, account_id, public_id, location=NEAR)
    assert done.new and done.method is CheckInMethod.REMOTE
    again = _check_in(fenced, account_id, public_id, location=FAR)  # already in: idempotent
    assert not again.new and again.checked_in_at == done.checked_in_at
    assert len(fenced.outbox("his_arrive")) == 1
    fenced.deliver()
    [arrival] = fenced.his.arrivals
    booking = fenced.booking(public_id)
    assert arrival.placer_appointment_id == public_id
    assert arrival.filler_appointment_id == booking.filler_appointment_id
    assert arrival.location == fenced.runtime.mappings.departments["PED"].location
    assert arrival.arrived_at == done.checked_in_at
    assert fenced.outbox("his_arrive", "done")


def test_a_check_in_outside_the_fence_is_refused_and_nothing_is_sent(fenced):
    account_id, public_id = _confirmed_at(fenced, dt.timedelta(minutes=30))
    assert _refusal(lambda: _check_in(fenced, account_id, public_id, location=FAR)) == \
        "check_in.outside_fence"
    vague = replace(NEAR, accuracy_m=3000)  # a fix wider than the fence proves nothing
    assert _refusal(lambda: _check_in(fenced, account_id, public_id, location=vague)) == \
        "check_in.outside_fence"
    assert fenced.outbox("his_arrive") == []


def test_the_window_opens_before_the_slot_and_closes_after_its_start(fenced):
    account_id, public_id = _confirmed_at(fenced, dt.timedelta(minutes=61))
    assert _refusal(lambda: _check_in(fenced, account_id, public_id, location=NEAR)) == \
        "check_in.too_early"
    fenced.clock.set(VISIT + dt.timedelta(minutes=16))
    assert _refusal(lambda: _check_in(fenced, account_id, public_id, location=NEAR)) == \
        "check_in.too_late"
    fenced.clock.set(VISIT + dt.timedelta(minutes=15))
    assert _check_in(fenced, account_id, public_id, location=NEAR).new


def test_a_refusal_names_its_reason_in_both_languages(fenced):
    account_id, public_id = _confirmed_at(fenced, dt.timedelta(hours=3))
    with pytest.raises(Refusal) as caught:
        _check_in(fenced, account_id, public_id, location=NEAR)
    assert "08:00" in caught.value.message("zh-CN")
    assert "08:00" in caught.value.message("en")
    assert caught.value.message("en") != caught.value.message("zh-CN")


def test_on_site_check_in_with_a_fresh_qr_token(hospital):
    account_id, public_id = _confirmed_at(hospital, dt.timedelta(minutes=10))
    token = CheckInTokens(hospital.runtime.config.secret_key).issue(
        hospital.clock.now() - dt.timedelta(minutes=9))
    done = _check_in(hospital, account_id, public_id, token=token)
    assert done.new and done.method is CheckInMethod.QR


def test_an_expired_forged_or_foreign_qr_token_is_refused(hospital):
    account_id, public_id = _confirmed_at(hospital, dt.timedelta(minutes=10))
    now = hospital.clock.now()
    tokens = CheckInTokens(hospital.runtime.config.secret_key)
    expired = tokens.issue(now - dt.timedelta(minutes=11))
    assert _refusal(lambda: _check_in(hospital, account_id, public_id, token=expired)) == \
        "check_in.token_expired"
    foreign = CheckInTokens("another hospital").issue(now)
    tampered = tokens.issue(now)[:-2] + "xx"
    future = tokens.issue(now + dt.timedelta(hours=1))
    for bad in (foreign, tampered, "not-a-token", future):
        assert _refusal(lambda bad=bad: _check_in(hospital, account_id, public_id,
                                                  token=bad)) == "check_in.bad_token"
    assert hospital.outbox("his_arrive") == []


def test_remote_check_in_needs_a_fence_and_some_proof(hospital):
    account_id, public_id = _confirmed_at(hospital, dt.timedelta(minutes=10))
    assert _refusal(lambda: _check_in(hospital, account_id, public_id, location=NEAR)) == \
        "check_in.remote_unavailable"
    assert _refusal(lambda: _check_in(hospital, account_id, public_id)) == "check_in.no_proof"


def test_a_booking_not_paid_and_confirmed_cannot_check_in(fenced):
    account_id, patient_id = fenced.patient(2)
    public_id = fenced.hold(account_id, patient_id, fenced.slot())
    fenced.clock.set(VISIT)
    assert _refusal(lambda: _check_in(fenced, account_id, public_id, location=NEAR)) == \
        "check_in.not_confirmed"


def test_someone_elses_booking_is_unknown(fenced):
    _account, public_id = _confirmed_at(fenced, dt.timedelta(minutes=10))
    other, _patient = fenced.patient(3)
    assert _refusal(lambda: _check_in(fenced, other, public_id, location=NEAR)) == \
        "booking.unknown"
