"""The demo's steps that are the same in every wallet: a visit today (book the slot that starts
soon, check in inside the geofence, follow the queue to the call), paying the consultation's bill,
and reading the day's results (adapter/demo.py runs them, once through the default wallet)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zoneinfo
from collections.abc import Callable
from typing import Any

from adapter.demo_kit import DEMO_CENTRE, TIMEOUT
from adapter.demo_kit import wait as _wait


class VisitSteps:
    """Mixed into the scripted patient: ``api``, ``step``, ``check``, ``echo``, ``web``,
    ``sandbox`` (the wallet sandbox whose inbox the messages reach), ``pay_and_confirm``,
    ``pay_on_cashier`` and ``get_json`` (HTTP is the script's: adapter/demo.py)."""

    web: str
    sandbox: str
    echo: Callable[[str], None]
    api: Callable[..., Any]  # a requests.Response
    step: Callable[[str], None]
    check: Callable[[bool, str], None]
    pay_and_confirm: Callable[[str], Any]
    pay_on_cashier: Callable[[dict[str, Any]], bool]  # POST /payments's answer, paid there
    get_json: Callable[[str], Any]
    http: Any  # a requests.Session with the patient's cookie

    def pay_bill(self) -> None:
        """After the consultation: the doctor's orders come as a bill; pay it in the wallet,
        then read the HIS's receipt and where to go next."""
        self.step("after the consultation the HIS sends the bill (DFT^P03): pay it in the wallet")
        charges = _wait("the consultation's charges", lambda: [
            c for p in self.api("GET", "/bills").json()["patients"] for c in p["charges"]],
            seconds=90)
        group = charges[0]["group_code"]
        chosen = [c for c in charges if group and c["group_code"] == group] or charges[:1]
        fen = sum(c["amount_fen"] for c in chosen)
        self.check(bool(chosen), f"{len(chosen)} charge(s) to pay together, "
                                 f"e.g. {chosen[0]['item_name']}")
        payment = self.api("POST", "/payments", json={
            "charge_ids": [c["id"] for c in chosen], "return_url": f"{self.web}/h5/bills"})
        self.check(payment.status_code == 201
                   and payment.json()["amount"] == f"{fen // 100}.{fen % 100:02d}",
                   f"the HIS locked them for ¥{payment.json().get('amount')}: one trade")
        bill_id = payment.json()["bill_id"]
        self.check(self.pay_on_cashier(payment.json()), "paid in the sandbox")
        bill = _wait("the HIS's receipt", lambda: (
            lambda b: b if b["status"] == "committed" else None)(
            self.api("GET", f"/bills/{bill_id}").json()))
        self.check(bool(bill["receipt"] and bill["receipt"]["receipt_no"]),
                   f"posted in the HIS: receipt {bill['receipt']['receipt_no']}, e-invoice "
                   f"{bill['receipt']['invoice_no']}")
        self.check(bool(bill["next_stops"]), "next: " + "; ".join(
            f"{n['place']} {n['location']}".strip() for n in bill["next_stops"]))

    def visit_today(self, user_id: str, patient_id: int) -> None:
        """Book the slot opening soon today, check in from the car park, watch the queue."""
        tz = zoneinfo.ZoneInfo("Asia/Shanghai")
        self.step("a visit today: the parent books a general medicine slot that starts soon")
        today = dt.datetime.now(tz).date()
        soon = _wait("a slot soon today", lambda: [
            s for s in self.api("GET", f"/slots?department=GIM&date={today}").json()["slots"]
            if s["status"] == "open" and s["remaining"] and dt.datetime.fromisoformat(
                s["start_at"]) - dt.datetime.now(tz) < dt.timedelta(minutes=60)])
        held = self.api("POST", "/bookings", json={"slot_id": soon[0]["id"],
                                                   "patient_id": patient_id},
                        headers={"Idempotency-Key": str(uuid.uuid4())})
        self.check(held.status_code == 201, f"held the slot at {soon[0]['start_at'][11:16]}")
        booking_id = held.json()["id"]
        self.pay_and_confirm(booking_id)

        self.step("check in from the car park: the phone's location is inside the geofence")
        done = self.api("POST", f"/bookings/{booking_id}/check-in", json={"location": {
            "latitude": DEMO_CENTRE[0] + 0.001, "longitude": DEMO_CENTRE[1], "accuracy_m": 25}})
        self.check(done.status_code == 200, f"checked in ({done.json().get('method')}); "
                                            "ADT^A10 goes to the HIS")

        self.step("the HIS's queue moves (SIU^S14 on the listener): the position falls")
        seen: list[int] = []

        def called() -> bool:
            view = self.api("GET", f"/bookings/{booking_id}/queue").json()
            if view.get("ahead") is not None and (not seen or seen[-1] != view["ahead"]):
                seen.append(view["ahead"])
                wait = view["wait"] or {}
                self.echo(f"    {view['ahead']} ahead, about {wait.get('low_minutes')}-"
                          f"{wait.get('high_minutes')} min, room {view['room']}")
            return view.get("state") in ("called", "finished")

        _wait("the call", called, seconds=120)
        self.check(len(seen) >= 2 and seen == sorted(seen, reverse=True),
                   f"the position fell: {' -> '.join(map(str, seen))} ahead, then called")
        inbox = _wait("the your-turn push", lambda: [
            m for m in self.get_json(f"{self.sandbox}/inbox/{user_id}")
            if "轮到您就诊" in str(m)])
        self.check(bool(inbox), "the wallet pushed checked in, N ahead and your turn")


    def results(self, user_id: str) -> None:
        """The laboratory's results of the parent's visit today, in the wallet and on the
        report page."""
        self.step("the laboratory sends the day's results over MLLP (ORU^R01)")
        listed = _wait("the results and their correction", lambda: (
            lambda rs: rs if len(rs) >= 3 and any(r["corrected"] for r in rs) else None)(
            self.api("GET", "/results").json()["results"]), seconds=90)
        kinds = {r["kind"]: r for r in reversed(listed)}  # the newest of each kind
        self.check({"CBC", "BMP", "CT"} <= set(kinds),
                   "blood count, biochemistry and CT report are readable")
        self.check(kinds["BMP"]["critical"], "the biochemistry holds the critical value")
        self.check(kinds["CBC"]["corrected"], "the blood count shows as corrected")
        cbc = self.api("GET", f"/results/{kinds['CBC']['id']}").json()
        self.check(all(len(o["trend"]) == 2 for o in cbc["observations"]),
                   "each blood count value has its trend since three months ago")
        report = self.api("GET", f"/results/{kinds['BMP']['id']}").json()
        flagged = [o["code"] for o in report["observations"] if o["abnormal"]]
        self.check("GLU" in flagged and "K" in flagged, "abnormal values are flagged")
        ct = self.api("GET", f"/results/{kinds['CT']['id']}").json()
        file = next(o["file"] for o in ct["observations"] if o["file"])
        pdf = self.http.get(f"{self.web}{file['url']}", timeout=TIMEOUT)
        self.check(pdf.headers.get("Content-Type") == "application/pdf"
                   and pdf.content.startswith(b"%PDF"), "the CT report is a PDF")
        page = self.http.get(f"{self.web}{kinds['CBC']['url']}", timeout=TIMEOUT)
        self.check(page.ok and "result.js" in page.text, "the report page opens")
        inbox = _wait("the result messages", lambda: [
            text for text in (json.dumps(m, ensure_ascii=False) for m in self.get_json(
                f"{self.sandbox}/inbox/{user_id}"))
            if "/h5/results/" in text])
        self.check(any("联系医院" in text for text in inbox),
                   "the critical value came as 'please contact the hospital', never its value")
        self.check(not any("6.9" in text for text in inbox), "no value in any message")
        self.echo(f"    {len(inbox)} result message(s) in the wallet; report: "
                  f"{self.web}/h5/results/{kinds['CBC']['id']}")

    def _status(self, booking_id: str) -> str:
        return self.api("GET", f"/bookings/{booking_id}").json()["status"]

    def _remaining(self, visit: dt.date, slot_id: int) -> int:
        slots = self.api("GET", f"/slots?department=PED&date={visit}").json()["slots"]
        return next(s["remaining"] for s in slots if s["id"] == slot_id)
