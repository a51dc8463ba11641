"""The OpenAPI 3.1 document of API v1, served at ``/api/v1/openapi.json``.

A Python dict rather than a YAML file: no YAML parser at runtime, and the error codes, field
limits and paths come from the same constants the code uses. ``tests/api/test_openapi.py``
validates it and checks that its paths and the URL map agree both ways.
"""

from __future__ import annotations

from app import __version__
from app.api.params import MAX_PEOPLE, MAX_RANGE

ERROR_CODES = [
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "missing_parameter",
    "invalid_json",
    "validation_error",
    "malformed_datetime",
    "unknown_zone",
    "unknown_booking_type",
    "end_before_start",
    "range_too_long",
    "conflict",
    "invalid_transition",
    "internal_error",
]

DATETIME_RULES = (
    "ISO 8601 date-time with a UTC offset, e.g. `2025-03-03T09:00:00+00:00` or "
    "`2025-03-03T09:00:00Z`. A value without an offset is accepted only when the `tz` query "
    "parameter is given, and is then read as wall-clock time in that zone (a time skipped by "
    "a clock change is refused; a repeated one means its first occurrence). Without `tz` it "
    "is `malformed_datetime`."
)


def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*names: str) -> dict:
    return {code: _ref("responses", name) for code, name in (n.split(":") for n in names)}


AUTH_ERRORS = ("401:Unauthorized",)
INSTANT = {"type": "string", "format": "date-time"}
ID = {"type": "integer", "minimum": 1}


def _schemas() -> dict:
    nullable_id = {"type": ["integer", "null"], "minimum": 1}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "enum": ERROR_CODES},
                "message": {"type": "string", "description": "For people; may change."},
            },
        },
        "BookingType": {
            "type": "object",
            "required": [
                "slug",
                "name",
                "duration_minutes",
                "buffer_before_minutes",
                "buffer_after_minutes",
                "location_modes",
                "requires_approval",
                "bookable_by",
                "availability_source",
            ],
            "properties": {
                "slug": {"type": "string"},
                "name": {"type": "string"},
                "duration_minutes": {"type": "integer", "minimum": 1},
                "buffer_before_minutes": {"type": "integer", "minimum": 0},
                "buffer_after_minutes": {"type": "integer", "minimum": 0},
                "location_modes": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["face_to_face", "remote", "teams"]},
                },
                "requires_approval": {"type": "boolean"},
                "bookable_by": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["public", "learner", "staff"]},
                },
                "availability_source": {
                    "type": "string",
                    "enum": ["default", "assigned_agent", "group"],
                },
            },
        },
        "Slot": {
            "type": "object",
            "required": ["start", "end", "people"],
            "properties": {
                "start": INSTANT,
                "end": INSTANT,
                "people": {
                    "type": "array",
                    "items": ID,
                    "description": "Free people, least-loaded first (the order of assignment).",
                },
            },
        },
        "Person": {
            "type": "object",
            "required": ["id", "name", "email", "role", "timezone"],
            "properties": {
                "id": ID,
                "name": {"type": "string"},
                "email": {"type": "string", "format": "email"},
                "role": {"type": "string", "description": "The role's slug, e.g. agent."},
                "timezone": {"type": "string", "description": "IANA zone name."},
            },
        },
        "Attendee": {
            "type": "object",
            "required": ["id", "user_id", "email", "name", "role"],
            "properties": {
                "id": ID,
                "user_id": nullable_id,
                "email": {"type": ["string", "null"]},
                "name": {"type": "string"},
                "role": {
                    "type": "string",
                    "enum": ["agent", "learner", "employer", "mentor", "assessor", "guest"],
                },
            },
        },
        "Booking": {
            "type": "object",
            "required": [
                "id",
                "uid",
                "status",
                "booking_type",
                "title",
                "description",
                "start",
                "end",
                "location_mode",
                "location_detail",
                "owner",
                "learner",
                "attendees",
                "rebook_of",
                "created_at",
                "updated_at",
                "sequence",
            ],
            "properties": {
                "id": ID,
                "uid": {"type": "string", "description": "Stable iCalendar UID."},
                "status": {
                    "type": "string",
                    "enum": ["provisional", "confirmed", "rejected", "cancelled", "completed"],
                },
                "booking_type": {"type": "string", "description": "The booking type's slug."},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "start": INSTANT,
                "end": INSTANT,
                "location_mode": {"type": "string", "enum": ["face_to_face", "remote", "teams"]},
                "location_detail": {"type": "string"},
                "owner": nullable_id,
                "learner": nullable_id,
                "attendees": {"type": "array", "items": _ref("schemas", "Attendee")},
                "rebook_of": nullable_id,
                "created_at": INSTANT,
                "updated_at": INSTANT,
                "sequence": {"type": "integer", "minimum": 0},
            },
        },
        "BookingCreate": {
            "type": "object",
            "required": ["booking_type", "start"],
            "additionalProperties": False,
            "properties": {
                "booking_type": {"type": "string", "description": "A booking type's slug."},
                "start": {**INSTANT, "description": DATETIME_RULES},
                "people": {
                    "type": "array",
                    "items": ID,
                    "minItems": 1,
                    "maxItems": MAX_PEOPLE,
                    "description": (
                        "Active staff ids; the first owns the booking. Omitted: the first "
                        "(least-loaded) person the type's availability source offers for "
                        "exactly this start, or 409 conflict when nobody is free."
                    ),
                },
                "learner": {**ID, "description": "An active learner's id."},
                "location_mode": {
                    "type": "string",
                    "description": "One of the type's location modes; default its first.",
                },
                "location_detail": {"type": "string", "maxLength": 500},
                "description": {"type": "string", "maxLength": 10000},
            },
        },
        "BookingPatch": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "description": (
                "All given changes happen in one transaction, in this order: start "
                "(reschedule), description/location_detail/location_mode (edit), status. If "
                "one is refused, "
                "none happens."
            ),
            "properties": {
                "start": {**INSTANT, "description": "Reschedule. " + DATETIME_RULES},
                "status": {
                    "type": "string",
                    "enum": ["confirmed", "rejected", "completed"],
                    "description": (
                        "confirmed approves a provisional booking, rejected rejects it, "
                        "completed marks a started confirmed booking done. To cancel, POST "
                        "to /bookings/{booking_id}/cancel."
                    ),
                },
                "description": {"type": "string", "maxLength": 10000},
                "location_detail": {"type": "string", "maxLength": 500},
                "location_mode": {
                    "type": "string",
                    "enum": ["face_to_face", "remote", "teams"],
                    "description": "One of the booking type's modes; teams removes the "
                    "calendar events Slotbook wrote (the Teams invitation takes over).",
                },
            },
        },
    }


