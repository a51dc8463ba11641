"""Booking screens: list, form with live preview, detail / side drawer with actions (C3, C4).

Thin: load, authorise, call a service, render. Every GET that HTMX asks for answers with a
fragment (``_name.html``) and otherwise with the page that includes it (``app.htmx``). Changes
posted from the drawer (``HX-Request``) answer with the drawer's new content and an
``HX-Trigger: bookingChanged`` header so the calendar and lists refresh themselves; without
JavaScript the same forms POST and redirect.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app import htmx
from app.accounts.access import permission_required
from app.accounts.models import LearnerProfile, Role, User
from app.accounts.permissions import Perm
from app.bookings import listing, policy, service, unassigned
from app.bookings.forms import (
    ActionForm,
    AttendeeForm,
    BookingForm,
    EditForm,
    RebookForm,
    WhenForm,
)
from app.bookings.lifecycle import Action, TransitionError, allowed_actions
from app.bookings.models import Attendee, Booking, BookingType, LocationMode, Status
from app.bookings.preview import day_preview
from app.database import utcnow
from app.extensions import db
from app.guard import parse_id
from app.scheduling.localtime import NonexistentTimeError, local_to_utc

bp = Blueprint("bookings", __name__, url_prefix="/bookings")

LOCATION_LABELS = {
    LocationMode.FACE_TO_FACE: "Face to face",
    LocationMode.REMOTE: "Remote (meeting link)",
    LocationMode.TEAMS: "Microsoft Teams",
}
SIMPLE_ACTIONS = {
    Action.APPROVE: service.approve,
    Action.REJECT: service.reject,
    Action.CANCEL: service.cancel,
    Action.COMPLETE: service.complete,
    Action.NO_SHOW: service.mark_no_show,
}


@bp.app_template_global()
def to_assign_lane() -> list[Booking] | None:
    """The signed-in agent's "To assign" bookings for the calendar page (None: no lane)."""
    if not current_user.is_authenticated:
        return None
    return unassigned.lane_for(current_user)


@bp.app_template_global()
def location_label(mode: str) -> str:
    return LOCATION_LABELS.get(mode, mode)


def _when(form: WhenForm):
    """The form's local date and time as a UTC instant, or None with an error on the form."""
    try:
        return local_to_utc(form.day.data, form.start.data, current_user.zone)
    except NonexistentTimeError as exc:
        form.start.errors = [*form.start.errors, str(exc)]
        return None


def _prefix_ids(form, prefix: str):
    """Give a form's fields unique ids (two forms with a "day" field share one panel, and the
    drawer shares the page it opens on); the posted names stay as they are."""
    for f in form:
        f.id = f"{prefix}-{f.name}"
        f.label.field_id = f.id
    return form


def _load(booking_id: int) -> Booking:
    return service.get_visible(current_user, booking_id) or abort(404)


@bp.get("")
@login_required
def index():
    """Upcoming bookings first, past ones on their own tab; date range, search, status and
    pages (``app/bookings/listing.py``). HTMX swaps just the list."""
    params = listing.parse_params(request.args)
    page = listing.list_bookings(current_user, params, utcnow())
    return htmx.render(
        "bookings/index.html",
        "bookings/_list.html",
        page=page,
        bookings=page.bookings,
        params=params,
        status=params.status,
        statuses=list(Status),
    )


def _staff() -> list[User]:
    return db.session.scalars(
        select(User)
        .join(Role)
        .where(Role.is_staff.is_(True), User.active.is_(True))
        .order_by(User.name)
    ).all()


def _learners() -> list[User]:
    return db.session.scalars(
        select(User)
        .join(Role)
        .where(Role.slug == "learner", User.active.is_(True))
        .order_by(User.name)
    ).all()


def _fill_booking_choices(form: BookingForm) -> dict[int, BookingType]:
    types = {
        t.id: t
        for t in db.session.scalars(
            select(BookingType).where(BookingType.active.is_(True)).order_by(BookingType.name)
        )
        if "staff" in (t.bookable_by or ())  # who may book it (B1): the rest are not offered
    }
    form.booking_type.choices = [
        (t.id, f"{t.name} ({t.duration_minutes} min)") for t in types.values()
    ]
    people = _staff() if current_user.can(Perm.BOOKINGS_ASSIGN) else [current_user]
    form.people.choices = [(p.id, p.name) for p in people]
    form.learner.choices = [(0, "— none —")] + [(p.id, p.name) for p in _learners()]
    working = service.working_modes(list(LOCATION_LABELS))  # Teams only while it works
    form.location_mode.choices = [
        (m, label) for m, label in LOCATION_LABELS.items() if m in working
    ]
    return types


