"""Every request and response shape of API v1, defined once as a pydantic model.

The same class validates what comes in (``Body.parse`` / ``Query.parse``), turns rows into
JSON on the way out (``Out.dump``) and gives the OpenAPI document its schema
(``app.api.openapi`` collects ``model_json_schema``). Refusals keep the API's contract: a
``ValidationError`` becomes ``ApiError`` with one of the stable codes (``ERROR_CODES``) and a
message for people, never pydantic's own error list.

Values whose reading depends on the request (datetimes read in the ``tz`` query zone, ids
given as digits in a query string) are checked by the existing ``app.api.params`` helpers,
called from validators: their ``ApiError`` passes through pydantic unchanged (it is not a
``ValueError``), so codes and messages are exactly those of the hand-written parsing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal, Self

from flask import request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import GenerateJsonSchema

from app.api import params
from app.api.errors import ApiError
from app.bookings import types as booking_types

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
    "teams_unavailable",  # Teams asked for without a working Microsoft 365 connection
]

DATETIME_EXAMPLE = "2025-03-03T09:00:00+00:00"
DATETIME_RULES = (
    "ISO 8601 date-time with a UTC offset, e.g. `2025-03-03T09:00:00+00:00` or "
    "`2025-03-03T09:00:00Z`. A value without an offset is accepted only when the `tz` query "
    "parameter is given, and is then read as wall-clock time in that zone (a time skipped by "
    "a clock change is refused; a repeated one means its first occurrence). Without `tz` it "
    "is `malformed_datetime`."
)
ZONE_RULES = "IANA time zone name such as Europe/London; unknown is `unknown_zone`."
LOCATION_MODES = Literal["face_to_face", "remote", "teams"]
AUDIENCES = Literal["public", "learner", "staff"]
SOURCES = Literal["default", "assigned_agent", "group"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
MAX_GROUP_MEMBERS = 5000
MAX_PER_PAGE = 500
DESCRIPTION_MAX = 10_000

Id = Annotated[int, Field(ge=1, le=params.MAX_ID)]
Instant = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
CLOCK_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
Clock = Annotated[str, Field(pattern=CLOCK_PATTERN, examples=["09:00"])]
TimeRange = Annotated[list[Clock], Field(min_length=2, max_length=2)]


def _omit_default(schema: dict) -> None:
    schema.pop("default", None)


def optional(*, schema: dict | None = None, **kwargs: Any) -> Any:
    """A field that may be left out but, when given, may not be null (PATCH-style): no
    ``default`` in the document; ``schema`` adds keywords to the field's schema there."""

    def extra(field_schema: dict) -> None:
        _omit_default(field_schema)
        field_schema.update(schema or {})

    return Field(None, json_schema_extra=extra, **kwargs)


class SchemaGenerator(GenerateJsonSchema):
    """JSON Schema 2020-12 (which OpenAPI 3.1 uses) without a title on every property."""

    def field_title_should_be_set(self, schema) -> bool:
        return False


# --- refusals -------------------------------------------------------------------------------


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc if part != "[key]") or "body"


def _message(error: dict) -> str:
    """One pydantic error as a sentence, in the words the hand-written parsing used."""
    where, kind, ctx = _where(error["loc"]), error["type"], error.get("ctx") or {}
    if kind == "string_type":
        return f"{where} must be a string."
    if kind == "string_too_long":
        return f"{where} may be at most {ctx['max_length']} characters."
    if kind == "string_too_short":
        return f"{where} may not be empty."
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == CLOCK_PATTERN:
        return f"{where} must be a time like 09:00 (HH:MM, 24-hour)."
    if kind == "less_than_equal" and ctx.get("le") == params.MAX_ID:
        return f"{where} must be a positive whole number (an id)."
    if kind in {"int_type", "int_parsing", "greater_than_equal", "less_than_equal"}:
        low, high = ctx.get("ge"), ctx.get("le")
        if kind == "less_than_equal":
            return f"{where} may be at most {high}."
        if kind == "greater_than_equal":
            return f"{where} must be at least {low}."
        return f"{where} must be a whole number."
    if kind == "bool_type" or kind == "bool_parsing":
        return f"{where} must be true or false."
    if kind in {"list_type", "dict_type", "model_type"}:
        shape = {"list_type": "a list", "dict_type": "an object"}.get(kind, "an object")
        return f"{where} must be {shape}."
    if kind == "too_short":
        return f"{where} must have at least {ctx['min_length']} item(s)."
    if kind == "too_long":
        return f"{where} may have at most {ctx['max_length']} item(s)."
    if kind == "literal_error":
        return f"{where} must be one of {ctx['expected']}."
    return f"{where}: {error['msg']}."