def _parameters() -> dict:
    def query(name: str, description: str, required: bool = False, schema=None) -> dict:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "description": description,
            "schema": schema or {"type": "string"},
        }

    range_note = f"The range [start, end) may span at most {MAX_RANGE.days} days. "
    return {
        "BookingId": {"name": "booking_id", "in": "path", "required": True, "schema": ID},
        "Start": query("start", "Range start. " + range_note + DATETIME_RULES, True, INSTANT),
        "End": query("end", "Range end (exclusive); must be after start.", True, INSTANT),
        "Tz": query(
            "tz",
            "IANA time zone (e.g. Europe/London): times in the response carry its offset, and "
            "datetimes without an offset are read in it. Default UTC (and then datetimes "
            "must carry an offset).",
        ),
    }


def _responses() -> dict:
    error = _ref("schemas", "Error")
    return {
        "BadRequest": _json(
            error,
            "Bad input: missing_parameter, invalid_json, validation_error, malformed_datetime, "
            "unknown_zone, unknown_booking_type, end_before_start, range_too_long.",
        ),
        "Unauthorized": {
            **_json(error, "unauthorized: no token, or an invalid or revoked one."),
            "headers": {
                "WWW-Authenticate": {
                    "schema": {"type": "string"},
                    "description": 'Bearer realm="slotbook"',
                }
            },
        },
        "Forbidden": _json(error, "forbidden: the token's user lacks the permission."),
        "NotFound": _json(
            error, "not_found: missing, or not visible to the caller (the same answer)."
        ),
        "Conflict": _json(
            error,
            "conflict: someone is already held or unavailable at that time; "
            "invalid_transition: the booking's status does not allow the change.",
        ),
        "Unprocessable": _json(
            error,
            "validation_error: well-formed but refused by the booking rules "
            "(e.g. a location mode the type does not offer).",
        ),
    }


def _booking_ok(description: str, status: str = "200") -> dict:
    return {status: _json(_ref("schemas", "Booking"), description)}