def _default_location(form: BookingForm, types: dict[int, BookingType], mode_too: bool) -> None:
    """Fill what the form leaves empty from the chosen booking type (or the first offered):
    its default location mode (``mode_too``, a fresh form) and its address or meeting details
    when the booking meets that way and no detail was given."""
    from app.bookings.types import default_location

    kind = types.get(form.booking_type.data) or next(iter(types.values()), None)
    if kind is None:
        return
    mode, detail = default_location(kind)
    working = service.working_modes(list(kind.location_modes or [mode]))
    if mode not in working and working:  # a default that cannot work now (Teams)
        mode, detail = working[0], ""
    if mode_too:
        form.location_mode.data = mode
    if not (form.location_detail.data or "").strip() and form.location_mode.data == mode:
        form.location_detail.data = detail


def _form_preview(form: BookingForm, types: dict[int, BookingType]):
    """The day preview for what the form holds so far, or None until type, person and date
    are chosen. Only people the form offers count: other ids are ignored."""
    kind = types.get(form.booking_type.data)
    day = form.day.data
    if kind is None or day is None:
        return None
    offered = {value for value, _ in form.people.choices}
    people = [db.session.get(User, pid) for pid in (form.people.data or []) if pid in offered]
    learners = {value for value, _ in form.learner.choices if value}
    if form.learner.data in learners and form.learner.data not in offered:
        people.append(db.session.get(User, form.learner.data))
    if not people:
        return None
    starts_at = _quiet_when(day, form.start.data)
    return day_preview(current_user, kind, people, day, starts_at)


def _quiet_when(day, clock) -> datetime | None:
    if day is None or clock is None:
        return None
    try:
        return local_to_utc(day, clock, current_user.zone)
    except NonexistentTimeError:
        return None


def _render_form(form, error=None, status=200, preview=None):
    _prefix_ids(form, "bf")
    return htmx.render(
        "bookings/new.html",
        "bookings/_form.html",
        status,
        form=form,
        error=error,
        preview=preview,
        in_drawer=htmx.wants_fragment(),
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Perm.BOOKINGS_CREATE)
def new():
    """The booking form. A GET may pre-fill it from the query string (``?day=&start=&people=``,
    as the calendar links); the preview beside it is ``preview`` below."""
    if request.method == "GET":
        form = BookingForm(formdata=request.args or None)
        types = _fill_booking_choices(form)
        if not form.people.data:
            form.people.data = [current_user.id]
        slot = "people" in request.args and form.day.data is not None
        if slot and "booking_type" not in request.args and types:
            # Opened from a calendar slot: preview the first type at once (the select shows it)
            form.booking_type.data = next(iter(types))
        _default_location(form, types, "location_mode" not in request.args)
        return _render_form(form, preview=_form_preview(form, types))
    form = BookingForm()
    types = _fill_booking_choices(form)
    _default_location(form, types, False)
    error, conflict = None, False
    if form.validate_on_submit() and (starts_at := _when(form)) is not None:
        people = [db.session.get(User, pid) for pid in form.people.data]
        learner = db.session.get(User, form.learner.data) if form.learner.data else None
        try:
            booking = service.create_booking(
                current_user,
                types[form.booking_type.data],
                starts_at,
                people,
                learner=learner,
                location_mode=form.location_mode.data,
                location_detail=form.location_detail.data or "",
                description=form.description.data or "",
                organiser_email=_organiser(form),
                hours_check=True,  # never the past; outside the usual only on purpose
                book_anyway=form.anyway_reason.data if form.book_anyway.data else None,
            )
            db.session.commit()
        except (service.BookingError, service.ConflictError, policy.PermissionDenied) as exc:
            db.session.rollback()
            error = str(exc)
            conflict = isinstance(exc, service.ConflictError | service.OutsideHoursError)
        else:
            state = "awaiting approval" if booking.status == Status.PROVISIONAL else "confirmed"
            message = f"Booked: {booking.title}, {state}."
            if htmx.wants_fragment():
                return htmx.changed(_detail(booking, notice=message))
            flash(message, "success")
            return redirect(url_for("bookings.detail", booking_id=booking.id))
    status = 409 if conflict else 400 if (error or form.errors) else 200
    return _render_form(form, error, status, _form_preview(form, types))


