"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Generated from the models the views validate with (adapter.web.api.schemas), so what the
document says and what the API accepts cannot drift; each operation lists every status it can
answer. A test checks that every /api/v1 route is described here and nothing else is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from adapter.web.api import schemas as s
from adapter.web.api import schemas_bills as b
from adapter.web.api import schemas_binding as k
from adapter.web.api import schemas_results as r
from adapter.web.api.validation import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_QUERY_PARAMETERS,
)

REF = "#/components/schemas/{model}"

_WHY = {
    400: "Malformed: a value that is not of its declared type, length, pattern or range",
    401: "Not signed in (`session.required`) or the wallet refused the sign-in",
    403: "Refused: a write from another origin",
    404: "Unknown (or someone else's)",
    409: "Conflict with the current state (slot full, booking not payable, charge paid or "
         "changed in the HIS)",
    413: f"Too large: a body over {MAX_BODY_BYTES} bytes or more than "
         f"{MAX_QUERY_PARAMETERS} query parameters",
    415: "A write whose Content-Type is not application/json",
    422: "A rule said no; `message` says which, in the patient's language (an account neither "
         "certified by its wallet nor bound is `account.not_certified`: POST /account/binding)",
    429: "Too many requests; try again after Retry-After seconds",
    503: "The wallet (or, for a bill, the HIS) could not say: try again shortly",
}

WRITE = (403, 413, 415)
READ = (413,)
THROTTLED = (429,)


@dataclass(frozen=True)
class Operation:
    """One operation: the models that declare it and the statuses it answers."""

    path: str
    method: str
    summary: str
    ok: int
    answer: type[BaseModel] | None = None
    ok_description: str = ""
    query: type[s.Query] = s.Query
    body: type[s.Request] | None = None
    headers: type[s.Request] | None = None
    path_params: type[s.Request] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


OPERATIONS = (
    Operation("/openapi.json", "get", "This description", 200,
              ok_description="OpenAPI document", errors=READ),
    Operation("/session", "post", "Exchange a wallet auth_code for a patient session (cookie)",
              201, s.SessionAnswer, body=s.SessionBody,
              errors=(400, 401, 422, 503, *WRITE, *THROTTLED)),
    Operation("/session", "delete", "Sign out", 204, ok_description="Done", errors=WRITE),
    Operation("/session/login-url", "get",
              "The wallet's authorize URL, redirecting back with auth_code", 200, s.LoginUrl,
              query=s.LoginUrlQuery, errors=(400, *READ)),
    Operation("/departments", "get", "Departments with their doctors and slot release times",
              200, s.Departments, errors=READ),
    Operation("/slots", "get", "One day's slots of a department and/or doctor", 200, s.Slots,
              query=s.SlotsQuery, errors=(400, *READ, *THROTTLED),
              description="Give `department` or `doctor` (or both); neither is a 400 "
                          "`slots.filter`."),
    Operation("/bookings", "post", "Hold a slot for a patient until the payment deadline", 201,
              s.Booking, body=s.BookingBody, headers=s.IdempotencyHeaders,
              errors=(400, 401, 404, 409, 422, *WRITE, *THROTTLED),
              description="The same Idempotency-Key with the same body answers the first "
                          "answer again; with another body, 422 `idempotency.mismatch`."),
    Operation("/bookings", "get", "The account's bookings", 200, s.Bookings,
              errors=(401, *READ)),
    Operation("/bookings/{public_id}", "get", "One booking", 200, s.Booking,
              path_params=s.BookingPath, errors=(401, 404, *READ)),
    Operation("/bookings/{public_id}/cancel", "post",
              "Cancel (unpaid: at once; paid: before the deadline, refunded)", 200, s.Booking,
              path_params=s.BookingPath, errors=(401, 404, 409, 422, 503, *WRITE)),
    Operation("/bookings/{public_id}/check-in", "post",
              "Check in on the visit day: inside the geofence, or with the QR code's token", 200,
              s.CheckInAnswer, body=s.CheckInBody, path_params=s.BookingPath,
              errors=(400, 401, 404, 422, *WRITE),
              description="Open from ADAPTER_CHECK_IN_OPENS_MINUTES before the slot to "
                          "ADAPTER_CHECK_IN_CLOSES_MINUTES after its start, for a confirmed "
                          "booking. A token wins over a location. Checking in again answers "
                          "the first check-in (idempotent without a key). Refusals (422): "
                          "`check_in.too_early`, `check_in.too_late`, `check_in.outside_fence`, "
                          "`check_in.remote_unavailable`, `check_in.bad_token`, "
                          "`check_in.token_expired`, `check_in.no_proof`, "
                          "`check_in.not_confirmed`."),
    Operation("/bookings/{public_id}/queue", "get",
              "The booking's place in its doctor's queue, with the estimated wait", 200,
              s.QueueView, path_params=s.BookingPath, errors=(401, 404, *READ)),
    Operation("/payments", "post",
              "Create (or return) the wallet trade paying a held booking or a bill",
              201, s.Payment, body=s.PaymentBody,
              errors=(400, 401, 404, 409, 422, 503, *WRITE, *THROTTLED),
              description="Give `booking_id`, or `charge_ids` (one patient's unpaid charges, "
                          "of one group): the HIS pre-settles them and its total is the "
                          "amount. A charge paid at the window or changed in the HIS is 409 "
                          "`bill.paid_elsewhere` / `bill.changed`."),
    Operation("/bills", "get", "Unpaid charges of the account's own and verified dependants' "
              "records", 200, b.Bills, errors=(401, *READ)),
    Operation("/bills/{public_id}", "get", "A bill: its state, the HIS's receipt, next stops",
              200, b.Bill, path_params=s.BillPath, errors=(401, 404, *READ)),
    Operation("/results", "get", "The released results of the account's verified patients",
              200, r.Results, errors=(401, 422, *READ),
              description="Every call is written to the audit trail."),
    Operation("/results/{result_id}", "get", "One released result: values, ranges, flags, "
              "trends", 200, r.Result, path_params=s.ResultPath,
              errors=(401, 404, 422, *READ),
              description="Someone else's, held, preliminary or withdrawn results are as "
                          "unknown as ids that name none (404); every call, shown or refused, "
                          "is written to the audit trail."),
    Operation("/results/{result_id}/files/{file_id}", "get", "A report file of a result "
              "(application/pdf, as an attachment)", 200, path_params=s.ResultFilePath,
              ok_description="The file's bytes, with its Content-Type and Content-Disposition",
              errors=(401, 404, 422, *READ)),
    Operation("/account/binding", "get", "The account's real-name binding and the code a "
              "started binding waits for", 200, k.BindingAnswer, errors=(401, *READ)),
    Operation("/account/binding", "post", "Start a real-name binding (an account the wallet "
              "did not certify)", 200, k.BindingAnswer, body=k.BindingBody,
              errors=(400, 401, 409, 422, 503, *WRITE),
              description="his_match: name, document and phone must match the HIS's patient "
                          "index; a 6-digit code then goes to the HIS's phone (confirmation "
                          "`sms_code`), unless the hospital's HIS profile says its phones are "
                          "confirmed (bound at once). health_card: the card's registry vouches "
                          "(bound at once). Refusals: `binding.his_unknown`, "
                          "`binding.name_mismatch`, `binding.phone_mismatch`, "
                          "`binding.his_no_phone`, `binding.card_unknown`, `binding.too_many` "
                          "(422); `binding.bound_elsewhere`, `binding.already_certified` (409)."),
    Operation("/account/binding/confirm", "post", "Confirm a started binding with the SMS code",
              200, k.BindingAnswer, body=k.BindingConfirmBody,
              errors=(400, 401, 409, 422, *WRITE),
              description="A code lives 5 minutes; 5 wrong codes end the attempt. Refusals: "
                          "`binding.code_wrong`, `binding.code_expired`, "
                          "`binding.too_many_tries` (422), `binding.nothing_pending`, "
                          "`binding.bound_elsewhere` (409)."),
    Operation("/account/binding/resend", "post", "A new SMS code for the started binding", 200,
              k.BindingAnswer, errors=(401, 409, 422, 503, *WRITE),
              description="Not before `resend_at` (`binding.resend_wait`), at most 5 codes per "
                          "attempt (`binding.too_many_sends`)."),
    Operation("/patients", "get", "The signed-in user's patients", 200, s.Patients,
              errors=(401, *READ)),
    Operation("/patients", "post", "Add a dependant (child, spouse, parent, other)", 201,
              s.Patient, body=s.NewPatient, errors=(400, 401, 422, *WRITE)),
)


