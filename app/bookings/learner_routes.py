"""Booking for oneself (S7), in the person's own time zone: choose a type, choose a free
time from a week of them, confirm. And moving or cancelling one's own booking the same way.

Thin: load, authorise (``bookings.policy`` through ``bookings.learner``), call, commit once,
render. Week navigation and choosing a time are GETs that HTMX swaps in place (the same URL
serves the page without JavaScript); booking, moving and cancelling are POSTs with CSRF.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from app import htmx
from app.accounts.models import User
from app.bookings import learner, policy, service
from app.bookings.lifecycle import Action, TransitionError
from app.bookings.models import Booking, BookingType, Status
from app.database import utcnow
from app.extensions import db
from app.scheduling.localtime import wall_to_utc

bp = Blueprint("learner", __name__, url_prefix="/me/book")

EMPTY_MESSAGE = "Nothing can be booked here yet; ask your training provider."
MAX_WEEKS_AHEAD = 106  # a little over the longest booking horizon (730 days)


# --- helpers ------------------------------------------------------------------------------


def _refused(message: str, status: int = 403):
    """A refusal page (or its message, for HTMX) saying why; nothing was written."""
    db.session.rollback()
    template = "errors/_message.html" if htmx.wants_fragment() else "errors/page.html"
    title = {403: "Not allowed", 404: "Not found"}.get(status, "Cannot change this booking")
    response = make_response(
        render_template(template, code=status, title=title, message=message), status
    )
    response.vary.add("HX-Request")
    return response


def _bookable_or_refuse(slug: str) -> BookingType:
    kind = learner.find_type(slug)
    if kind is None:
        abort(404)
    if not policy.may_book_type(current_user, kind):
        abort(
            _refused(
                f"{kind.name} is not something you can book yourself. "
                "Ask your training provider to arrange it."
            )
        )
    return kind


def _own_or_404(booking_id: int) -> Booking:
    return learner.own_booking(current_user, booking_id) or abort(404)


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _parse_start(value: str | None) -> datetime | None:
    """An aware instant from an offered time's ISO value, or None."""
    try:
        parsed = datetime.fromisoformat((value or "").strip())
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None or not 1900 < parsed.year < 3000:
        return None
    return parsed


def _week(kind: BookingType, booking: Booking | None, day: date | None, start_value: str | None):
    """A week of free times in the person's zone, and the chosen one if still free."""
    zone = current_user.zone
    today = utcnow().astimezone(zone).date()
    this_week = today - timedelta(days=today.weekday())
    if day is None:
        day = learner.first_free_day(current_user, kind, zone, booking) or today
    week_start = day - timedelta(days=day.weekday())
    week_start = min(max(week_start, this_week), this_week + timedelta(weeks=MAX_WEEKS_AHEAD))
    lo = wall_to_utc(week_start, time(0), zone)
    hi = wall_to_utc(week_start + timedelta(days=7), time(0), zone)
    slots = learner.offered_slots(current_user, kind, lo, hi, booking=booking)
    by_day: dict[date, list] = {}
    for slot in slots:
        local = slot.start.astimezone(zone)
        by_day.setdefault(local.date(), []).append((slot, local))
    start = _parse_start(start_value)
    chosen = next((s for s in slots if start is not None and s.start == start), None)
    holder = db.session.get(User, chosen.people[0]) if chosen and chosen.people else None
    return dict(
        kind=kind,
        booking=booking,
        zone=zone.key,
        week_start=week_start,
        days=[week_start + timedelta(days=i) for i in range(7)],
        by_day=by_day,
        prev_week=week_start - timedelta(days=7) if week_start > this_week else None,
        next_week=week_start + timedelta(days=7),
        chosen=chosen,
        chosen_local=chosen.start.astimezone(zone) if chosen else None,
        chosen_end_local=chosen.end.astimezone(zone) if chosen else None,
        holder=holder,
        gone=start_value is not None and chosen is None,
        needs_approval=kind.requires_approval,
    )


def _picker(
    kind: BookingType,
    booking: Booking | None = None,
    *,
    status: int = 200,
    error: str | None = None,
    day: date | None = None,
    start_value: str | None = None,
):
    if day is None:
        day = _parse_day(request.args.get("day"))
    if start_value is None and request.method == "GET":
        start_value = request.args.get("start")
    context = _week(kind, booking, day, start_value)
    if booking is None:
        context.update(
            nav_url=url_for("learner.picker", slug=kind.slug),
            action=url_for("learner.book", slug=kind.slug),
        )
    else:
        url = url_for("learner.reschedule", booking_id=booking.id)
        context.update(nav_url=url, action=url)
    return htmx.render(
        "bookings/learner_picker.html",
        "bookings/_learner_picker.html",
        status,
        error=error,
        **context,
    )


def _local_day(value: datetime | None) -> date | None:
    return value.astimezone(current_user.zone).date() if value else None