def _paths() -> dict:
    tz, start, end, booking_id = (
        _ref("parameters", n) for n in ("Tz", "Start", "End", "BookingId")
    )
    ids_param = {
        "name": "people",
        "in": "query",
        "required": False,
        "description": (
            "Comma-separated staff ids: slots where every one of them is free (instead of "
            "the type's availability source)."
        ),
        "schema": {"type": "string", "pattern": r"^[0-9]+(,[0-9]+)*$"},
    }
    return {
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
        "/booking-types": {
            "get": {
                "operationId": "listBookingTypes",
                "summary": "Active booking types",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["booking_types"],
                            "properties": {
                                "booking_types": {
                                    "type": "array",
                                    "items": _ref("schemas", "BookingType"),
                                }
                            },
                        },
                        "Active booking types, by name.",
                    ),
                    **_errors(*AUTH_ERRORS),
                },
            }
        },
        "/availability": {
            "get": {
                "operationId": "getAvailability",
                "summary": "Bookable slots of a booking type in a range",
                "description": (
                    "For staff holding bookings.create. Slots come from the type's availability "
                    "source (B6) unless `people` is given. Times carry `tz`'s offset."
                ),
                "parameters": [
                    {
                        "name": "booking_type",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "A booking type's slug.",
                    },
                    start,
                    end,
                    {**_parameters()["Tz"], "required": True},
                    {
                        "name": "learner",
                        "in": "query",
                        "required": False,
                        "schema": ID,
                        "description": "A learner's id (their assigned agent, B6).",
                    },
                    ids_param,
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["slots"],
                            "properties": {
                                "slots": {"type": "array", "items": _ref("schemas", "Slot")}
                            },
                        },
                        "Slots by start.",
                    ),
                    **_errors("400:BadRequest", *AUTH_ERRORS, "403:Forbidden"),
                },
            }
        },
        "/people": {
            "get": {
                "operationId": "listPeople",
                "summary": "Active staff, optionally one group's",
                "description": "Needs calendar.view_team.",
                "parameters": [
                    {
                        "name": "group",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "A group's slug; unknown is 404.",
                    }
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["people"],
                            "properties": {
                                "people": {"type": "array", "items": _ref("schemas", "Person")}
                            },
                        },
                        "People by name.",
                    ),
                    **_errors(*AUTH_ERRORS, "403:Forbidden", "404:NotFound"),
                },
            }
        },
        "/bookings": {
            "get": {
                "operationId": "listBookings",
                "summary": "Bookings overlapping a range that the caller may see",
                "parameters": [
                    start,
                    end,
                    tz,
                    {
                        "name": "person",
                        "in": "query",
                        "required": False,
                        "schema": ID,
                        "description": "Only bookings this user owns, attends or is learner of.",
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["bookings"],
                            "properties": {
                                "bookings": {"type": "array", "items": _ref("schemas", "Booking")}
                            },
                        },
                        "Bookings by start (every status).",
                    ),
                    **_errors("400:BadRequest", *AUTH_ERRORS),
                },
            },
            "post": {
                "operationId": "createBooking",
                "summary": "Book a slot",
                "description": (
                    "Needs bookings.create, and bookings.assign to book anyone but oneself. "
                    "Provisional when the type requires approval, else confirmed. The people "
                    "must be free by the same rules that offer slots."
                ),
                "parameters": [tz],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("schemas", "BookingCreate")}},
                },
                "responses": {
                    **_booking_ok("Created.", "201"),
                    **_errors(
                        "400:BadRequest",
                        *AUTH_ERRORS,
                        "403:Forbidden",
                        "409:Conflict",
                        "422:Unprocessable",
                    ),
                },
            },
        },
        "/bookings/{booking_id}": {
            "parameters": [booking_id],
            "get": {
                "operationId": "getBooking",
                "summary": "One booking",
                "parameters": [tz],
                "responses": {
                    **_booking_ok("The booking."),
                    **_errors("400:BadRequest", *AUTH_ERRORS, "404:NotFound"),
                },
            },
            "patch": {
                "operationId": "updateBooking",
                "summary": "Reschedule, approve/reject/complete, or edit details",
                "parameters": [tz],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("schemas", "BookingPatch")}},
                },
                "responses": {
                    **_booking_ok("The booking after the change."),
                    **_errors(
                        "400:BadRequest",
                        *AUTH_ERRORS,
                        "403:Forbidden",
                        "404:NotFound",
                        "409:Conflict",
                        "422:Unprocessable",
                    ),
                },
            },
        },
        "/bookings/{booking_id}/cancel": {
            "parameters": [booking_id],
            "post": {
                "operationId": "cancelBooking",
                "summary": "Cancel a provisional or confirmed booking",
                "description": "Needs bookings.delete. Cancelling twice is invalid_transition.",
                "parameters": [tz],
                "responses": {
                    **_booking_ok("The cancelled booking."),
                    **_errors(
                        "400:BadRequest",
                        *AUTH_ERRORS,
                        "403:Forbidden",
                        "404:NotFound",
                        "409:Conflict",
                    ),
                },
            },
        },
    }


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Slotbook API",
            "version": f"1 ({__version__})",
            "description": (
                "Availability and bookings for scripts and integrations. Authenticate every "
                "call (except this document) with a personal API token: "
                "`Authorization: Bearer <token>` (create one with `flask tokens create EMAIL`). "
                "Session cookies are ignored. Errors are JSON `{error, message}` with a 4xx "
                "status; `error` is a stable code. Times are UTC unless `tz` is given."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token.",
                }
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "responses": _responses(),
        },
    }
