"""The link checker and readiness from recorded outcomes (adapter.links, adapter.worker.links)."""

from __future__ import annotations

import datetime as dt

from adapter.links import link_readiness
from adapter.models import LinkState
from adapter.worker.links import check_links

NAMES = ("his", "wallet:fake")


def _ready(runtime, max_age: float = 45) -> dict[str, bool]:
    with runtime.session_factory() as session:
        return link_readiness(session, runtime.clock.now(), dt.timedelta(seconds=max_age),
                              NAMES)


def test_nothing_checked_yet_is_not_ready(runtime):
    assert _ready(runtime) == {"his": False, "wallet:fake": False}


def test_both_answering_are_up_and_say_how_fast(runtime):
    check_links(runtime)
    assert _ready(runtime) == {"his": True, "wallet:fake": True}
    with runtime.session_factory() as session:
        assert session.get(LinkState, "his").detail.startswith("answered in ")


def test_each_link_is_its_own_check(runtime):
    runtime.wallet.down = True
    check_links(runtime)
    assert _ready(runtime) == {"his": True, "wallet:fake": False}
    runtime.wallet.down, runtime.his.down = False, True
    check_links(runtime)
    assert _ready(runtime) == {"his": False, "wallet:fake": True}
    with runtime.session_factory() as session:
        assert session.get(LinkState, "his").detail.startswith("HisUnavailable after ")


def test_a_his_refusing_the_probe_has_answered_and_is_up(runtime):
    from adapter.ports import HisOutcome, HisRefused

    def refuse(document_type, document_number):
        raise HisRefused(HisOutcome(False, error_code="103", error_text="bad id"))

    runtime.his.find_patient = refuse
    check_links(runtime)
    assert _ready(runtime)["his"]


def test_an_old_check_says_nothing(runtime):
    check_links(runtime)
    runtime.clock.advance(seconds=46)
    assert _ready(runtime) == {"his": False, "wallet:fake": False}
