"""Input at the edge of /api/v1: bounded, parsed by the declared models, refused in one shape.

Every request is bounded before a view reads it (body size, JSON nesting, number of query
parameters); every body, query string, header and path value a view uses is validated by its
model in adapter.web.api.schemas. A refusal says the field's rule in the patient's language and
never echoes the value; nothing here logs a value or an exception's text.
"""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path
from typing import TypeVar

from flask import Blueprint, Flask, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from adapter.i18n import N_
from adapter.refusals import TEXTS, Refusal
from adapter.web.api.errors import error, refused, say
from adapter.web.api.schemas import Request

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024  # the largest body (a new patient) is under 1 KiB
MAX_DEPTH = 4  # bodies are flat objects
MAX_QUERY_PARAMETERS = 20
MAX_FORM_PARTS = 20

M = TypeVar("M", bound=Request)

GENERIC = N_("请求格式不正确，请刷新页面后重试")
TOO_LARGE = N_("请求内容过多，请刷新页面后重试")


class Invalid(Exception):
    """A request part did not match its model; ``answer`` is what the client gets."""

    def __init__(self, answer: ResponseReturnValue) -> None:
        super().__init__("invalid request")  # never the value
        self.answer = answer


def _answer(model: type[Request], exc: ValidationError | None) -> ResponseReturnValue:
    """The first failure as the API's error: a refusal (422) or a malformed request (400)."""
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0] \
        if exc is not None else {"type": "json_invalid", "loc": ()}
    kind = first["type"]
    field = str(first["loc"][0]) if first["loc"] else ""  # "": the request as a whole
    if kind in TEXTS:  # a validator said no with a refusal's code
        return refused(Refusal(kind), 422)
    if kind == "literal_error" and field in model.refusals:  # a value outside its list
        return refused(Refusal(model.refusals[field]), 422)
    code = model.field_codes.get(field, model.code)
    message = model.messages.get(field) or model.messages.get("") or GENERIC
    return error(code, say(message), 400)


def _depth(data: bytes) -> int:
    """How deep a JSON text nests, without parsing it (strings cannot open a bracket)."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")


def body(model: type[M]) -> M:
    """The JSON body as ``model``; raises Invalid (answer 400/422) or 413 past the limit."""
    data = request.get_data(cache=True)  # bounded by request.max_content_length (413)
    if not request.is_json or _depth(data) > MAX_DEPTH:
        raise Invalid(_answer(model, None))
    try:
        return model.model_validate_json(data, strict=True)
    except ValidationError as exc:
        raise Invalid(_answer(model, exc)) from None


def query(model: type[M]) -> M:
    """The query string as ``model`` (the first value of a repeated parameter)."""
    try:
        return model.model_validate_strings(request.args.to_dict(), strict=True)
    except ValidationError as exc:
        raise Invalid(_answer(model, exc)) from None


def headers(model: type[M]) -> M:
    """The request's headers as ``model``."""
    try:
        return model.model_validate_strings(dict(request.headers.items()), strict=True)
    except ValidationError as exc:
        raise Invalid(_answer(model, exc)) from None


def valid(model: type[Request], **values: str) -> bool:
    """Whether path values match ``model`` (a view answers its own 404 when they do not)."""
    try:
        model.model_validate_strings(values, strict=True)
    except ValidationError:
        return False
    return True


def _bound_request() -> ResponseReturnValue | None:
    request.max_content_length = MAX_BODY_BYTES
    request.max_form_parts = MAX_FORM_PARTS
    if (request.content_length or 0) > MAX_BODY_BYTES or \
            len(request.args) > MAX_QUERY_PARAMETERS:
        return _too_large()
    return None


def _too_large() -> ResponseReturnValue:
    return error("request.too_large", say(TOO_LARGE), 413)


def _invalid(exc: Invalid) -> ResponseReturnValue:
    return exc.answer


def _unexpected(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    # Neither the exception's text nor its arguments: a database error carries the statement's
    # parameters (a name, a number). Where it happened is enough to find it.
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{'/'.join(Path(frame.filename).parts[-2:])}:{frame.lineno}" if frame else "?"
    logger.error("%s %s failed: %s at %s", request.method, request.url_rule or "?",
                 type(exc).__name__, where)
    return error("server.error", say(N_("服务暂时出现问题，请稍后再试")), 500)


_HTTP_CODES = {404: "not_found", 405: "method.not_allowed", 413: "request.too_large",
               415: "media_type.unsupported"}


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    """/api/v1 answers its own shape for HTTP errors too (no HTML page); others as Flask does."""
    if not request.path.startswith(PREFIX + "/") or exc.code is None or exc.code < 400:
        return exc
    if exc.code == 413:
        return _too_large()
    if exc.code >= 500:
        return error("server.error", say(N_("服务暂时出现问题，请稍后再试")), exc.code)
    answer = error(_HTTP_CODES.get(exc.code, f"http.{exc.code}"), say(GENERIC), exc.code)
    response = exc.get_response()
    if "Allow" in response.headers:  # 405 names the methods that are allowed
        body, status = answer
        return body, status, {"Allow": response.headers["Allow"]}
    return answer


def init_api(bp: Blueprint) -> None:
    """Bound every /api/v1 request and answer its failures in the API's shape."""
    bp.before_request(_bound_request)
    bp.register_error_handler(Invalid, _invalid)
    bp.register_error_handler(Exception, _unexpected)


def init_app(app: Flask) -> None:
    """HTTP errors under /api/v1 (unknown path, wrong method, too large) as the API's JSON."""
    app.register_error_handler(HTTPException, _http_error)
