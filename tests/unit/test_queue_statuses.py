"""The HIS's SCH-25 words for queue events are the hospital's data (mappings/queue.toml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from adapter.config import load_config
from adapter.his.profile import Hl7Profile, ProfileError, load_queue_statuses
from adapter.his.queue import parse_queue_event
from adapter.his.segments import MessageError
from adapter.his.simulator.clinic import clinic_day
from adapter.his.simulator.clinic_wire import build_queue_siu
from adapter.ports import QueueEventKind
from adapter.queueing.policy import read_queue_policy
from tests.conftest import MAPPINGS

TZ = load_config({}).tz
HIS_SIDE = Hl7Profile(sending_application="HIS", his_application="FHA")


def _siu(status: str) -> str:
    event = next(e for e in clinic_day(2, dt.date(2030, 3, 7), TZ).events
                 if e.kind is QueueEventKind.ARRIVED)
    text = build_queue_siu(HIS_SIDE, event, location="MZ-PED", department_code="PED")
    return text.replace("|Arrived", f"|{status}")


def test_the_shipped_mapping_is_the_default_one():
    loaded = load_queue_statuses(Hl7Profile(), MAPPINGS / "queue.toml")
    assert dict(loaded.queue_statuses) == dict(Hl7Profile().queue_statuses)
    read_queue_policy((MAPPINGS / "queue.toml").read_text(encoding="utf-8"))  # still valid


def test_a_his_with_its_own_words_is_mapped(tmp_path):
    path = tmp_path / "queue.toml"
    path.write_text('[sch25]\nWAITING = "arrived"\ndone = "finished"\n', encoding="utf-8")
    profile = load_queue_statuses(Hl7Profile(), path)
    assert parse_queue_event(_siu("Waiting"), TZ, profile.queue_statuses).kind is \
        QueueEventKind.ARRIVED
    with pytest.raises(MessageError):  # no longer a word of this HIS
        parse_queue_event(_siu("Arrived"), TZ, profile.queue_statuses)


def test_a_mapping_to_an_unknown_event_stops_the_start(tmp_path):
    path = tmp_path / "queue.toml"
    path.write_text('[sch25]\nwaiting = "teleported"\n', encoding="utf-8")
    with pytest.raises(ProfileError, match="sch25"):
        load_queue_statuses(Hl7Profile(), path)
    assert replace(Hl7Profile()).queue_statuses["arrived"] == "arrived"
