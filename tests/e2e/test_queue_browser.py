"""The live queue page on a phone: the position falls as the HIS's queue events arrive over
MLLP, without a reload (the page asks the API again by itself)."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import uuid

import pytest

from adapter.his.header import parse_ack
from adapter.his.mllp_client import MllpClient
from adapter.his.profile import Hl7Profile
from adapter.his.simulator.clinic_wire import build_queue_siu
from adapter.ports import QueueEvent, QueueEventKind
from tests.e2e.conftest import Phone, RunningSystem, days_ahead, get_json, require_browser

require_browser()

from playwright.sync_api import expect  # noqa: E402 - only once the browser is known to exist

from tests.e2e.test_h5_browser import _sign_in  # noqa: E402

pytestmark = pytest.mark.slow

HIS_SIDE = Hl7Profile(sending_application="HIS", sending_facility="DEMO_HOSPITAL",
                      his_application="FHA", his_facility="WALLET")
K = QueueEventKind


def _held_booking(phone: Phone, system: RunningSystem) -> dict:
    """A booking held by the signed-in patient on tomorrow's first open paediatrics slot."""
    request = phone.page.request
    patients = request.get(f"{system.web}/api/v1/patients").json()["patients"]
    slots = [s for s in get_json(f"{system.web}/api/v1/slots?department=PED&date="
                                 f"{days_ahead(1)}")[1]["slots"]  # type: ignore[index]
             if s["status"] == "open"]
    held = request.post(f"{system.web}/api/v1/bookings",
                        data={"slot_id": slots[0]["id"], "patient_id": patients[0]["id"]},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
    assert held.status == 201, held.text()
    return held.json()


class Hall:
    """The HIS's side of one doctor's session: queue events sent as SIU^S14 over MLLP."""

    def __init__(self, system: RunningSystem, booking: dict) -> None:
        self.client = MllpClient("127.0.0.1", system.mllp_port, connect_timeout=5,
                                 ack_timeout=10)
        self.doctor = booking["doctor"]["code"]
        self.start = dt.datetime.fromisoformat(booking["start_at"])
        self.tag = uuid.uuid4().hex[:8]
        self.n = 0

    def tell(self, visit: int, kind: QueueEventKind, placer: str = "") -> None:
        self.n += 1
        event = QueueEvent(f"E{self.tag}{self.n:03d}", self.doctor, self.start.date(), "am",
                           f"V{self.tag}{visit}", kind, dt.datetime.now(dt.UTC), self.n, visit,
                           his_patient_id=f"P{visit:05d}", placer_id=placer, room="205",
                           slot_start=self.start)
        text = build_queue_siu(HIS_SIDE, event, location="MZ-PED", department_code="PED")
        assert parse_ack(self.client.send(text.encode())).code == "AA"


def test_the_position_falls_as_the_his_calls_the_patients_ahead(system, phone):
    page = phone.page
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = next(u for u in users if u["cert_type"] == "0")  # type: ignore[union-attr]
    _sign_in(phone, system, user["user_id"])
    booking = _held_booking(phone, system)
    page.goto(f"{system.web}/h5/bookings/{booking['id']}/queue")
    card = page.locator("#queue-card")
    expect(card).to_have_attribute("data-state", "not_in_queue")

    hall = Hall(system, booking)
    try:
        for visit in (1, 2, 3):  # walk-ins and window registrations, already there
            hall.tell(visit, K.REGISTERED)
            hall.tell(visit, K.ARRIVED)
        hall.tell(4, K.REGISTERED, booking["id"])
        hall.tell(4, K.ARRIVED, booking["id"])
        expect(card).to_have_attribute("data-state", "waiting", timeout=20_000)
        expect(page.locator("#q-ahead")).to_have_text("3", timeout=20_000)
        expect(page.locator("#q-position")).to_have_text("4")
        expect(page.locator("#q-room")).to_have_text("205 诊室")
        expect(page.locator("#q-wait")).to_contain_text("分钟")
        url = page.url
        hall.tell(1, K.CALLED)
        expect(page.locator("#q-ahead")).to_have_text("2", timeout=20_000)
        hall.tell(1, K.FINISHED)
        hall.tell(2, K.CALLED)
        hall.tell(2, K.FINISHED)
        hall.tell(3, K.CALLED)
        expect(page.locator("#q-ahead")).to_have_text("0", timeout=20_000)
        expect(page.locator("#q-position")).to_have_text("1")
        hall.tell(4, K.CALLED, booking["id"])
        expect(card).to_have_attribute("data-state", "called", timeout=20_000)
        expect(page.locator("#q-state")).to_have_text("轮到您了，请到 205 诊室")
        assert page.url == url  # no reload, no navigation: the page followed by itself
    finally:
        hall.client.close()
    favicon = f"status of 404 (NOT FOUND) at {system.sandbox}/favicon.ico"  # the sandbox's
    assert [e for e in phone.errors if favicon not in e] == []


def test_on_site_the_qr_code_checks_the_patient_in_and_the_hall_plays_the_queue(system, phone):
    """The kiosk's code (hospital-adapter check-in-code), scanned: today's confirmed booking
    opens with the token, one tap checks in, the simulator's hall calls the line."""
    page = phone.page
    _, users = get_json(f"{system.sandbox}/_sandbox/users")
    user = [u for u in users if u["cert_type"] == "0"][-1]  # type: ignore[index]
    _sign_in(phone, system, user["user_id"])
    request = phone.page.request
    patient = request.get(f"{system.web}/api/v1/patients").json()["patients"][0]
    # The simulator opens a slot about 20 minutes after it starts: before midnight that can be
    # tomorrow's date in the hospital's zone.
    listed = [s for day in (days_ahead(0), days_ahead(1)) for s in get_json(
        f"{system.web}/api/v1/slots?department=PED&date={day}")[1]["slots"]]  # type: ignore[index]
    soon = sorted((s for s in listed if s["status"] == "open" and s["remaining"]
                   and dt.datetime.fromisoformat(s["start_at"]) - dt.datetime.now(dt.UTC)
                   < dt.timedelta(minutes=55) and dt.datetime.fromisoformat(s["start_at"])
                   > dt.datetime.now(dt.UTC)), key=lambda s: s["start_at"])
    held = request.post(f"{system.web}/api/v1/bookings",
                        data={"slot_id": soon[-1]["id"], "patient_id": patient["id"]},
                        headers={"Idempotency-Key": str(uuid.uuid4())}).json()
    payment = request.post(f"{system.web}/api/v1/payments", data={"booking_id": held["id"]})
    cashier = payment.json()["cashier_url"].split("?")[0]
    assert request.post(cashier, form={"return_url": ""}).ok  # paid at the sandbox
    status = page.locator("#status-card")
    page.goto(f"{system.web}/h5/bookings/{held['id']}")
    expect(status).to_have_attribute("data-status", "confirmed", timeout=30_000)

    code = subprocess.run(
        [sys.executable, "-m", "adapter.cli", "check-in-code"], capture_output=True, text=True,
        env={**os.environ, "ADAPTER_DATA_DIR": str(system.folder),
             "ADAPTER_WEB_LISTEN": system.web.removeprefix("http://")}, check=True,
        cwd=system.folder).stdout.strip()
    assert code.startswith(f"{system.web}/h5/check-in?token=")
    page.goto(code)
    page.wait_for_url(re.compile(rf".*/h5/bookings/{held['id']}/queue\?token=.+"))
    page.get_by_role("button", name="签到").click()
    expect(page.locator("#notice")).to_have_text("已签到")
    card = page.locator("#queue-card")
    expect(card).to_have_attribute("data-state", "waiting", timeout=20_000)
    expect(page.locator("#check-in")).to_be_hidden()
    # The simulator's hall calls and finishes consults on its own clock: on a loaded machine
    # the call may come and go between two of the page's updates (the test above holds the
    # hall's hand and sees "called" itself); here the hall reaching the patient is what counts.
    expect(card).to_have_attribute("data-state", re.compile(r"^(called|finished)$"),
                                   timeout=60_000)