class Shape(BaseModel):
    """Base of every API shape. ``error_codes`` names a field-specific code (default
    ``validation_error``); ``error_messages`` a field-specific message."""

    model_config = ConfigDict(extra="forbid", strict=True)

    error_codes: ClassVar[dict[str, str]] = {}
    error_messages: ClassVar[dict[str, str]] = {}

    @classmethod
    def refusal(cls, exc: ValidationError) -> ApiError:
        errors = exc.errors(include_url=False)
        extra = [e for e in errors if e["type"] == "extra_forbidden"]
        if extra:
            allowed = ", ".join(sorted(cls.model_fields))
            return params.bad(
                "validation_error", f"Unknown field {extra[0]['loc'][0]!r}; allowed: {allowed}."
            )
        first = errors[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        if first["type"] == "missing":
            return params.bad("missing_parameter", f"{field} is required.")
        code = cls.error_codes.get(field, "validation_error")
        return params.bad(code, cls.error_messages.get(field) or _message(first))

    @classmethod
    def validate_data(cls, data: object) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise cls.refusal(exc) from None

    def given(self) -> dict[str, Any]:
        """The fields the caller sent, by name (a PATCH changes only these)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Body(Shape):
    """A JSON request body: an object, with no fields beyond the model's."""

    @classmethod
    def parse(cls) -> Self:
        raw = request.get_data(cache=True)
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise params.bad("invalid_json", "The request body must be a JSON object.")
        return cls.validate_data(data)


class Query(Shape):
    """Query-string parameters. An empty value counts as absent (as it always has); unknown
    parameters are ignored; values are strings unless a field reads them as numbers."""

    model_config = ConfigDict(extra="ignore", strict=True)

    @classmethod
    def parse(cls) -> Self:
        args = {k: v for k, v in request.args.items() if k in cls.model_fields and v != ""}
        return cls.validate_data(args)


class Out(Shape):
    """A response shape: every field is always present (required in the document)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    @classmethod
    def dump(cls, **values: Any) -> dict:
        return cls.model_validate(values).model_dump(mode="json")


# --- errors ---------------------------------------------------------------------------------


class Error(Out):
    """Every refusal: a stable machine-readable code and a message for people."""

    error: Literal[tuple(ERROR_CODES)]  # type: ignore[valid-type]
    message: str = Field(description="For people; may change.")


# --- booking types --------------------------------------------------------------------------


ORG_DEFAULT = "null: the organisation's setting applies."
NULL_MEANS = {
    "max_per_day": "null: no limit.",
    "planned_otj_minutes": "null: no off-the-job time planned (attendance is not recorded).",
}


def _bound(name: str, *, nullable: bool = False) -> Any:
    bound = booking_types.NUMBERS[name]
    description = f"{bound.unit.capitalize()}."
    if nullable:
        description += " " + NULL_MEANS.get(name, ORG_DEFAULT)
    return optional(ge=bound.low, le=bound.high, description=description)


class BookingType(Out):
    slug: str
    name: str
    description: str = Field(description="Shown to people booking (e.g. on the landing page).")
    duration_minutes: int = Field(ge=1)
    buffer_before_minutes: int = Field(ge=0)
    buffer_after_minutes: int = Field(ge=0)
    location_modes: list[LOCATION_MODES]
    default_location_mode: LOCATION_MODES | None = Field(
        description="The mode a new booking starts with (null: the first of location_modes)."
    )
    location_detail: str = Field(description="Address or meeting details new bookings carry.")
    face_to_face_detail: str = Field(
        description="The address a booking meeting face to face carries (else location_detail "
        "when face to face is the default mode)."
    )
    remote_detail: str = Field(
        description="The meeting link or dial-in a booking meeting remotely carries (else "
        "location_detail when remote is the default mode)."
    )
    requires_approval: bool
    bookable_by: list[AUDIENCES]
    availability_source: SOURCES
    group: int | None = Field(description="The group offering times when the source is group.")
    minimum_notice_minutes: int | None = Field(description=ORG_DEFAULT)
    earliest_day_public: int | None = Field(description=ORG_DEFAULT)
    earliest_day_staff: int | None = Field(description=ORG_DEFAULT)
    disabled_window_minutes: int | None = Field(description=ORG_DEFAULT)
    horizon_days: int | None = Field(description=ORG_DEFAULT)
    weekends_enabled: bool | None = Field(description=ORG_DEFAULT)
    max_per_day: int | None = Field(
        description="Bookings of this type per person per day; null: no limit."
    )
    colour: str = Field(description="How the type shows in calendars, as #rrggbb.")
    active: bool
    planned_otj_minutes: int | None = Field(
        description="Off-the-job minutes new bookings of this type plan (null: none planned)."
    )
    complete_on_verified: bool = Field(
        description="Bookings are completed when their off-the-job hours are verified."
    )


class BookingTypeList(Out):
    booking_types: list[BookingType]


class BookingTypeFields(Body):
    """Booking type fields as the API names them; each is checked by ``bookings.types``."""

    slug: str = optional(
        max_length=booking_types.SLUG_MAX,
        description="Lower-case letters, digits and hyphens; made from the name when left out.",
    )
    name: str = optional(max_length=booking_types.NAME_MAX)
    description: str = optional(max_length=booking_types.DESCRIPTION_MAX)
    duration_minutes: int = _bound("duration_minutes")
    buffer_before_minutes: int = _bound("buffer_before_minutes")
    buffer_after_minutes: int = _bound("buffer_after_minutes")
    location_modes: list[LOCATION_MODES] = optional(min_length=1, max_length=3)
    default_location_mode: LOCATION_MODES | None = optional(
        description="One of location_modes; null: the first of them."
    )
    location_detail: str = optional(max_length=booking_types.LOCATION_DETAIL_MAX)
    face_to_face_detail: str = optional(max_length=booking_types.LOCATION_DETAIL_MAX)
    remote_detail: str = optional(max_length=booking_types.LOCATION_DETAIL_MAX)
    requires_approval: bool = optional()
    bookable_by: list[AUDIENCES] = optional(min_length=1, max_length=3)
    availability_source: SOURCES = optional()
    group: Id | None = optional(description="A group's id; required when the source is group.")
    minimum_notice_minutes: int | None = _bound("minimum_notice_minutes", nullable=True)
    earliest_day_public: int | None = _bound("earliest_day_public", nullable=True)
    earliest_day_staff: int | None = _bound("earliest_day_staff", nullable=True)
    disabled_window_minutes: int | None = _bound("disabled_window_minutes", nullable=True)
    horizon_days: int | None = _bound("horizon_days", nullable=True)
    weekends_enabled: bool | None = optional(description=ORG_DEFAULT)
    max_per_day: int | None = _bound("max_per_day", nullable=True)
    colour: str = optional(pattern=booking_types.COLOUR_RE.pattern, description="#rrggbb.")
    active: bool = optional(description="Inactive types are offered nowhere; history stays.")
    planned_otj_minutes: int | None = _bound("planned_otj_minutes", nullable=True)
    complete_on_verified: bool = optional()


class BookingTypeCreate(BookingTypeFields):
    name: str = Field(max_length=booking_types.NAME_MAX)


class BookingTypePatch(BookingTypeFields):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


# --- availability ---------------------------------------------------------------------------


class Slot(Out):
    start: Instant
    end: Instant
    people: list[int] = Field(
        description="Free people, least-loaded first (the order of assignment)."
    )


class SlotList(Out):
    slots: list[Slot]


class TzQuery(Query):
    tz: str | None = Field(
        None,
        description=(
            "IANA time zone (e.g. Europe/London): times in the response carry its offset, and "
            "datetimes without an offset are read in it. Default UTC (and then datetimes must "
            "carry an offset)."
        ),
    )


RANGE_NOTE = f"The range [start, end) may span at most {params.MAX_RANGE.days} days. "


class RangeQuery(TzQuery):
    start: Instant = Field(description="Range start. " + RANGE_NOTE + DATETIME_RULES)
    end: Instant = Field(description="Range end (exclusive); must be after start.")


class BookingsQuery(RangeQuery):
    person: str | None = Field(
        None,
        json_schema_extra={"pattern": "^[0-9]+$"},
        description="Only bookings this user owns, attends or is learner of.",
    )


class AvailabilityQuery(Query):
    booking_type: str = Field(description="A booking type's slug.")
    start: Instant = Field(description="Range start. " + RANGE_NOTE + DATETIME_RULES)
    end: Instant = Field(description="Range end (exclusive); must be after start.")
    tz: str = Field(description=TzQuery.model_fields["tz"].description)
    # The route reads these two with params.learner / params.id_list (today's codes and
    # messages); the patterns only describe them in the document.
    learner: str | None = Field(
        None,
        json_schema_extra={"pattern": "^[0-9]+$"},
        description="A learner's id (their assigned agent, B6).",
    )
    people: str | None = Field(
        None,
        json_schema_extra={"pattern": "^[0-9]+(,[0-9]+)*$"},
        description=(
            "Comma-separated staff ids: slots where every one of them is free (instead of the "
            "type's availability source)."
        ),
    )


# --- people ---------------------------------------------------------------------------------


class Person(Out):
    id: int
    name: str
    email: str = Field(json_schema_extra={"format": "email"})
    role: str = Field(description="The role's slug, e.g. agent.")
    timezone: str = Field(description="IANA zone name.")
    active: bool
    groups: list[int] = Field(description="Ids of the groups the person belongs to.")
    assigned_agent: int | None = Field(description="Learners: their assigned agent (EPA).")
    mentor: int | None = Field(description="Learners: their workplace mentor.")
    assessor: int | None = Field(description="Learners: their on-programme assessor.")
    employer: int | None = Field(description="Learners: their employer.")


class PersonList(Out):
    people: list[Person]
    total: int = Field(ge=0, description="How many people match, on every page together.")
    page: int = Field(ge=1)
    per_page: int | None = Field(description="null: not paged (every match is listed).")


class PeopleQuery(Query):
    q: str | None = Field(None, max_length=200, description="Part of a name or email.")
    role: str | None = Field(
        None,
        max_length=64,
        description=(
            "A role's slug. Without it only staff are listed. Roles that are not staff need "
            "people.manage (others see active staff only)."
        ),
    )
    group: str | None = Field(
        None, max_length=80, description="A group's slug or id; unknown is 404."
    )
    active: Literal["true", "false", "all"] = Field(
        "true", description="With people.manage: deactivated people (false) or everyone (all)."
    )
    page: int | None = Field(None, ge=1, le=1_000_000, strict=False)
    per_page: int | None = Field(
        None,
        ge=1,
        le=MAX_PER_PAGE,
        strict=False,
        description="Page size (default 50 once page is given). Without either: no paging.",
    )


class PersonFields(Body):
    error_codes: ClassVar[dict[str, str]] = {"timezone": "unknown_zone"}

    name: str = optional(max_length=200)
    email: str = optional(max_length=254, schema={"format": "email"})
    role: str = optional(
        max_length=64,
        description="A role's slug; giving it needs every one of the role's permissions.",
    )
    timezone: str = optional(max_length=64, description=ZONE_RULES)
    active: bool = optional(description="false: cannot sign in, offers no slots, keeps history.")
    groups: list[Id] = optional(max_length=200, description="Group ids (replaces them all).")
    assigned_agent: Id | None = optional(description="Learners only: a staff member's id.")
    mentor: Id | None = optional(description="Learners only: a staff or employer id.")
    assessor: Id | None = optional(description="Learners only: a staff member's id.")
    employer: Id | None = optional(description="Learners only: an employer's id.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        params.zone(value)  # unknown_zone, with today's message
        return value


class PersonCreate(PersonFields):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=1, max_length=254, json_schema_extra={"format": "email"})
    role: str = Field(min_length=1, max_length=64, description="A role's slug.")
    timezone: str = Field("Europe/London", max_length=64, description=ZONE_RULES)
    active: bool = True
    groups: list[Id] = Field(default_factory=list, max_length=200)
    invite: bool = Field(
        False, description="Email an invitation with a single-use link to set a password."
    )


class PersonPatch(PersonFields):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})


class WorkingHours(Out):
    timezone: str = Field(description="The zone the hours are in (the person's).")
    week: dict[Weekday, list[TimeRange]] = Field(
        description="Every day, mon to sun: its ranges [start, end] as HH:MM, in order."
    )


class WorkingHoursPut(Body):
    error_codes: ClassVar[dict[str, str]] = {"timezone": "unknown_zone"}

    timezone: str = optional(
        max_length=64, description="Also move the person to this zone. " + ZONE_RULES
    )
    week: dict[Weekday, Annotated[list[TimeRange], Field(max_length=12)]] = Field(
        description="The whole week: a day left out has no working hours."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        params.zone(value)
        return value


# --- groups ---------------------------------------------------------------------------------


class Group(Out):
    id: int
    slug: str
    name: str
    system: bool = Field(description="The Planning Meeting Bookings group: cannot be deleted.")
    members: list[int] = Field(description="Member user ids, by name.")


class GroupList(Out):
    groups: list[Group]


class GroupCreate(Body):
    name: str = Field(min_length=1, max_length=200)


class GroupMembers(Body):
    members: list[Id] = Field(
        max_length=MAX_GROUP_MEMBERS, description="Active staff ids (replaces every member)."
    )


# --- bookings -------------------------------------------------------------------------------


class Attendee(Out):
    id: int
    user_id: int | None
    email: str | None
    name: str
    role: Literal["agent", "learner", "employer", "mentor", "assessor", "guest"]


class AttendancePerson(Out):
    email: str
    minutes: int = Field(ge=0, description="Whole minutes attended, all sessions together.")


class Attendance(Out):
    state: Literal["pending", "recorded", "needs_review", "none"] = Field(
        description="pending: not read yet; recorded: minutes verified; needs_review: staff "
        "must confirm (held on another day, no report); none: the learner did not join."
    )
    otj_minutes: int | None = Field(description="Recorded off-the-job minutes (when recorded).")
    people: list[AttendancePerson]


class OnlineMeeting(Out):
    provider: Literal["teams"]
    state: Literal["waiting", "scheduled", "failed", "cancelled"] = Field(
        description="waiting: not yet inside the scheduling window (see push_after); "
        "scheduled: made in Teams, join_url set; failed: Microsoft would not make it (error "
        "says why; calendar events and .ics stand in); cancelled: cancelled in Teams."
    )
    join_url: str | None = Field(description="The Teams join link (when scheduled).")
    push_after: Instant | None = Field(
        description="When the meeting enters the scheduling window and is created in Teams."
    )
    error: str | None = Field(description="Why the meeting could not be made.")


class Booking(Out):
    id: int
    uid: str = Field(description="Stable iCalendar UID.")
    status: Literal["provisional", "confirmed", "rejected", "cancelled", "completed", "no_show"]
    booking_type: str = Field(description="The booking type's slug.")
    title: str
    description: str
    start: Instant
    end: Instant
    location_mode: LOCATION_MODES
    location_detail: str
    owner: int | None
    learner: int | None
    attendees: list[Attendee]
    rebook_of: int | None
    created_at: Instant
    updated_at: Instant
    sequence: int = Field(ge=0)
    planned_otj_minutes: int | None = Field(
        description="Planned off-the-job minutes (the type's unless changed; null: none)."
    )
    attendance: Attendance | None = Field(
        description="Teams attendance and the off-the-job minutes it gave; null unless the "
        "booking is a Teams meeting with planned minutes."
    )
    online_meeting: OnlineMeeting | None = Field(
        None, description="The booking's Microsoft Teams meeting; null unless it meets by Teams."
    )


class BookingList(Out):
    bookings: list[Booking]


START_MESSAGE = f"start must be an ISO 8601 date-time like {DATETIME_EXAMPLE}."


class BookingCreate(Body):
    error_codes: ClassVar[dict[str, str]] = {
        "booking_type": "unknown_booking_type",
        "start": "malformed_datetime",
    }
    error_messages: ClassVar[dict[str, str]] = {
        "booking_type": "booking_type must be a booking type's slug.",
        "start": START_MESSAGE,
    }

    booking_type: str = Field(description="A booking type's slug.")
    start: Instant = Field(description=DATETIME_RULES)
    people: list[Id] | None = Field(
        None,
        min_length=1,
        max_length=params.MAX_PEOPLE,
        description=(
            "Active staff ids; the first owns the booking. Omitted: the first (least-loaded) "
            "person the type's availability source offers for exactly this start, or 409 "
            "conflict when nobody is free."
        ),
    )
    learner: Id | None = Field(None, description="An active learner's id.")
    location_mode: str | None = Field(
        None, max_length=20, description="One of the type's location modes; default its first."
    )
    location_detail: str | None = Field(None, max_length=500)
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    planned_otj_minutes: int | None = Field(
        None, ge=1, le=1440, description="Planned off-the-job minutes; default the type's."
    )
    organiser_email: str | None = Field(
        None,
        max_length=320,
        description="teams only: the Microsoft 365 user who organises the meeting; default "
        "the booking's owner. Teams without a working Microsoft 365 connection: 422 "
        "teams_unavailable.",
    )

    @field_validator("people", mode="before")
    @classmethod
    def _people(cls, value: object) -> object:
        return None if value is None else params.id_list(value, "people")

    @field_validator("learner", mode="before")
    @classmethod
    def _learner(cls, value: object) -> object:
        return None if value in (None, "") else params.identifier(value, "learner")


class BookingPatch(Body):
    """All given changes happen in one transaction, in this order: start (reschedule),
    description/location_detail/location_mode (edit), status. If one is refused, none
    happens."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    error_codes: ClassVar[dict[str, str]] = {"start": "malformed_datetime"}
    error_messages: ClassVar[dict[str, str]] = {
        "start": START_MESSAGE,
        "status": (
            "status may be confirmed, rejected, completed or no_show; "
            "cancel with POST /api/v1/bookings/{id}/cancel."
        ),
    }

    start: Instant = optional(description="Reschedule. " + DATETIME_RULES)
    status: Literal["confirmed", "rejected", "completed", "no_show"] = optional(
        description=(
            "confirmed approves a provisional booking, rejected rejects it, completed marks a "
            "started confirmed booking done, no_show marks a confirmed booking whose visitor "
            "did not come (after the maximum waiting time). To cancel, POST to "
            "/bookings/{booking_id}/cancel."
        )
    )
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)
    location_detail: str | None = Field(None, max_length=500)
    location_mode: str | None = Field(
        None,
        max_length=20,
        description=(
            "One of the booking type's modes (face_to_face, remote, teams); teams removes the "
            "calendar events Slotbook wrote (the Teams invitation takes over)."
        ),
    )
    planned_otj_minutes: int | None = Field(
        None, ge=1, le=1440, description="Planned off-the-job minutes; null: none planned."
    )
    organiser_email: str | None = Field(
        None,
        max_length=320,
        description="teams only: the organiser's Microsoft 365 email (before the meeting is "
        "made in Teams).",
    )


# --- the document ---------------------------------------------------------------------------


class OpenApiDocument(Out):
    model_config = ConfigDict(extra="allow")
