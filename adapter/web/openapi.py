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
                    "type": "object", "required": ["auth_code", "state"],
                    "properties": {"auth_code": {"type": "string"},
                                   "state": {"type": "string", "description":
                                             "the state given by /session/login-url"}}}}}},
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
        "/session/login-url": {"get": {
            "summary": "The wallet's authorize URL, redirecting back with auth_code",
            "parameters": [{"name": "redirect_uri", "in": "query", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "platform", "in": "query", "required": False,
                            "description": "the wallet (default: the first configured)",
                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "{url, state, platform}"}, "400": _ERROR}}},
        "/departments": {"get": {
            "summary": "Departments with their doctors and slot release times",
            "responses": {"200": {"description": "{departments: [...]}"}}}},
        "/slots": {"get": {
            "summary": "One day's slots of a department and/or doctor",
            "parameters": [
                {"name": "date", "in": "query", "required": True,
                 "schema": {"type": "string", "format": "date"}},
                {"name": "department", "in": "query", "schema": {"type": "string"}},
                {"name": "doctor", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Slots", "content": {"application/json": {
                "schema": {"type": "object", "properties": {"slots": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Slot"}}}}}}},
                "400": _ERROR}}},
        "/bookings": {
            "post": {
                "summary": "Hold a slot for a patient until the payment deadline",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                                "schema": {"type": "string", "maxLength": 100}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["slot_id", "patient_id"], "properties": {
                        "slot_id": {"type": "integer"}, "patient_id": {"type": "integer"}}}}}},
                "responses": {"201": {"description": "Held", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Booking"}}}},
                    "400": _ERROR, "401": _ERROR, "404": _ERROR, "409": _ERROR,
                    "422": _ERROR},
            },
            "get": {"summary": "The account's bookings",
                    "responses": {"200": {"description": "{bookings: [Booking]}"},
                                  "401": _ERROR}},
        },
        "/bookings/{public_id}": {"get": {
            "summary": "One booking", "parameters": [{"$ref": "#/components/parameters/BookingId"}],
            "responses": {"200": {"description": "Booking", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Booking"}}}},
                "401": _ERROR, "404": _ERROR}}},
        "/bookings/{public_id}/cancel": {"post": {
            "summary": "Cancel (unpaid: at once; paid: before the deadline, refunded)",
            "parameters": [{"$ref": "#/components/parameters/BookingId"}],
            "responses": {"200": {"description": "Booking", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Booking"}}}},
                "401": _ERROR, "404": _ERROR, "409": _ERROR, "422": _ERROR, "503": _ERROR}}},
        "/payments": {"post": {
            "summary": "Create (or return) the wallet trade paying a held booking",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["booking_id"], "properties": {
                    "booking_id": {"type": "string"}, "return_url": {"type": "string"}}}}}},
            "responses": {"201": {"description": "{out_trade_no, trade_no, amount, cashier_url, "
                                                 "platform, pay}: cashier_url is null when the "
                                                 "wallet pays in its own app, with pay"},
                          "401": _ERROR, "404": _ERROR, "409": _ERROR, "503": _ERROR}}},
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
        "parameters": {
            "BookingId": {"name": "public_id", "in": "path", "required": True,
                          "schema": {"type": "string"}},
        },
        "schemas": {
            "Booking": {"type": "object", "properties": {
                "id": {"type": "string"},
                "status": {"enum": ["pending_payment", "confirming", "confirmed", "cancelling",
                                    "cancelled",
                                    "expired", "rejected", "no_show"]},
                "status_text": {"type": "string"},
                "status_reason": {"type": "string"},
                "refund": {"type": ["object", "null"], "properties": {
                    "status": {"enum": ["pending", "done"]}, "amount": {"type": "string"}}},
                "patient": {"type": "object"}, "department": {"type": "object"},
                "doctor": {"type": "object"},
                "visit_date": {"type": "string", "format": "date"},
                "start_at": {"type": "string", "format": "date-time"},
                "end_at": {"type": "string", "format": "date-time"},
                "fee": {"type": "string", "description": "yuan, two decimals"},
                "hold_expires_at": {"type": "string", "format": "date-time"},
                "can_cancel": {"type": "boolean"}, "can_pay": {"type": "boolean"}}},
            "Slot": {"type": "object", "properties": {
                "id": {"type": "integer"}, "department_code": {"type": "string"},
                "doctor_code": {"type": "string"}, "doctor_name": {"type": "string"},
                "doctor_title": {"type": "string"},
                "start_at": {"type": "string", "format": "date-time"},
                "end_at": {"type": "string", "format": "date-time"},
                "fee": {"type": "string"}, "fee_fen": {"type": "integer"},
                "capacity": {"type": "integer"}, "remaining": {"type": "integer"},
                "status": {"enum": ["open", "full", "closed", "not_released", "past"]},
                "release_at": {"type": "string", "format": "date-time"}}},
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