def _parameters(model: type[s.Request], where: str, schemas: dict[str, Any]) -> list[dict]:
    schema = schemas[model.__name__]
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", None)
        parameter = {"name": name, "in": where, "required": where == "path" or name in required,
                     "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _error(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _WHY[status],
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"required": True, "description": "seconds",
                                             "schema": {"type": "integer", "minimum": 0}}}
    return answer


def _operation(op: Operation, schemas: dict[str, Any]) -> dict[str, Any]:
    parameters = _parameters(op.query, "query", schemas)
    if op.path_params is not None:
        parameters += _parameters(op.path_params, "path", schemas)
    if op.headers is not None:
        parameters += _parameters(op.headers, "header", schemas)
    ok: dict[str, Any] = {"description": op.ok_description or op.summary}
    if op.answer is not None:
        ok["content"] = {"application/json": {"schema": {
            "$ref": REF.format(model=op.answer.__name__)}}}
    item: dict[str, Any] = {"summary": op.summary, "parameters": parameters,
                            "responses": {str(op.ok): ok,
                                          **{str(c): _error(c) for c in sorted(op.errors)}}}
    if op.description:
        item["description"] = op.description
    if op.body is not None:
        item["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": REF.format(model=op.body.__name__)}}}}
    return item


@cache
def openapi() -> dict[str, Any]:
    """The document (built once: it depends on the code only)."""
    models: list[tuple[type[BaseModel], Any]] = [(m, "validation")
                                                 for m in (*s.REQUESTS, *k.REQUESTS)]
    models += [(m, "validation") for op in OPERATIONS
               for m in (op.query, op.headers, op.path_params) if m is not None]
    models += [(m, "serialization") for m in (*s.ANSWERS, *b.ANSWERS, *r.ANSWERS,
                                                           *k.ANSWERS)]
    unique = list(dict.fromkeys(models))
    _, top = models_json_schema(unique, ref_template=REF)
    schemas = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas)
    parameter_models = {m.__name__ for op in OPERATIONS
                        for m in (op.query, op.headers, op.path_params) if m is not None}
    components = {name: schema for name, schema in schemas.items()
                  if name not in parameter_models
                  or name in {m.__name__ for m in (*s.REQUESTS, *k.REQUESTS)}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Future Hospital Adapter patient API", "version": "1", "description": (
            "Every answer that is not a success has the Error shape; its `message` is in the "
            "patient's language (`lang` or Accept-Language) and never repeats a value sent. "
            f"Bodies are JSON objects of at most {MAX_BODY_BYTES} bytes nesting at most "
            f"{MAX_DEPTH} levels, with no keys but the declared ones; query parameters not "
            f"declared are ignored, more than {MAX_QUERY_PARAMETERS} are refused (413).")},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {"schemas": components},
    }
