"""The development side of the registries: an SMS inbox and a health card registry of made-up
people, as a Flask blueprint the wallet sandbox program serves (``create_sandbox_app``).

Paths: ``POST /sms/send`` (the gateway), ``GET /sms/inbox/<phone>`` (what a phone received,
for the demo and tests: the codes are read there, as a patient reads their phone),
``POST /health-card/lookup`` and ``GET /health-card/cards`` (the seeded cards).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import asdict, dataclass, field

from flask import Blueprint, Response, jsonify, request
from stdnum.cn import ric

INBOX_KEPT = 50  # messages per phone


def _resident_id(body17: str) -> str:
    return body17 + ric.calc_check_digit(body17 + "0")


@dataclass(frozen=True)
class SandboxCard:
    """A made-up electronic health card and its person."""

    card_id: str
    name: str
    document_type: str
    document_number: str
    phone: str
    sex: str


def seed_cards() -> list[SandboxCard]:
    """The cards every sandbox starts with (people the HIS simulator does not know)."""
    return [
        SandboxCard("HC1101050001", "孙丽", "RESIDENT_ID", _resident_id("11010519900520124"),
                    "13300000201", "F"),
        SandboxCard("HC3101040002", "周强", "RESIDENT_ID", _resident_id("31010419870811135"),
                    "13300000202", "M"),
    ]


@dataclass
class RegistrySandbox:
    """The inboxes and cards, under one lock."""

    cards: dict[str, SandboxCard] = field(default_factory=lambda: {
        card.card_id: card for card in seed_cards()})
    inboxes: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    down: bool = False  # answer 503 to everything (a test's outage)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, phone: str, text: str) -> None:
        """The gateway took a message for a phone."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        with self.lock:
            box = self.inboxes.setdefault(digits, [])
            box.append({"text": text, "at": dt.datetime.now(dt.UTC).isoformat()})
            del box[:-INBOX_KEPT]


def registry_blueprint(state: RegistrySandbox | None = None) -> Blueprint:
    """The SMS inbox and the health card registry over ``state`` (a fresh one by default)."""
    state = state or RegistrySandbox()
    bp = Blueprint("registry_sandbox", __name__)

    @bp.before_request
    def _outage() -> Response | None:
        if state.down:
            return Response("unavailable\n", status=503, mimetype="text/plain")
        return None

    @bp.post("/sms/send")
    def sms_send() -> Response:
        body = request.get_json(silent=True) or {}
        phone, text = str(body.get("phone", "")), str(body.get("text", ""))
        if not phone or not text:
            return Response("phone and text required\n", status=400, mimetype="text/plain")
        state.receive(phone, text)
        return jsonify(accepted=True)

    @bp.get("/sms/inbox/<phone>")
    def sms_inbox(phone: str) -> Response:
        with state.lock:
            return jsonify(messages=list(state.inboxes.get(phone, [])))

    @bp.post("/health-card/lookup")
    def card_lookup() -> Response:
        body = request.get_json(silent=True) or {}
        card = state.cards.get(str(body.get("card", "")).strip())
        if card is None:
            return Response("no such card\n", status=404, mimetype="text/plain")
        return jsonify(asdict(card))

    @bp.get("/health-card/cards")
    def card_list() -> Response:
        return jsonify(cards=[asdict(card) for card in state.cards.values()])

    bp.state = state  # type: ignore[attr-defined] - for tests that serve it themselves
    return bp
