"""The OpenAPI 3.1 description of /api/v1, served at /api/v1/openapi.json.

Written as data rather than generated: the API is small, and a test checks that every /api/v1
route is described here and nothing else is.
"""

from __future__ import annotations

from typing import Any

_ERROR = {
    "description": "Refused or failed; `message` is in the patient's language",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Future Hospital Adapter patient API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "paths": {
        "/openapi.json": {"get": {"summary": "This description",
                                  "responses": {"200": {"description": "OpenAPI document"}}}},
        "/session": {
            "post": {
                "summary": "Exchange a wallet auth_code for a patient session (cookie)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["auth_code"],
                    "properties": {"auth_code": {"type": "string"}}}}}},
                "responses": {
                    "201": {"description": "Signed in", "content": {"application/json": {
                        "schema": {"type": "object", "properties": {
                            "certified": {"type": "boolean"},
                            "patients": {"type": "array", "items": {
                                "$ref": "#/components/schemas/Patient"}}}}}}},
                    "400": _ERROR, "401": _ERROR, "422": _ERROR, "503": _ERROR,
                },
            },
            "delete": {"summary": "Sign out", "responses": {"204": {"description": "Done"}}},
        },
        "/patients": {
            "get": {
                "summary": "The signed-in user's patients",
                "responses": {"200": {"description": "Patients", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {
                        "patients": {"type": "array", "items": {
                            "$ref": "#/components/schemas/Patient"}}}}}}},
                    "401": _ERROR},
            },
            "post": {
                "summary": "Add a dependant (child, spouse, parent, other)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/NewPatient"}}}},
                "responses": {"201": {"description": "Added", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Patient"}}}},
                    "400": _ERROR, "401": _ERROR, "422": _ERROR},
            },
        },
    },
    "components": {
        "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {
                "error": {"type": "string", "description": "stable machine code"},
                "message": {"type": "string"}}},
            "Patient": {"type": "object", "properties": {
                "id": {"type": "integer"},
                "relation": {"enum": ["self", "child", "spouse", "parent", "other"]},
                "name": {"type": "string"},
                "document_type": {"type": "string"},
                "document_number": {"type": "string", "description": "masked"},
                "birth_date": {"type": ["string", "null"], "format": "date"},
                "sex": {"enum": ["F", "M", "U"]},
                "phone": {"type": "string", "description": "masked"}}},
            "NewPatient": {"type": "object",
                           "required": ["name", "document_type", "document_number", "relation"],
                           "properties": {
                               "name": {"type": "string"},
                               "document_type": {"type": "string"},
                               "document_number": {"type": "string"},
                               "relation": {"enum": ["child", "spouse", "parent", "other"]},
                               "guardian_consent": {"type": "boolean"},
                               "birth_date": {"type": "string", "format": "date"},
                               "phone": {"type": "string"}}},
        }
    },
}