@bp.get("/preview")
@permission_required(Perm.BOOKINGS_CREATE)
def preview():
    """The chosen people's day for the booking form (``hx-get`` on change, form included).

    With ``booking=<id>`` it previews moving that booking (the edit form): its own people and
    type, its own time not counted as a conflict."""
    booking_id = parse_id(request.args.get("booking"))  # garbage is ignored, like elsewhere
    if booking_id is not None:
        booking = _load(booking_id)
        if not policy.can(current_user, Action.RESCHEDULE, booking):
            abort(403)
        form = WhenForm(formdata=request.args, meta={"csrf": False})
        result = _moved_preview(booking, form)
    else:
        form = BookingForm(formdata=request.args, meta={"csrf": False})
        result = _form_preview(form, _fill_booking_choices(form))
        _prefix_ids(form, "bf")
        return htmx.render(
            "bookings/preview.html",
            "bookings/_preview.html",
            preview=result,
            **({"form": form} if htmx.wants_fragment() else {}),  # fields belong in the form
        )
    return htmx.render("bookings/preview.html", "bookings/_preview.html", preview=result)


def _detail(
    booking: Booking,
    error: str | None = None,
    status: int = 200,
    notice: str | None = None,
    **forms,
):
    """The booking's drawer (for HTMX) or its page, which includes the drawer's markup."""
    actions = [
        a
        for a in allowed_actions(booking.status)
        if policy.can(current_user, a, booking)
        and not (a == Action.COMPLETE and booking.starts_at > utcnow())  # refused until it starts
        and not (a == Action.NO_SHOW and service.no_show_from(booking) > utcnow())
    ]
    attendee_form = forms.get("attendee_form") or AttendeeForm()
    attendee_form.user_id.choices = [(0, "— choose —")] + [
        (u.id, u.name)
        for u in _staff() + _learners()
        if not any(a.user_id == u.id for a in booking.attendees)
    ]
    profile = db.session.get(LearnerProfile, booking.learner_id) if booking.learner_id else None
    return htmx.render(
        "bookings/detail.html",
        "bookings/_drawer.html",
        status,
        booking=booking,
        actions=actions,
        error=error,
        notice=notice,
        action_form=ActionForm(),
        rebook_form=_prefix_ids(forms.get("rebook_form") or RebookForm(), "rebook"),
        attendee_form=attendee_form,
        profile=profile,
        can_edit=policy.can(current_user, Action.RESCHEDULE, booking),
        in_drawer=htmx.wants_fragment(),
    )


@bp.get("/<int:booking_id>")
@login_required
def detail(booking_id: int):
    return _detail(_load(booking_id))


def _run(booking: Booking, change, success: str, **forms):
    """Call a service change; commit and redirect, or roll back and show why, with a status."""
    try:
        result = change()
        db.session.commit()
    except policy.PermissionDenied:
        db.session.rollback()
        abort(403)
    except service.ConflictError as exc:
        db.session.rollback()
        return _detail(db.session.get(Booking, booking.id), str(exc), 409, **forms)
    except (TransitionError, service.BookingError) as exc:
        db.session.rollback()
        code = 409 if isinstance(exc, TransitionError) else 400
        return _detail(db.session.get(Booking, booking.id), str(exc), code, **forms)
    target = result.id if isinstance(result, Booking) else booking.id
    if htmx.wants_fragment():
        return htmx.changed(_detail(db.session.get(Booking, target), notice=success))
    flash(success, "success")
    return redirect(url_for("bookings.detail", booking_id=target), 303)


