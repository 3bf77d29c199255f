"""The API's shapes of real-name binding (/account/binding); the shared types are in
adapter.web.api.schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from adapter.i18n import N_
from adapter.identity.binding import METHODS, WALLET
from adapter.web.api.schemas import (
    TEXT_PATTERN,
    Answer,
    DocumentNumber,
    DocumentType,
    NewPatient,
    PersonName,
    Phone,
    Request,
    _plain_text,
)

CARD_MAX = 512  # a health card QR's text is a few dozen characters
SMS_CODE_PATTERN = r"^[0-9]{6}$"

Method = Literal[METHODS]  # type: ignore[valid-type]
Card = Annotated[str, StringConstraints(min_length=1, max_length=CARD_MAX),
                 AfterValidator(_plain_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})]


class BindingBody(Request):
    """POST /account/binding: his_match gives name, document and phone; health_card a card."""

    method: Annotated[Method, Field(description="one the hospital offers (GET /account/binding)")]
    name: Annotated[PersonName | None, Field(description="his_match: as the hospital has it")] \
        = None
    document_type: DocumentType | None = None
    document_number: DocumentNumber | None = None
    phone: Annotated[Phone, Field(description="his_match: the mobile phone the hospital has")] \
        = ""
    card: Annotated[Card | None, Field(
        description="health_card: the code of the card's QR, or the card id")] = None

    code: ClassVar[str] = "binding.fields"
    field_codes: ClassVar[dict[str, str]] = {
        "name": "name.invalid", "phone": "phone.invalid",
        "document_number": "document_number.invalid", "card": "binding.card_empty"}
    refusals: ClassVar[dict[str, str]] = {"document_type": "document.type_unknown",
                                          "method": "binding.method_unknown"}
    messages: ClassVar[dict[str, str]] = {
        **{name: NewPatient.messages[name] for name in ("name", "phone", "document_number")},
        "card": N_("请扫描或输入电子健康卡。"),
        "": N_("请填写姓名、证件和手机号，或扫描电子健康卡")}

    @model_validator(mode="after")
    def _fields_of_method(self) -> BindingBody:
        if self.method == "his_match":
            if not (self.name and self.document_type and self.document_number and self.phone):
                raise PydanticCustomError("missing", "his_match: name, document and phone")
        elif not self.card:
            raise PydanticCustomError("missing", "health_card: card")
        return self


class BindingConfirmBody(Request):
    """POST /account/binding/confirm: the code the SMS brought."""

    sms_code: Annotated[str, StringConstraints(pattern=SMS_CODE_PATTERN),
                        Field(description="6 digits")]

    code: ClassVar[str] = "binding.code_format"
    messages: ClassVar[dict[str, str]] = {"sms_code": N_("请输入短信中的6位验证码")}


class BindingAnswer(Answer):
    """The account's real-name binding, and the code a started binding waits for."""

    certified: Annotated[bool, Field(description="may book, pay and read results")]
    bound_by: Annotated[Literal[(*METHODS, WALLET, "")], Field(  # type: ignore[misc]
        description="how: a binding method, wallet (the wallet certified the user), or ''")]
    bound_at: dt.datetime | None
    methods: Annotated[list[Method], Field(description="the methods the hospital offers")]
    confirmation: Annotated[Literal["", "sms_code"], Field(
        description="sms_code: POST /account/binding/confirm with the code sent")]
    phone: Annotated[str, Field(description="masked: where the code went")]
    code_expires_at: dt.datetime | None
    resend_at: Annotated[dt.datetime | None, Field(
        description="from when POST /account/binding/resend sends a new code")]
    tries_left: int


REQUESTS: tuple[type[Request], ...] = (BindingBody, BindingConfirmBody)
ANSWERS: tuple[type[Answer], ...] = (BindingAnswer,)