@bp.app_template_global()
def own_booking_changes(booking: Booking) -> list[str]:
    """The changes (``reschedule``, ``cancel``) the viewer may make to their own booking on
    these pages: the learner's buttons in the booking drawer and lists."""
    if not getattr(current_user, "is_authenticated", False) or not current_user.is_learner:
        return []
    if booking.learner_id != current_user.id:
        return []
    return [
        action.value
        for action in (Action.RESCHEDULE, Action.CANCEL)
        if learner.may_change(current_user, booking, action)
    ]


# --- choosing a type ------------------------------------------------------------------------


@bp.get("")
@login_required
def index():
    bookings = learner.upcoming(current_user)
    return render_template(
        "bookings/learner_index.html",
        types=learner.bookable_types(current_user),
        bookings=bookings,
        changes={b.id: own_booking_changes(b) for b in bookings},
        empty_message=EMPTY_MESSAGE,
        **_own_otj(),
    )


def _own_otj() -> dict:
    """The learner's off-the-job minutes per month (T4), the last twelve months."""
    from app.admin.settings import get_setting
    from app.teams import otj_report
    from app.teams.attendance import zone_named

    zone_name = str(get_setting("organisation_timezone"))
    zone = zone_named(zone_name)
    first, last = otj_report.default_months(utcnow().astimezone(zone).date())
    lines = otj_report.lines(zone, first, last, current_user.id)
    return {"otj_rows": otj_report.monthly(zone, lines), "otj_zone": zone_name}


# --- choosing a time and booking it --------------------------------------------------------


@bp.get("/<slug>")
@login_required
def picker(slug: str):
    return _picker(_bookable_or_refuse(slug))


@bp.post("/<slug>")
@login_required
def book(slug: str):
    kind = _bookable_or_refuse(slug)
    raw = request.form.get("start")
    starts_at = _parse_start(raw)
    if starts_at is None:
        db.session.rollback()
        return _picker(kind, status=400, error="Choose one of the free times below.")
    try:
        booking = learner.book(current_user, kind, starts_at)
        db.session.commit()
    except policy.PermissionDenied as exc:
        return _refused(str(exc))
    except learner.JustTaken as exc:
        db.session.rollback()
        return _picker(kind, status=409, error=str(exc), day=_local_day(starts_at), start_value="")
    except (service.BookingError, TransitionError) as exc:
        db.session.rollback()
        return _picker(kind, status=400, error=str(exc), day=_local_day(starts_at))
    state = (
        "it is waiting for approval" if booking.status == Status.PROVISIONAL else "it is confirmed"
    )
    flash(f"Booked: {booking.title}; {state}.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)


# --- one's own bookings ---------------------------------------------------------------------


def _refuse_change(booking: Booking, action: Action):
    refusal = learner.change_refusal(current_user, booking, action)
    return _refused(str(refusal)) if refusal is not None else None


@bp.get("/bookings/<int:booking_id>/reschedule")
@login_required
def reschedule_page(booking_id: int):
    booking = _own_or_404(booking_id)
    refused = _refuse_change(booking, Action.RESCHEDULE)
    if refused is not None:
        return refused
    return _picker(booking.booking_type, booking)


@bp.post("/bookings/<int:booking_id>/reschedule")
@login_required
def reschedule(booking_id: int):
    booking = _own_or_404(booking_id)
    refused = _refuse_change(booking, Action.RESCHEDULE)
    if refused is not None:
        return refused
    kind = booking.booking_type
    starts_at = _parse_start(request.form.get("start"))
    if starts_at is None:
        db.session.rollback()
        return _picker(kind, booking, status=400, error="Choose one of the free times below.")
    try:
        learner.reschedule(current_user, booking, starts_at)
        db.session.commit()
    except policy.PermissionDenied as exc:
        return _refused(str(exc))
    except learner.JustTaken as exc:
        db.session.rollback()
        booking = db.session.get(Booking, booking_id)
        return _picker(
            kind, booking, status=409, error=str(exc), day=_local_day(starts_at), start_value=""
        )
    except (service.BookingError, TransitionError) as exc:
        db.session.rollback()
        booking = db.session.get(Booking, booking_id)
        return _picker(kind, booking, status=400, error=str(exc), day=_local_day(starts_at))
    flash("Booking moved.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)


@bp.post("/bookings/<int:booking_id>/cancel")
@login_required
def cancel(booking_id: int):
    booking = _own_or_404(booking_id)
    refused = _refuse_change(booking, Action.CANCEL)
    if refused is not None:
        return refused
    try:
        learner.cancel(current_user, booking)
        db.session.commit()
    except policy.PermissionDenied as exc:
        return _refused(str(exc))
    except TransitionError as exc:
        return _refused(str(exc), 409)
    flash("Booking cancelled. The time is free again and everyone involved is told.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)
