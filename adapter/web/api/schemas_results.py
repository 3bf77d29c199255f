"""The API's answers about results (GET /results, GET /results/{result_id}); requests and the
shared answer types are in adapter.web.api.schemas."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field

from adapter.web.api.schemas import Answer


class ResultPatient(Answer):
    """Whom a result is about: one of the account's own verified links."""

    id: int
    name: str
    relation: str


class ResultSummary(Answer):
    """A released result in the list."""

    id: int
    title: str
    kind: str
    status: Literal["final", "corrected"]
    corrected: bool
    critical: Annotated[bool, Field(description="holds a critical value: contact the hospital")]
    abnormal: Annotated[int, Field(description="how many values are flagged abnormal")]
    observed_at: dt.datetime | None
    released_at: dt.datetime | None
    patient: ResultPatient
    url: Annotated[str, Field(description="the report page")]


class Results(Answer):
    """GET /results."""

    results: list[ResultSummary]


class TrendPoint(Answer):
    """One value of an analyte in the person's released results."""

    result_id: int
    observed_at: dt.datetime | None
    value: Annotated[str, Field(description="a decimal string, never a float")]
    abnormal: bool


class ResultFile(Answer):
    """A report file (the PDF of an imaging report)."""

    id: int
    content_type: str
    size: int
    url: str


class ResultObservation(Answer):
    """One value of a result, with its reference range and flags."""

    code: str
    name: str
    value_type: str
    value: Annotated[str, Field(description="as the laboratory wrote it")]
    number: Annotated[str, Field(description="a decimal string (NM, SN), else empty")]
    comparator: str
    units: str
    reference_range: str
    flags: list[str]
    abnormal: bool
    critical: bool
    file: ResultFile | None
    file_problem: Annotated[str, Field(description="why a file is missing: too_large, "
                                                   "unreadable")]
    trend: Annotated[list[TrendPoint], Field(description="oldest first, this one last; empty "
                                                         "without earlier values")]


class Result(ResultSummary):
    """GET /results/{result_id}: the report."""

    observations: list[ResultObservation]


ANSWERS: tuple[type[Answer], ...] = (Results, Result)
