"""The JSON API for the patient pages: /api/v1 (described by /api/v1/openapi.json).

One module per resource; views only parse, call one use case and translate the result. Input
is declared in adapter.web.api.schemas and checked at the edge by adapter.web.api.validation
(which also bounds every request); errors in adapter.web.api.errors, Idempotency-Key in
adapter.web.api.idempotency.
"""

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue

from adapter.web import openapi as description
from adapter.web.api import (
    account,
    bills,
    bookings,
    csrf,
    patients,
    payments,
    queue,
    results,
    session,
    slots,
    validation,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
for resource in (session, account, patients, slots, bookings, queue, payments, bills, results):
    bp.register_blueprint(resource.bp)
bp.before_request(csrf.check_write)  # writes: own Origin and JSON only (docs/security.md)
validation.init_api(bp)


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI description of /api/v1."""
    return jsonify(description.openapi())


def init_app(app: Flask) -> None:
    """Register the API."""
    app.register_blueprint(bp)
    validation.init_app(app)
