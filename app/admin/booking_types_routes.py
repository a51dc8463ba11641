"""Booking type screens (B1): list, new, edit with a live "next free times" preview,
deactivate and reactivate. Permission ``booking_types.manage``.

Thin: the form's text becomes API field values (``types.fields_from_form``), and
``bookings.types`` checks and writes them; a refused form is shown again with the message next
to its field, HTTP 400, nothing written. The preview builds a transient type that is never
added to the session and asks the availability engine for the next free times.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app import htmx
from app.accounts.access import permission_required
from app.accounts.models import Group
from app.accounts.permissions import Perm
from app.admin.settings import all_settings
from app.bookings import types
from app.bookings.availability import candidate_people, load_context
from app.bookings.models import AvailabilitySource, BookingType
from app.database import MAX_ID, utcnow
from app.extensions import db
from app.scheduling.slots import find_slots

bp = Blueprint("booking_types", __name__, url_prefix="/admin/booking-types")

PREVIEW_DAYS = 14
PREVIEW_COUNT = 5


def _load(type_id: int) -> BookingType:
    kind = db.session.get(BookingType, type_id) if 0 < type_id <= MAX_ID else None
    return kind or abort(404)


# --- form values ------------------------------------------------------------------------


def _text(value) -> str:
    return "" if value is None else str(value)


def _values_of(kind: BookingType | None) -> dict:
    """What the form shows: a saved type's values, or the defaults of a new one, as text."""
    source = {"slug": "", "name": "", **types.DEFAULTS}
    if kind is not None:
        source = {name: getattr(kind, name) for name in types.FIELDS if name != "group"}
        source["group"] = kind.availability_group_id
    values = {name: _text(source.get(name)) for name in types.FIELDS}
    values["location_modes"] = list(source["location_modes"] or [])
    values["bookable_by"] = list(source["bookable_by"] or [])
    values["requires_approval"] = bool(source["requires_approval"])
    values["complete_on_verified"] = bool(source["complete_on_verified"])
    values["weekends_enabled"] = {True: "on", False: "off"}.get(source["weekends_enabled"], "")
    values["default_location_mode"] = _text(source["default_location_mode"])
    return values


def _values_posted() -> dict:
    form = request.form
    values = {name: form.get(name, "") for name in types.FIELDS}
    values["location_modes"] = form.getlist("location_modes")
    values["bookable_by"] = form.getlist("bookable_by")
    values["requires_approval"] = form.get("requires_approval") in ("y", "on", "1", "true")
    values["complete_on_verified"] = form.get("complete_on_verified") in ("y", "on", "1", "true")
    return values


def _groups() -> list[Group]:
    return list(db.session.scalars(select(Group).order_by(Group.name)))


def _render_form(
    kind: BookingType | None,
    values: dict,
    *,
    error: types.BookingTypeError | None = None,
    status: int = 200,
):
    settings = all_settings()
    preview = _preview(_preview_fields(values), kind)
    return htmx.render(
        "admin/booking_type_form.html",
        "admin/_booking_type_form.html",
        status,
        kind=kind,
        values=values,
        error=error,
        errors={error.field: error.message} if error and error.field else {},
        groups=_groups(),
        settings=settings,
        preview=preview,
        location_labels=types.LOCATION_LABELS,
        mode_detail_labels=types.MODE_DETAIL_LABELS,
        audience_labels=types.AUDIENCE_LABELS,
        source_labels=types.SOURCE_LABELS,
    )


# --- list, new, edit --------------------------------------------------------------------


