"""The OpenAPI 3.1 document of API v1, served at ``/api/v1/openapi.json``.

Built, not written: every schema is the pydantic model the routes validate and serialise with
(``app.api.schemas``), and ``OPERATIONS`` says which model each path and method takes and
answers with. ``tests/api/test_openapi.py`` validates the document and checks that its paths
and the URL map agree both ways; ``tests/api/conftest.py`` validates every response the API
tests receive against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app import __version__
from app.api import schemas as s
from app.api.schemas import ERROR_CODES

__all__ = ["ERROR_CODES", "OPERATIONS", "document"]

REF = "#/components/schemas/{model}"
# Status -> the shared response it refers to.
ERROR_RESPONSES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    422: "Unprocessable",
    500: "InternalError",
}
PATH_PARAMETERS = {
    "booking_id": s.Id,
    "person_id": s.Id,
    "group_id": s.Id,
    "slug": str,
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    ok: type[BaseModel]
    description: str = ""
    status: int = 200
    query: type[s.Query] | None = None
    body: type[s.Body] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False


OPERATIONS: list[Operation] = [
    Operation(
        "get",
        "/openapi.json",
        "getOpenApi",
        "This document",
        s.OpenApiDocument,
        public=True,
    ),
    # --- booking types
    Operation(
        "get",
        "/booking-types",
        "listBookingTypes",
        "Active booking types",
        s.BookingTypeList,
        description="Active booking types, by name.",
    ),
    Operation(
        "post",
        "/booking-types",
        "createBookingType",
        "Create a booking type",
        s.BookingType,
        description="Needs booking_types.manage. Fields left out take the defaults.",
        status=201,
        body=s.BookingTypeCreate,
        errors=(400, 403),
    ),
    Operation(
        "patch",
        "/booking-types/{slug}",
        "updateBookingType",
        "Change some fields of a booking type (active or not)",
        s.BookingType,
        description="Needs booking_types.manage. Fields left out stay as they are.",
        body=s.BookingTypePatch,
        errors=(400, 403, 404),
    ),
    # --- availability
    Operation(
        "get",
        "/availability",
        "getAvailability",
        "Bookable slots of a booking type in a range",
        s.SlotList,
        description=(
            "For staff holding bookings.create. Slots come from the type's availability source "
            "(B6) unless `people` is given. Times carry `tz`'s offset. Slots by start."
        ),
        query=s.AvailabilityQuery,
        errors=(400, 403),
    ),
    # --- people
    Operation(
        "get",
        "/people",
        "listPeople",
        "People, by name",
        s.PersonList,
        description=(
            "Needs calendar.view_team (active staff) or people.manage (anyone, with the role "
            "and active filters). Without role, only staff are listed, as before."
        ),
        query=s.PeopleQuery,
        errors=(400, 403, 404),
    ),
    Operation(
        "post",
        "/people",
        "createPerson",
        "Add a person",
        s.Person,
        description=(
            "Needs people.manage, and every permission of the role given. The person has no "
            "password until they follow the invitation (invite: true). A taken email is 409."
        ),
        status=201,
        body=s.PersonCreate,
        errors=(400, 403, 409),
    ),
    Operation(
        "get",
        "/people/{person_id}",
        "getPerson",
        "One person",
        s.Person,
        description="people.manage: anyone; calendar.view_team: active staff (others 404).",
        errors=(403, 404),
    ),
    Operation(
        "patch",
        "/people/{person_id}",
        "updatePerson",
        "Change some fields of a person",
        s.Person,
        description=(
            "Needs people.manage and every permission of the person's role (and of a new "
            "role). The last active owner cannot be demoted or deactivated."
        ),
        body=s.PersonPatch,
        errors=(400, 403, 404, 409),
    ),
    Operation(
        "put",
        "/people/{person_id}/working-hours",
        "setWorkingHours",
        "Replace a person's weekly working hours",
        s.WorkingHours,
        description=(
            "One's own with hours.edit_own; anyone's with people.manage (and every permission "
            "of their role). Hours are wall-clock times in the person's zone."
        ),
        body=s.WorkingHoursPut,
        errors=(400, 403, 404),
    ),
    # --- groups
    Operation(
        "get",
        "/groups",
        "listGroups",
        "Groups, by name",
        s.GroupList,
        description="Needs people.manage or booking_types.manage.",
        errors=(403,),
    ),
    Operation(
        "post",
        "/groups",
        "createGroup",
        "Create a group",
        s.Group,
        description="Needs people.manage. A name already in use is 409.",
        status=201,
        body=s.GroupCreate,
        errors=(400, 403, 409),
    ),
    Operation(
        "put",
        "/groups/{group_id}/members",
        "setGroupMembers",
        "Replace a group's members",
        s.Group,
        description="Needs people.manage. Members must be active staff.",
        body=s.GroupMembers,
        errors=(400, 403, 404),
    ),
    # --- bookings
    Operation(
        "get",
        "/bookings",
        "listBookings",
        "Bookings overlapping a range that the caller may see",
        s.BookingList,
        description="Bookings by start (every status).",
        query=s.BookingsQuery,
        errors=(400,),
    ),
    Operation(
        "post",
        "/bookings",
        "createBooking",
        "Book a slot",
        s.Booking,
        description=(
            "Needs bookings.create, and bookings.assign to book anyone but oneself. "
            "Provisional when the type requires approval, else confirmed. The people must be "
            "free by the same rules that offer slots. A learner books only for themself (S7): "
            "a type bookable by learners (403 otherwise), at a time its source offers in the "
            "public booking window, without people (who takes it is chosen for them)."
        ),
        status=201,
        query=s.TzQuery,
        body=s.BookingCreate,
        errors=(400, 403, 409, 422),
    ),
    Operation(
        "get",
        "/bookings/{booking_id}",
        "getBooking",
        "One booking",
        s.Booking,
        query=s.TzQuery,
        errors=(400, 404),
    ),
    Operation(
        "patch",
        "/bookings/{booking_id}",
        "updateBooking",
        "Reschedule, approve/reject/complete, or edit details",
        s.Booking,
        description=(
            "The booking after the change. A learner may move (start) their own booking of a "
            "type bookable by learners until the booking window closes; anything else is 403."
        ),
        query=s.TzQuery,
        body=s.BookingPatch,
        errors=(400, 403, 404, 409, 422),
    ),
    Operation(
        "post",
        "/bookings/{booking_id}/cancel",
        "cancelBooking",
        "Cancel a provisional or confirmed booking",
        s.Booking,
        description=(
            "Needs bookings.delete; a learner may cancel their own booking of a type bookable "
            "by learners until the booking window closes. Cancelling twice is "
            "invalid_transition."
        ),
        query=s.TzQuery,
        errors=(400, 403, 404, 409),
    ),
]


def _models() -> list[tuple[type[BaseModel], str]]:
    seen: dict[type[BaseModel], str] = {s.Error: "serialization"}
    for op in OPERATIONS:
        seen.setdefault(op.ok, "serialization")
        if op.body is not None:
            seen.setdefault(op.body, "validation")
    return list(seen.items())


def _schemas() -> dict:
    _, top = models_json_schema(_models(), ref_template=REF, schema_generator=s.SchemaGenerator)
    return top["$defs"]


def _ref(model: type[BaseModel]) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _parameters(op: Operation) -> list[dict]:
    from pydantic import TypeAdapter

    found = []
    for name, kind in PATH_PARAMETERS.items():
        if "{" + name + "}" in op.path:
            schema = TypeAdapter(kind).json_schema()
            found.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        schema = op.query.model_json_schema(schema_generator=s.SchemaGenerator)
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop = dict(prop)
            description = prop.pop("description", "")
            if "anyOf" in prop:  # "str | None = None": in a query string, simply left out
                prop = {
                    **next(p for p in prop["anyOf"] if p.get("type") != "null"),
                    **{k: v for k, v in prop.items() if k not in ("anyOf", "default")},
                }
            found.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": description,
                    "schema": prop,
                }
            )
    return found


def _responses() -> dict:
    error = {"application/json": {"schema": _ref(s.Error)}}
    described = {
        "BadRequest": (
            "Bad input: missing_parameter, invalid_json, validation_error, malformed_datetime, "
            "unknown_zone, unknown_booking_type, end_before_start, range_too_long."
        ),
        "Unauthorized": "unauthorized: no token, or an invalid or revoked one.",
        "Forbidden": "forbidden: the token's user lacks the permission.",
        "NotFound": "not_found: missing, or not visible to the caller (the same answer).",
        "Conflict": (
            "conflict: someone is already held or unavailable at that time, or the email or "
            "name is taken; invalid_transition: the booking's status does not allow the change."
        ),
        "Unprocessable": (
            "validation_error: well-formed but refused by the booking rules "
            "(e.g. a location mode the type does not offer)."
        ),
        "InternalError": "internal_error: nothing was changed; try again later.",
    }
    responses = {name: {"description": text, "content": error} for name, text in described.items()}
    responses["Unauthorized"]["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="slotbook"'}
    }
    return responses


def _operation(op: Operation) -> dict:
    # 400: any request may be refused at the edge (a NUL byte or a lone surrogate, app/guard.py).
    statuses = sorted(set(op.errors) | {400, 500} | (set() if op.public else {401}))
    out: dict = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "responses": {
            str(op.status): {
                "description": op.description or op.summary,
                "content": {"application/json": {"schema": _ref(op.ok)}},
            },
            **{
                str(status): {"$ref": f"#/components/responses/{ERROR_RESPONSES[status]}"}
                for status in statuses
            },
        },
    }
    if op.description:
        out["description"] = op.description
    if op.public:
        out["security"] = []
    parameters = _parameters(op)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    return out


@cache
def _paths() -> dict:
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return paths


@cache
def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Slotbook API",
            "version": f"1 ({__version__})",
            "description": (
                "Availability, bookings, people, groups and booking types for scripts and "
                "integrations. Authenticate every call (except this document) with a personal "
                "API token: `Authorization: Bearer <token>` (create one with `flask tokens "
                "create EMAIL`). Session cookies are ignored. Errors are JSON `{error, "
                "message}` with a 4xx status; `error` is a stable code. Times are UTC unless "
                "`tz` is given."
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
            "responses": _responses(),
        },
    }
