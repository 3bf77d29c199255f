"""`hospital-adapter run` as a newcomer starts it: all roles plus the HIS simulator."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import requests
from sqlalchemy import create_engine, text

from adapter.demo import start_local_system
from adapter.his.header import parse_ack
from adapter.his.mllp_client import MllpClient
from tests.conftest import MAPPINGS
from tests.hl7_fixtures import oru_r01


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_run_starts_every_role_with_the_his_simulator(tmp_path):
    system = start_local_system(tmp_path, MAPPINGS, {"ADAPTER_LOG_LEVEL": "DEBUG"})
    base, sandbox = system.web, system.sandbox
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                status, body = _get(f"{base}/readyz")
                if status == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert system.process.poll() is None, system.output()
            time.sleep(0.3)
        assert status == 200, body
        assert body["checks"]["his"]["up"] and body["checks"]["database"]["up"]

        with MllpClient("127.0.0.1", system.mllp_port, connect_timeout=5,
                        ack_timeout=10) as client:
            ack = parse_ack(client.send(oru_r01("RUN0001").encode()))
        assert (ack.code, ack.control_id) == ("AA", "RUN0001")

        engine = create_engine(f"sqlite:///{tmp_path / 'adapter.db'}")
        deadline = time.monotonic() + 30
        slots = 0
        while time.monotonic() < deadline and not slots:
            with engine.connect() as connection:
                slots = connection.execute(text("SELECT count(*) FROM slot")).scalar_one()
            time.sleep(0.5)
        assert slots > 100, "the worker did not sync the simulator's slot pool"
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT ack_code FROM inbound_message WHERE control_id = 'RUN0001'")
            ).scalar_one()
        assert stored == "AA"

        # A parent signs in through the sandbox's login page and adds a child.
        users = json.loads(urllib.request.urlopen(f"{sandbox}/_sandbox/users").read())  # noqa: S310
        parent = next(u for u in users if u["children"] and u["cert_type"] == "0")
        child = parent["children"][0]
        browser = requests.Session()  # the patient's browser, with its cookies
        login = browser.get(f"{base}/api/v1/session/login-url",
                            params={"redirect_uri": f"{base}/h5/"}, timeout=10).json()
        form = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login["url"]).query))
        form["user_id"] = parent["user_id"]  # the user taps their account on the login page
        answer = requests.post(login["url"].partition("?")[0], data=form,
                               allow_redirects=False, timeout=10)
        back = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            answer.headers["Location"]).query))
        signed = browser.post(f"{base}/api/v1/session", timeout=10,
                              json={"auth_code": back["auth_code"], "state": back["state"]})
        assert signed.status_code == 201 and signed.json()["certified"], signed.text
        added = browser.post(f"{base}/api/v1/patients", timeout=10, json={
            "name": child["name"], "document_type": "RESIDENT_ID",
            "document_number": child["cert_no"], "relation": "child",
            "guardian_consent": True})
        assert added.status_code == 201, added.text
        secrets = [parent["cert_no"], child["cert_no"], parent["mobile"]]
    finally:
        returncode = system.stop()
    output = system.output()
    assert returncode == 0, output
    # No plaintext ID or phone number anywhere: database files (WAL included) and logs.
    stored_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("adapter.db*"))
    for secret in secrets:
        assert secret.encode() not in stored_bytes
        assert secret not in output
    assert parent["name"] not in output and child["name"] not in output
    with socket.socket() as s:  # the simulator went down with it
        assert s.connect_ex(("127.0.0.1", system.his_port)) != 0