@bp.get("")
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def index():
    kinds = db.session.scalars(
        select(BookingType).order_by(BookingType.active.desc(), BookingType.name)
    ).all()
    return htmx.render(
        "admin/booking_types.html",
        "admin/_booking_types_table.html",
        kinds=kinds,
        location_labels=types.LOCATION_LABELS,
        audience_labels=types.AUDIENCE_LABELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def new():
    if request.method == "GET":
        return _render_form(None, _values_of(None))
    values = _values_posted()
    try:
        kind = types.create_booking_type(current_user, types.fields_from_form(request.form))
        db.session.commit()
    except types.BookingTypeError as exc:
        db.session.rollback()
        return _render_form(None, values, error=exc, status=400)
    flash(f"Booking type {kind.name} created.", "success")
    return redirect(url_for("booking_types.edit", type_id=kind.id), 303)


@bp.route("/<int:type_id>", methods=["GET", "POST"])
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def edit(type_id: int):
    kind = _load(type_id)
    if request.method == "GET":
        return _render_form(kind, _values_of(kind))
    values = _values_posted()
    try:
        types.update_booking_type(current_user, kind, types.fields_from_form(request.form))
        db.session.commit()
    except types.BookingTypeError as exc:
        db.session.rollback()
        kind = _load(type_id)
        return _render_form(kind, values, error=exc, status=400)
    flash(f"Booking type {kind.name} saved.", "success")
    return redirect(url_for("booking_types.edit", type_id=kind.id), 303)


def _set_active(type_id: int, active: bool):
    kind = _load(type_id)
    types.update_booking_type(current_user, kind, {"active": active})
    db.session.commit()
    if active:
        flash(f"{kind.name} is bookable again.", "success")
    else:
        flash(
            f"{kind.name} is deactivated: nobody can book it; its bookings stay as they are.",
            "success",
        )
    return redirect(url_for("booking_types.edit", type_id=kind.id), 303)


@bp.post("/<int:type_id>/deactivate")
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def deactivate(type_id: int):
    return _set_active(type_id, False)


@bp.post("/<int:type_id>/reactivate")
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def reactivate(type_id: int):
    return _set_active(type_id, True)


# --- the live preview -------------------------------------------------------------------


def _preview_fields(values: dict) -> dict | types.BookingTypeError:
    """The form's values as API fields, without name and slug (the preview needs neither)."""
    from werkzeug.datastructures import MultiDict

    form = MultiDict()
    for name, value in values.items():
        if isinstance(value, list):
            form.setlist(name, value)
        elif isinstance(value, bool):
            if value:
                form[name] = "y"
        else:
            form[name] = value
    try:
        fields = types.fields_from_form(form)
    except types.BookingTypeError as exc:
        return exc
    fields.pop("name", None)
    fields.pop("slug", None)
    return fields


def _window_note(kind: BookingType, settings: dict) -> str:
    def pick(own, key):
        return own if own is not None else settings[key]

    earliest = pick(kind.earliest_day_staff, "earliest_day_staff")
    weekends = pick(kind.weekends_enabled, "weekends_enabled")
    notice = pick(kind.minimum_notice_minutes, "minimum_notice_minutes")
    parts = [
        f"earliest day for staff: {earliest} day{'s' if earliest != 1 else ''} ahead",
        f"minimum notice: {notice} minutes",
        "weekends offered" if weekends else "no weekends",
    ]
    return "; ".join(parts)


def _preview(fields, kind: BookingType | None) -> dict:
    """The next free times the (unsaved) settings would give staff, or why there are none."""
    zone = current_user.zone
    now = utcnow()
    result: dict = {"zone": current_user.timezone, "days": PREVIEW_DAYS, "slots": []}
    if isinstance(fields, types.BookingTypeError):
        result["error"] = fields.message
        return result
    try:
        transient = types.preview_type(fields, kind)
    except types.BookingTypeError as exc:
        result["error"] = exc.message
        return result
    people = candidate_people(transient)
    result["people"] = len(people)
    if not people:
        result["reason"] = _nobody_reason(transient)
        return result
    end = now + timedelta(days=PREVIEW_DAYS)
    context = load_context(transient, people, now, end, audience="staff", now=now)
    slots = find_slots(context.people, context.request)[:PREVIEW_COUNT]
    names = {p.id: p.name for p in people}
    for slot in slots:
        start, finish = slot.start.astimezone(zone), slot.end.astimezone(zone)
        result["slots"].append(
            {
                "iso": slot.start.isoformat(),
                "day": start.strftime("%a %d %b"),
                "time": f"{start:%H:%M}–{finish:%H:%M} {start.tzname()}",
                "people": [names[i] for i in slot.people if i in names],
            }
        )
    if not slots:
        problems = [
            f"{names.get(pid, 'Someone')}: {why}" for pid, why in context.calendar_problems.items()
        ]
        who = f"the {len(people)} people" if len(people) > 1 else people[0].name
        result["reason"] = (
            f"None of {who} has {transient.duration_minutes} free minutes"
            + (
                f" (plus {transient.buffer_before_minutes + transient.buffer_after_minutes} "
                "minutes of buffers)"
                if transient.buffer_before_minutes + transient.buffer_after_minutes
                else ""
            )
            + " inside working hours and the booking window ("
            + _window_note(transient, all_settings())
            + ")."
        )
        result["problems"] = problems
    return result


def _nobody_reason(kind: BookingType) -> str:
    source = kind.availability_source
    if source == AvailabilitySource.GROUP:
        group = kind.availability_group
        if group is not None and group.members:
            return f"Every member of {group.name} is deactivated."
        return f"The group {group.name if group else ''} has no members yet: add people to it."
    if source == AvailabilitySource.ASSIGNED_AGENT:
        return (
            "Times come from each learner's assigned agent, so they depend on who books; "
            "choose a group to see times here."
        )
    return (
        "The Planning Meeting Bookings group is missing or has no active members, and a "
        "learner's assigned agent is only known when a learner books."
    )


def _preview_response(kind: BookingType | None):
    values = {name: request.args.get(name, "") for name in types.FIELDS}
    values["location_modes"] = request.args.getlist("location_modes")
    values["bookable_by"] = request.args.getlist("bookable_by")
    values["requires_approval"] = request.args.get("requires_approval") in ("y", "on")
    return htmx.render(
        "admin/booking_type_preview.html",
        "admin/_booking_type_preview.html",
        kind=kind,
        preview=_preview(_preview_fields(values), kind),
    )


@bp.get("/preview")
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def preview_new():
    """Next free times for the new-type form's values (``hx-get`` on change)."""
    return _preview_response(None)


@bp.get("/<int:type_id>/preview")
@permission_required(Perm.BOOKING_TYPES_MANAGE)
def preview(type_id: int):
    """Next free times for an existing type with the form's unsaved values laid over it."""
    return _preview_response(_load(type_id))
