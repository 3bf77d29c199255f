"""Reading results over /api/v1 on SQLite and PostgreSQL: the patient and the verified
guardians of a dependant see a released result; nobody else does, whichever way they ask
(another's id, guessed ids, a stale link, a guardian relation that ended), and every answer,
shown or refused, is in the audit trail with who, what, when and from where."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from sqlalchemy import select, update
from stdnum.cn import ric

from adapter import create_app
from adapter.config import load_config
from adapter.his.profile import Hl7Profile
from adapter.mappings import load_mappings
from adapter.models import Patient, ResultView, Verification
from adapter.ports import (
    Observation,
    ResultAttachment,
    ResultOrder,
    ResultReport,
    ResultsReported,
    ResultStatus,
)
from adapter.protection import KEY_BYTES, DataProtector, Keyring
from adapter.results.policy import ReleasePolicy
from adapter.runtime import Runtime
from tests.conftest import MAPPINGS
from tests.fakes import FakeClock, FakeWallet, sign_in
from tests.unit.conftest import resident_id

NOW = dt.datetime(2030, 3, 7, 2, 0, tzinfo=dt.UTC)
PDF = b"%PDF-1.4\n% imaging report\n%%EOF\n"
PROXY_CLIENT = "203.0.113.7"


def nm(code: str, value: str, flags: tuple[str, ...] = ("N",), rng: str = "3.5-9.5",
       units: str = "10*9/L") -> Observation:
    return Observation("1", "NM", code, f"{code} name", value, value, units=units,
                       reference_range=rng, abnormal_flags=flags, status="F")


def order(filler: str, *observations: Observation, kind: str = "CBC",
          status: ResultStatus = ResultStatus.FINAL,
          observed: dt.datetime = NOW) -> ResultOrder:
    return ResultOrder(f"P{filler}", filler, kind, f"{kind} title", observed, status,
                       observations or (nm("WBC", "6.2"),))


class Clinic:
    """The app and the results flow, with people signed in by the fake wallet."""

    def __init__(self, app, runtime: Runtime) -> None:
        self.app, self.runtime = app, runtime
        self.wallet: FakeWallet = runtime.wallet
        self.controls = 0

    def person(self, n: int, his_id: str, name: str = "") -> tuple[object, int]:
        """A certified wallet user signed in, whom the HIS knows as ``his_id``."""
        name = name or f"测试{n}"
        self.wallet.add_user(f"code{n}", user_id=f"2088{n:012d}", is_certified=True, name=name,
                             document_type="RESIDENT_ID", document_number=resident_id(n),
                             sex="M")
        client = self.app.test_client()
        assert sign_in(client, f"code{n}").status_code == 201
        with self.runtime.session_factory.begin() as db:
            link = db.scalar(select(Patient).where(Patient.name == name,
                                                   Patient.relation == "self"))
            link.his_patient_id, link.birth_date = his_id, dt.date(1980, 1, 1)
            return client, link.id

    def report(self, his_id: str, name: str, *orders: ResultOrder,
               birth: dt.date = dt.date(1980, 1, 1)) -> None:
        """The LIS reports orders for ``his_id``, applied as the inbound runner applies them."""
        self.controls += 1
        event = ResultsReported(f"M{self.controls}", "LIS^DEMO_HOSPITAL",
                                (ResultReport(his_id, name, birth, orders=orders),))
        with self.runtime.session_factory.begin() as db:
            self.runtime.flows.batches[ResultsReported](self.runtime, db, [event],
                                                        self.runtime.clock.now())

    def ids(self) -> dict[str, int]:
        from adapter.models import Result

        with self.runtime.session_factory() as db:
            return {r.filler_order: r.id for r in db.scalars(select(Result))}

    def audit(self) -> list[ResultView]:
        with self.runtime.session_factory() as db:
            return list(db.scalars(select(ResultView).order_by(ResultView.id)))


@pytest.fixture
def clinic(engine, session_factory):
    config = replace(load_config({}), secret_key="test-secret", trusted_proxies=1)
    runtime = Runtime(config, engine, session_factory, load_mappings(MAPPINGS), Hl7Profile(),
                      clock=FakeClock(NOW))
    runtime.wallet = FakeWallet()
    runtime.protector = DataProtector(Keyring(active="k1", keys={"k1": b"\x01" * KEY_BYTES},
                                              index_key=b"\x02" * KEY_BYTES))
    runtime.result_release = ReleasePolicy(sensitive_kinds=frozenset({"PATH"}))
    return Clinic(create_app(runtime=runtime), runtime)


def _get(client, path: str):
    return client.get(path, headers={"X-Forwarded-For": PROXY_CLIENT,
                                     "User-Agent": "AlipayClient/10.5"})


def test_a_patient_reads_their_report_with_ranges_flags_trend_and_its_pdf(clinic):
    client, link_id = clinic.person(1, "P1")
    month_ago = NOW - dt.timedelta(days=30)
    clinic.report("P1", "测试1", order("L1", nm("WBC", "4.1"), observed=month_ago))
    clinic.report("P1", "测试1",
                  order("L2", nm("WBC", "11.8", ("H",)),
                        nm("HGB", "131", rng="130-175", units="g/L")),
                  order("L3", Observation("1", "ED", "RPT", "CT report",
                                          attachment=ResultAttachment("application/pdf", PDF)),
                        kind="CT"))
    ids = clinic.ids()

    listed = _get(client, "/api/v1/results")
    assert listed.status_code == 200
    # newest first: by when they were taken, then as they came
    assert [r["id"] for r in listed.json["results"]] == [ids["L3"], ids["L2"], ids["L1"]]
    assert listed.json["results"][1]["abnormal"] == 1
    report = _get(client, f"/api/v1/results/{ids['L2']}")
    assert report.status_code == 200
    wbc, hgb = report.json["observations"]
    assert (wbc["number"], wbc["units"], wbc["reference_range"], wbc["flags"], wbc["abnormal"]) \
        == ("11.8", "10*9/L", "3.5-9.5", ["H"], True)
    assert [p["value"] for p in wbc["trend"]] == ["4.1", "11.8"]  # earlier result, then this
    assert hgb["trend"] == [] and not hgb["abnormal"]
    assert report.json["patient"] == {"id": link_id, "name": "测试1", "relation": "self"}

    ct = _get(client, f"/api/v1/results/{ids['L3']}").json
    file = ct["observations"][0]["file"]
    assert (file["content_type"], file["size"]) == ("application/pdf", len(PDF))
    pdf = _get(client, file["url"])
    assert pdf.status_code == 200 and pdf.data == PDF
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith('attachment; filename="report-')
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"

    trail = clinic.audit()
    assert [(v.action, v.outcome, v.result_id) for v in trail] == [
        ("list", "shown", None), ("read", "shown", ids["L2"]), ("read", "shown", ids["L3"]),
        ("file", "shown", ids["L3"])]
    assert all(v.ip == PROXY_CLIENT and v.user_agent == "AlipayClient/10.5"
               and v.wallet_account_id is not None and v.patient_id == link_id
               and v.at == NOW for v in trail[1:])
    assert trail[0].shown == 3


def test_another_patients_result_by_id_is_refused_and_audited(clinic):
    owner, _ = clinic.person(1, "P1")
    other, _ = clinic.person(2, "P2")
    clinic.report("P1", "测试1", order("L1", nm("WBC", "6.2")))
    result_id = clinic.ids()["L1"]
    pdf_less = _get(other, f"/api/v1/results/{result_id}")
    assert pdf_less.status_code == 404 and pdf_less.json["error"] == "result.unknown"
    assert _get(other, "/api/v1/results").json["results"] == []
    assert _get(owner, f"/api/v1/results/{result_id}").status_code == 200
    refused = [v for v in clinic.audit() if v.outcome == "refused"]
    assert [(v.action, v.result_id, v.reason) for v in refused] == \
        [("read", result_id, "not_theirs")]
    assert refused[0].ip == PROXY_CLIENT


def test_guessed_ids_answer_exactly_as_unknown_ones_and_each_guess_is_audited(clinic):
    clinic.person(1, "P1")
    guesser, _ = clinic.person(2, "P2")
    clinic.report("P1", "测试1", *(order(f"L{n}", nm("WBC", "6.2")) for n in range(5)))
    clinic.report("P9", "没有的人", order("U1", nm("WBC", "6.2")))  # unmatched: held
    real = sorted(clinic.ids().values())
    rng = random.Random(12)
    guesses = [*range(1, max(real) + 20), *(rng.randrange(1, 2**53) for _ in range(10))]
    bodies = set()
    for guess in guesses:
        answer = _get(guesser, f"/api/v1/results/{guess}")
        assert answer.status_code == 404
        bodies.add(answer.data)
        assert _get(guesser, f"/api/v1/results/{guess}/files/{guess}").status_code == 404
    for junk in ("0", "-1", "abc", str(2**63), "1.0", "%00"):
        answer = _get(guesser, f"/api/v1/results/{junk}")
        assert answer.status_code == 404
        bodies.add(answer.data)
    assert len(bodies) == 1  # nothing tells a real id from a made-up one
    refused = [v for v in clinic.audit() if v.outcome == "refused"]
    assert len(refused) == 2 * len(guesses) + 6
    reasons = {v.result_id: v.reason for v in refused if v.action == "read"}
    assert {reasons[i] for i in real} == {"not_theirs"}
    assert [v.reason for v in refused[-6:]] == ["malformed"] * 6


def test_a_stale_link_shows_nothing_once_withdrawn_and_nothing_after_signing_out(clinic):
    client, _ = clinic.person(1, "P1")
    clinic.report("P1", "测试1", order("L1", nm("WBC", "6.2")))
    result_id = clinic.ids()["L1"]
    link = f"/api/v1/results/{result_id}"
    assert _get(client, link).status_code == 200
    clinic.report("P1", "测试1", order("L1", status=ResultStatus.CANCELLED))  # the LIS withdrew it
    assert _get(client, link).status_code == 404
    assert _get(client, "/api/v1/results").json["results"] == []

    clinic.report("P1", "测试1", order("L2", nm("WBC", "5.0")))
    second = f"/api/v1/results/{clinic.ids()['L2']}"
    copied = clinic.app.test_client()
    copied.set_cookie("session", client.get_cookie("session").value)
    assert _get(copied, second).status_code == 200
    assert client.delete("/api/v1/session", json={}).status_code == 204
    assert _get(copied, second).status_code == 401  # the session ended everywhere
    assert _get(copied, f"{second}/files/1").status_code == 401
    trail = [(v.action, v.outcome, v.reason, v.wallet_account_id is None) for v in clinic.audit()]
    assert trail == [("read", "shown", "", False), ("read", "refused", "not_released", False),
                     ("list", "shown", "", False), ("read", "shown", "", False),
                     ("read", "refused", "session", True), ("file", "refused", "session", True)]


def test_a_guardian_reads_a_dependants_result_only_while_the_relation_is_verified_and_live(
        clinic):
    parent, _ = clinic.person(1, "P1")
    body = "11010120200101023"
    child_document = body + ric.calc_check_digit(body + "0")
    added = parent.post("/api/v1/patients", json={
        "name": "测小宝", "document_type": "RESIDENT_ID", "document_number": child_document,
        "relation": "child", "guardian_consent": True})
    assert added.status_code == 201, added.json
    child_link = added.json["id"]
    with clinic.runtime.session_factory.begin() as db:
        db.execute(update(Patient).where(Patient.id == child_link)
                   .values(his_patient_id="P40"))
    clinic.report("P40", "测小宝", order("C1", nm("WBC", "7.0")), birth=dt.date(2020, 1, 1))
    result_id = clinic.ids()["C1"]
    path = f"/api/v1/results/{result_id}"
    assert _get(parent, path).status_code == 404  # an unverified link: maybe not theirs

    with clinic.runtime.session_factory.begin() as db:
        db.execute(update(Patient).where(Patient.id == child_link)
                   .values(verification=Verification.HIS, verified_at=NOW))
    shown = _get(parent, path)
    assert shown.status_code == 200 and shown.json["patient"]["relation"] == "child"

    with clinic.runtime.session_factory.begin() as db:  # the guardian relation ends
        db.execute(update(Patient).where(Patient.id == child_link).values(removed_at=NOW))
    assert _get(parent, path).status_code == 404
    assert _get(parent, "/api/v1/results").json["results"] == []
    reasons = [(v.outcome, v.reason) for v in clinic.audit() if v.action == "read"]
    assert reasons == [("refused", "unverified"), ("shown", ""), ("refused", "link_ended")]


def test_held_preliminary_and_unmatched_results_are_not_shown_a_released_critical_is(clinic):
    client, _ = clinic.person(1, "P1")
    clinic.report("P1", "测试1", order("H1", kind="PATH"),  # sensitive: held for a doctor
                  order("R1", status=ResultStatus.PRELIMINARY),
                  order("K1", nm("K", "6.9", ("HH",), rng="3.5-5.3", units="mmol/L"), kind="BMP"))
    clinic.report("P1", "别人", order("M1"))  # the name disagrees: held for staff
    ids = clinic.ids()
    assert [r["id"] for r in _get(client, "/api/v1/results").json["results"]] == [ids["K1"]]
    for filler in ("H1", "R1", "M1"):
        assert _get(client, f"/api/v1/results/{ids[filler]}").status_code == 404
    critical = _get(client, f"/api/v1/results/{ids['K1']}").json
    assert critical["critical"] and critical["observations"][0]["critical"]
    reasons = {v.result_id: v.reason for v in clinic.audit() if v.action == "read"}
    assert reasons == {ids["H1"]: "not_released", ids["R1"]: "not_released",
                       ids["M1"]: "not_theirs", ids["K1"]: ""}


def test_the_report_pages_render_in_both_languages_for_the_signed_in_patient(clinic):
    client, _ = clinic.person(1, "P1")
    clinic.report("P1", "测试1", order("L1"))
    result_id = clinic.ids()["L1"]
    zh = client.get(f"/h5/results/{result_id}")
    en = client.get(f"/h5/results/{result_id}?lang=en")
    assert zh.status_code == en.status_code == 200
    assert "报告详情" in zh.text and "Reference range" in en.text
    assert "result.js" in zh.text and "Content-Security-Policy" in zh.headers
    assert client.get("/h5/results?lang=en").status_code == 200
    assert clinic.app.test_client().get(f"/h5/results/{result_id}").status_code == 302