@bp.post("/<int:booking_id>/<any(approve,reject,cancel,complete,no_show):action>")
@login_required
def act(booking_id: int, action: str):
    booking = _load(booking_id)
    action = Action(action)
    if not policy.can(current_user, action, booking):
        abort(403)
    ActionForm().validate_on_submit()  # CSRF is enforced globally; this keeps the form honest
    return _run(
        booking, lambda: SIMPLE_ACTIONS[action](current_user, booking), f"Booking {PAST[action]}."
    )


PAST = {
    Action.APPROVE: "approved",
    Action.REJECT: "rejected",
    Action.CANCEL: "cancelled",
    Action.COMPLETE: "marked as completed",
    Action.NO_SHOW: "marked as a no-show",
}


@bp.post("/<int:booking_id>/take")
@login_required
def take(booking_id: int):
    """ "Take it" from the To-assign lane: only a booking the lane would show exists here."""
    booking = db.session.get(Booking, booking_id)
    if booking is None or not unassigned.lane_enabled() or not unassigned.is_unassigned(booking):
        abort(404)
    if not unassigned.may_take(current_user):
        abort(403)
    ActionForm().validate_on_submit()  # CSRF is enforced globally
    try:
        service.take_over(current_user, booking)
        db.session.commit()
    except policy.PermissionDenied:
        db.session.rollback()
        abort(403)
    except (service.BookingError, service.ConflictError) as exc:  # taken, or not free then
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("calendar.index"), 303)
    flash("You took this booking; it is now on your calendar.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)


@bp.post("/<int:booking_id>/reschedule")
@login_required
def reschedule(booking_id: int):
    booking = _load(booking_id)
    if not policy.can(current_user, Action.RESCHEDULE, booking):
        abort(403)
    form = WhenForm()
    if not form.validate_on_submit() or (starts_at := _when(form)) is None:
        # Field messages belong beside the fields: answer with the edit form (which has them).
        edit = EditForm(
            formdata=None,
            day=form.day.data,
            start=form.start.data,
            location_detail=booking.location_detail,
            description=booking.description,
        )
        edit.day.errors, edit.start.errors = list(form.day.errors), list(form.start.errors)
        return _render_edit(booking, edit, "Check the new date and time.", 400)
    return _run(
        booking, lambda: service.reschedule(current_user, booking, starts_at), "Booking moved."
    )


@bp.post("/<int:booking_id>/rebook")
@login_required
def rebook(booking_id: int):
    booking = _load(booking_id)
    if not policy.can(current_user, Action.REBOOK, booking):
        abort(403)
    form = RebookForm()
    if not form.validate_on_submit() or (starts_at := _when(form)) is None:
        return _detail(booking, "Check the date and time of the rebooking.", 400, rebook_form=form)
    return _run(
        booking,
        lambda: service.rebook(current_user, booking, starts_at, form.kind.data),
        f"{form.kind.data.capitalize()} booked.",
        rebook_form=form,
    )


@bp.post("/<int:booking_id>/attendees")
@login_required
def add_attendee(booking_id: int):
    booking = _load(booking_id)
    if not policy.can(current_user, Action.RESCHEDULE, booking):
        abort(403)
    form = AttendeeForm()
    form.user_id.choices = [(0, "")] + [(u.id, u.name) for u in _staff() + _learners()]
    if not form.validate_on_submit():
        return _detail(booking, "Check the attendee's details.", 400, attendee_form=form)
    user, guest = _attendee_from(form, booking)
    return _run(
        booking,
        lambda: service.add_attendee(current_user, booking, user=user, guest=guest),
        "Attendee added.",
        attendee_form=form,
    )


def _attendee_from(form: AttendeeForm, booking: Booking):
    """A user (chosen, or the learner's mentor/assessor shortcut) or a guest email."""
    profile = db.session.get(LearnerProfile, booking.learner_id) if booking.learner_id else None
    shortcut = {
        "mentor": profile and profile.workplace_mentor,
        "assessor": profile and profile.assessor,
    }.get(form.shortcut.data)
    if shortcut:
        return shortcut, None
    if form.user_id.data:
        return db.session.get(User, form.user_id.data), None
    if form.email.data:
        return None, service.Guest(form.email.data, form.name.data or "")
    return None, None


@bp.post("/<int:booking_id>/attendees/<int:attendee_id>/remove")
@login_required
def remove_attendee(booking_id: int, attendee_id: int):
    booking = _load(booking_id)
    if not policy.can(current_user, Action.RESCHEDULE, booking):
        abort(403)
    attendee = db.session.get(Attendee, attendee_id)
    if attendee is None or attendee.booking_id != booking.id:
        abort(404)
    return _run(
        booking,
        lambda: service.remove_attendee(current_user, booking, attendee),
        "Attendee removed.",
    )


@bp.route("/<int:booking_id>/edit", methods=["GET", "POST"])
@login_required
def edit(booking_id: int):
    """Edit and reschedule in one form, with the same live preview as a new booking."""
    booking = _load(booking_id)
    if not policy.can(current_user, Action.RESCHEDULE, booking):
        abort(403)
    if request.method == "GET":
        local = booking.starts_at.astimezone(current_user.zone)
        form = EditForm(
            formdata=None,
            day=local.date(),
            start=local.time().replace(second=0, microsecond=0),
            location_mode=booking.location_mode,
            location_detail=booking.location_detail,
            description=booking.description,
            planned_otj_minutes=booking.planned_otj_minutes,
            organiser_email=_current_organiser(booking),
        )
        return _render_edit(booking, form)
    form = EditForm()
    _mode_choices(form, booking)
    if not form.validate_on_submit() or (starts_at := _when(form)) is None:
        return _render_edit(booking, form, "Check the highlighted fields.", 400)

    def change():
        if starts_at != booking.starts_at:
            service.reschedule(current_user, booking, starts_at)
        if "planned_otj_minutes" in request.form:  # a form without the field keeps the plan
            from app.teams.attendance import set_planned_minutes  # T3: the plan hours meet

            set_planned_minutes(current_user, booking, form.planned_otj_minutes.data)
        return service.update_details(
            current_user,
            booking,
            description=form.description.data or "",
            location_detail=form.location_detail.data or "",
            location_mode=form.location_mode.data or None,
            organiser_email=_organiser(form),
        )

    try:
        change()
        db.session.commit()
    except policy.PermissionDenied:
        db.session.rollback()
        abort(403)
    except (service.ConflictError, TransitionError, service.BookingError) as exc:
        db.session.rollback()
        code = 400 if type(exc) is service.BookingError else 409
        return _render_edit(db.session.get(Booking, booking.id), form, str(exc), code)
    if htmx.wants_fragment():
        return htmx.changed(_detail(booking, notice="Booking saved."))
    flash("Booking saved.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)


def _moved_preview(booking: Booking, form: WhenForm):
    """The people's day if ``booking`` moved to the form's date and time (its own time free)."""
    if form.day.data is None:
        return None
    return day_preview(
        current_user,
        booking.booking_type,
        booking.internal_people,
        form.day.data,
        _quiet_when(form.day.data, form.start.data),
        ignore_booking=booking,
    )


def _current_organiser(booking: Booking) -> str:
    """The organiser of a Teams booking's meeting, for the edit form (else empty)."""
    meeting = getattr(booking, "online_meeting", None) if booking.location_mode == "teams" else None
    return meeting.organiser_email if meeting is not None else ""


def _organiser(form: BookingForm | EditForm) -> str | None:
    """The organiser email entered for a Teams booking (ignored for the other modes)."""
    if form.location_mode.data != "teams":
        return None
    return (form.organiser_email.data or "").strip() or None


def _mode_choices(form: EditForm, booking: Booking) -> None:
    """The ways this booking's type can meet (switching to Teams hands the calendar event
    over to the Teams invitation, K5); Teams only while it works, or when it already is."""
    modes = booking.booking_type.location_modes or [booking.location_mode]
    working = service.working_modes(list(modes))
    modes = [m for m in modes if m in working or m == booking.location_mode]
    form.location_mode.choices = [(m, location_label(m)) for m in modes]


def _render_edit(booking: Booking, form: EditForm, error: str | None = None, status: int = 200):
    _mode_choices(form, booking)
    _prefix_ids(form, "edit")
    result = _moved_preview(booking, form)
    return htmx.render(
        "bookings/edit.html",
        "bookings/_edit_form.html",
        status,
        booking=booking,
        form=form,
        error=error,
        preview=result,
        in_drawer=htmx.wants_fragment(),
    )
