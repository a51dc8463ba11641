"""JSON API v1 (SPEC I1). Thin: authenticate, parse, load, call the service, commit, render.

Every rule lives in the services and ``bookings.policy``; refusals they raise become JSON
errors in ``app.api.errors``. Writing requests run in one write transaction opened before
their first read (``begin_write``), committed once at the end.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.api import params, schemas
from app.api.auth import api_caller, api_user, authenticate
from app.api.errors import ApiError, register_error_handlers
from app.api.openapi import document
from app.api.serializers import (
    booking_json,
    booking_type_json,
    slots_json,
)
from app.bookings import learner as own_booking
from app.bookings import policy, service
from app.bookings.availability import slots_for
from app.bookings.models import Attendee, Booking, BookingType
from app.database import begin_write
from app.extensions import db
from app.teams import attendance

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(authenticate)
register_error_handlers(bp)

PATCH_FIELDS = (
    "start",
    "status",
    "description",
    "location_detail",
    "location_mode",
    "planned_otj_minutes",
    "organiser_email",
)
STATUS_CHANGES = {
    "confirmed": service.approve,
    "rejected": service.reject,
    "completed": service.complete,
    "no_show": service.mark_no_show,
}
DESCRIPTION_MAX = 10_000


@bp.after_request
def _no_store(response):
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _query_zone() -> ZoneInfo | None:
    """``tz`` from the query: the zone naive datetimes are read in (None: they are refused)
    and the zone of the times in the response (UTC when absent)."""
    return params.zone(schemas.TzQuery.parse().tz)


def _visible_booking(booking_id: int) -> Booking:
    """The booking if the caller may see it; 404 alike for missing and hidden (P2)."""
    booking = service.get_visible(api_user(), booking_id) if booking_id <= params.MAX_ID else None
    if booking is None:
        raise ApiError(404, "not_found", f"No booking {booking_id}.")
    return booking


def _booking_response(booking: Booking, zone: ZoneInfo | None, status: int = 200):
    response = jsonify(booking_json(booking, zone or params.UTC_ZONE))
    response.status_code = status
    return response


# --- the document ---------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


# --- reading ----------------------------------------------------------------------------


@bp.get("/booking-types")
def booking_types():
    kinds = db.session.scalars(
        select(BookingType)
        .where(BookingType.active.is_(True))
        .order_by(BookingType.name, BookingType.id)
    )
    return jsonify(booking_types=[booking_type_json(k) for k in kinds])


@bp.get("/availability")
def availability():
    caller = api_caller()
    if not (caller.is_staff and caller.can(Perm.BOOKINGS_CREATE)):
        raise ApiError(403, "forbidden", "Availability is for staff who may create bookings.")
    schemas.AvailabilityQuery.parse()  # each of booking_type, start, end, tz is required
    args = request.args
    zone = params.zone(args["tz"])
    kind = params.offer_rules(args["booking_type"])
    start, end = params.time_range(args, zone)
    learner = params.learner(args.get("learner"))
    people = None
    if "people" in args:
        people = params.staff_people(params.id_list(args["people"].split(","), "people"))
    slots = slots_for(kind, start, end, audience="staff", learner=learner, people=people)
    return current_app.response_class(slots_json(slots, zone), mimetype="application/json")


@bp.get("/bookings")
def list_bookings():
    args = request.args
    zone = _query_zone()
    schemas.BookingsQuery.parse()
    start, end = params.time_range(args, zone)
    query = policy.visible_bookings(api_user()).where(
        Booking.starts_at < end, Booking.ends_at > start
    )
    if "person" in args:
        person = params.identifier(args["person"], "person")
        attends = exists().where(Attendee.booking_id == Booking.id, Attendee.user_id == person)
        query = query.where(or_(Booking.owner_id == person, Booking.learner_id == person, attends))
    query = query.options(selectinload(Booking.attendees)).order_by(Booking.starts_at, Booking.id)
    bookings = db.session.scalars(query).unique().all()
    return jsonify(bookings=[booking_json(b, zone or params.UTC_ZONE) for b in bookings])


@bp.get("/bookings/<int:booking_id>")
def get_booking(booking_id: int):
    zone = _query_zone()
    return _booking_response(_visible_booking(booking_id), zone)


# --- changing ---------------------------------------------------------------------------


def _assign(
    kind: BookingType, starts_at: datetime, learner: User | None, audience: str = "staff"
) -> list[User]:
    """Nobody chosen: the first (least-loaded) person the type's source offers for exactly
    this start (A3, B6), or 409 when the start is not an offered slot."""
    end = starts_at + kind.duration
    slots = slots_for(kind, starts_at, end, audience=audience, learner=learner)
    for slot in slots:
        if slot.start == starts_at and slot.people:
            return [db.session.get(User, slot.people[0])]
    raise ApiError(409, "conflict", "Nobody who takes this booking type is free at that time.")


@bp.post("/bookings")
def create_booking():
    begin_write()  # already open as a writer; stated here because everything below may write
    actor = api_user()
    if not actor.is_learner:
        policy.require(actor, Perm.BOOKINGS_CREATE)
    zone = _query_zone()
    data = schemas.BookingCreate.parse().given()
    kind = params.booking_type(params.required(data, "booking_type"))
    starts_at = params.instant(params.required(data, "start"), "start", zone)
    if actor.is_learner:
        return _create_own_booking(actor, kind, starts_at, data, zone)
    learner = params.learner(data.get("learner"))
    location_mode = params.text(data, "location_mode", 20)
    location_detail = params.text(data, "location_detail", service.LOCATION_DETAIL_MAX)
    description = params.text(data, "description", DESCRIPTION_MAX)
    organiser_email = params.text(data, "organiser_email", 320)  # Teams only
    if data.get("people") is None:
        people = _assign(kind, starts_at, learner)
    else:
        people = params.staff_people(params.id_list(data["people"], "people"))
    booking = service.create_booking(
        actor,
        kind,
        starts_at,
        people,
        learner=learner,
        location_mode=location_mode,  # None: the type's default mode and its details
        location_detail=location_detail,
        description=description or "",
        check_availability=True,
        organiser_email=organiser_email or None,
    )
    if "planned_otj_minutes" in data:  # else the type's plan, set by create_booking
        booking.planned_otj_minutes = attendance.check_planned(data["planned_otj_minutes"])
    db.session.commit()
    response = _booking_response(booking, zone, 201)
    response.headers["Location"] = url_for("api.get_booking", booking_id=booking.id)
    return response


def _create_own_booking(actor: User, kind: BookingType, starts_at: datetime, data: dict, zone):
    """A learner books for themself (S7): a type bookable by learners, at a time offered to
    them by its source (B6) in the public window; who takes it is chosen by availability."""
    policy.require_book_type(actor, kind, "learner")
    if (
        data.get("learner") is not None
        and params.identifier(data["learner"], "learner") != actor.id
    ):
        raise ApiError(403, "forbidden", "Learners can only book for themselves.")
    if data.get("people") is not None:
        raise params.bad(
            "validation_error", "Leave out people: who takes your booking is chosen for you."
        )
    location_mode = params.text(data, "location_mode", 20)
    location_detail = params.text(data, "location_detail", service.LOCATION_DETAIL_MAX)
    description = params.text(data, "description", DESCRIPTION_MAX)
    people = _assign(kind, starts_at, actor, audience="public")
    default_mode, default_detail = own_booking.default_location(kind)
    booking = service.create_booking(
        actor,
        kind,
        starts_at,
        people,
        learner=actor,
        location_mode=location_mode or default_mode,
        location_detail=location_detail if location_detail is not None else default_detail,
        description=description or "",
        check_availability=True,
        audience="public",
    )
    db.session.commit()
    response = _booking_response(booking, zone, 201)
    response.headers["Location"] = url_for("api.get_booking", booking_id=booking.id)
    return response


@bp.patch("/bookings/<int:booking_id>")
def update_booking(booking_id: int):
    begin_write()
    actor = api_user()
    zone = _query_zone()
    booking = _visible_booking(booking_id)
    data = schemas.BookingPatch.parse().given()
    if not data:
        raise params.bad("validation_error", f"Send at least one of {', '.join(PATCH_FIELDS)}.")
    starts_at = params.instant(data["start"], "start", zone) if "start" in data else None
    status = data.get("status")
    if "status" in data and status not in STATUS_CHANGES:
        raise params.bad(
            "validation_error",
            "status may be confirmed, rejected or completed; "
            "cancel with POST /api/v1/bookings/{id}/cancel.",
        )
    description = params.text(data, "description", DESCRIPTION_MAX)
    location_detail = params.text(data, "location_detail", service.LOCATION_DETAIL_MAX)
    location_mode = params.text(data, "location_mode", 20)
    organiser_email = params.text(data, "organiser_email", 320) or None

    if starts_at is not None:
        service.reschedule(actor, booking, starts_at, check_availability=True)
    edits = (description, location_detail, location_mode, organiser_email)
    if any(value is not None for value in edits):
        service.update_details(
            actor,
            booking,
            description=description,
            location_detail=location_detail,
            location_mode=location_mode,
            organiser_email=organiser_email,
        )
    if "planned_otj_minutes" in data:
        attendance.set_planned_minutes(actor, booking, data["planned_otj_minutes"])
    if status is not None:
        STATUS_CHANGES[status](actor, booking)
    db.session.commit()
    return _booking_response(booking, zone)


@bp.post("/bookings/<int:booking_id>/cancel")
def cancel_booking(booking_id: int):
    begin_write()
    zone = _query_zone()
    booking = _visible_booking(booking_id)
    service.cancel(api_user(), booking)
    db.session.commit()
    return _booking_response(booking, zone)
