"""Public pages (S1-S5): load, check, call ``public.service``, render. No login anywhere;
links from emails open a page and act only on POST (DESIGN.md)."""

from __future__ import annotations

import base64
import calendar
from datetime import date, timedelta

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for

from app.admin.settings import all_settings
from app.database import utcnow
from app.extensions import db
from app.guard import parse_day, parse_instant
from app.htmx import render
from app.public import forms, service, tokens, visit
from app.public.joining import joining
from app.public.limits import limit_booking_posts, limit_slot_queries
from app.public.models import PublicBooking
from app.public.tokens import LinkState, Purpose

bp = Blueprint("public", __name__, url_prefix="/book")

STATE_PAGES = {
    LinkState.UNKNOWN: (
        404,
        "Link not recognised",
        "This link is not valid. Check that you copied the whole link from your email.",
    ),
    LinkState.EXPIRED: (410, "Link expired", "This link has expired and can no longer be used."),
    LinkState.USED: (
        410,
        "Link already used",
        "This link has already been used and cannot be used again.",
    ),
}


def _page(template: str, status: int = 200, **context):
    settings = all_settings()
    response = make_response(render_template(template, settings=settings, **context), status)
    response.headers["Referrer-Policy"] = "no-referrer"  # token URLs never leak onwards
    return response


def _closed():
    return _page("public/closed.html")


def _enabled() -> bool:
    return bool(all_settings()["public_scheduling_enabled"])


def _link_problem(state: LinkState):
    code, title, message = STATE_PAGES[state]
    return _page("public/link_problem.html", code, title=title, message=message)


ACTIVE = frozenset({"provisional", "confirmed"})
ENDED_PAGES = {
    "cancelled": (
        "Booking cancelled",
        "This booking has been cancelled, so it can no longer be changed or cancelled.",
    ),
    "rejected": (
        "Booking declined",
        "This booking was declined, so it can no longer be changed or cancelled.",
    ),
    "completed": (
        "Booking already took place",
        "This booking has already taken place, so it can no longer be changed or cancelled.",
    ),
}


def _ended(booking):
    """A clear page when the booking behind a manage link is over (staff cancelled or
    declined it, or it took place), else None: changing it is then not possible, and saying
    why beats an error or a slot picker that cannot book."""
    if booking.status in ACTIVE:
        return None
    title, message = ENDED_PAGES.get(
        booking.status, ("Booking closed", "This booking can no longer be changed.")
    )
    return _page("public/link_problem.html", 410, title=title, message=message)


# --- S1 landing ---------------------------------------------------------------------------


@bp.get("")
def landing():
    if not _enabled():
        return _closed()
    kinds = service.public_types()
    ways = {k.id: _ways(k) for k in kinds}
    return _page("public/landing.html", types=kinds, ways=ways)


def _ways(kind) -> str:
    """ "Online or face to face": how a visitor may meet for ``kind``, for the landing page."""
    words = [visit.WHERE_LABELS.get(m, m).lower() for m in service.visitor_modes(kind)]
    text = " or ".join(words)
    return text[:1].upper() + text[1:]


# --- S2 slot picker -------------------------------------------------------------------------


def _parse_day(value: str | None) -> date | None:
    """The day asked for, or None (then the first with free slots): out-of-range years too,
    since week and month maths around year 1 or 9999 overflow."""
    return parse_day(value)


def picker_context(kind, args, default_zone: str) -> dict:
    """Month grid, week of slots and navigation, all in the visitor's zone."""
    zone_name = args.get("tz") or default_zone
    zone = service.zone_or_default(zone_name, default_zone)
    zone_name = zone.key
    today = utcnow().astimezone(zone).date()
    day = _parse_day(args.get("day"))
    if day is None:
        lo, _ = service.local_day_bounds(today, zone)
        upcoming = service.offered_slots(kind, lo, lo + timedelta(days=62))
        day = upcoming[0].start.astimezone(zone).date() if upcoming else today
    day = max(day, today - timedelta(days=today.weekday()))
    week_start = day - timedelta(days=day.weekday())
    month_start = day.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    span_start = min(month_start, week_start)
    span_end = max(month_end, week_start + timedelta(days=7))
    lo, _ = service.local_day_bounds(span_start, zone)
    hi, _ = service.local_day_bounds(span_end, zone)
    slots = service.offered_slots(kind, lo, hi)
    by_day: dict[date, list] = {}
    for slot in slots:
        local = slot.start.astimezone(zone)
        by_day.setdefault(local.date(), []).append((slot, local))
    week = [(week_start + timedelta(days=i)) for i in range(7)]
    month_weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(
        month_start.year, month_start.month
    )
    prev_month = (month_start - timedelta(days=1)).replace(day=1)
    return dict(
        kind=kind,
        zone=zone_name,
        zones=service.zone_names(),
        tz_given=bool(args.get("tz")),
        day=day,
        today=today,
        week=week,
        week_start=week_start,
        month_start=month_start,
        month_weeks=month_weeks,
        by_day=by_day,
        prev_week=week_start - timedelta(days=7),
        next_week=week_start + timedelta(days=7),
        prev_month=prev_month,
        next_month=month_end,
        can_go_back=week_start > today - timedelta(days=today.weekday()),
    )


def _required() -> tuple[bool, bool]:
    return forms.needs(str(all_settings()["contact_required_fields"]))


def _meeting_choices(kind) -> list[dict]:
    """The ways to meet the visitor chooses among, each with what it means for them (the
    address to come to; that the link comes with the confirmation)."""
    from app.bookings.types import detail_for

    choices = []
    for mode in service.visitor_modes(kind):
        detail = detail_for(kind, mode)
        if mode == "face_to_face":
            note = f"At {detail}" if detail else "The address comes with your confirmation"
        else:
            note = "The meeting link comes with your confirmation"
        choices.append({"mode": mode, "label": visit.MODE_CHOICES.get(mode, mode), "note": note})
    return choices


def _summary(booking, record, zone_name: str, manage_token: str | None = None) -> dict:
    """What the pages after booking and the manage page show: start and end in the visitor's
    zone, with whom, where, and "Add to calendar" while the booking is confirmed (the .ics
    inline as a data: link, so no further URL can hand the booking out). The manage link
    goes into the calendar entry only on the manage page, whose address holds it already:
    the page after booking never shows it (it goes to the contact's email only)."""
    zone = service.zone_or_default(zone_name)
    seen = visit.describe(booking, zone, str(all_settings()["organisation_name"]))
    if not seen.calendar_ok or record.pending_confirmation:  # held, not yet confirmed
        return {"visit": seen, "calendar_links": None, "ics_url": None}
    manage = service.manage_url(manage_token) if manage_token else None
    body = base64.b64encode(visit.ics(booking, seen, manage)).decode()
    return {
        "visit": seen,
        "calendar_links": visit.web_links(seen, manage),
        "ics_url": f"data:text/calendar;charset=utf-8;base64,{body}",
    }


@bp.get("/<slug>")
@limit_slot_queries
def picker(slug: str):
    if not _enabled():
        return _closed()
    kind = service.public_type(slug)
    if kind is None:
        abort(404)
    settings = all_settings()
    context = picker_context(kind, request.args, str(settings["organisation_timezone"]))
    context.update(
        settings=settings,
        mode="book",
        nav_endpoint="public.picker",
        nav_args={"slug": slug},
        action=url_for("public.book", slug=slug),
        need_email_phone=_required(),
        form=forms.ContactForm(),
        meeting_choices=_meeting_choices(kind),
        chosen_mode=None,
    )
    return render("public/picker.html", "public/_picker.html", **context)


@bp.post("/<slug>")
@limit_booking_posts
def book(slug: str):
    if not _enabled():
        return _closed()
    kind = service.public_type(slug)
    if kind is None:
        abort(404)
    settings = all_settings()
    zone = service.zone_or_default(request.form.get("tz"), str(settings["organisation_timezone"]))
    if forms.is_bot(request.form):
        # Pretend success, create nothing (S6 honeypot).
        db.session.rollback()
        return _page("public/received.html", kind=kind)
    form = forms.parse(request.form, str(settings["contact_required_fields"]))
    if not form.ok:
        db.session.rollback()
        return _picker_again(kind, zone.key, form, 400)
    contact = service.Contact(form.name, form.email or None, form.phone or None, zone.key)
    mode = request.form.get("location_mode") or None
    try:
        booking, record = service.book(kind, form.start, contact, location_mode=mode)
    except service.OverDailyLimit:
        db.session.commit()  # the re-sent manage links
        return _page("public/over_limit.html", 429, kind=kind, contact=contact)
    except service.JustTaken as exc:
        db.session.rollback()
        gone = "not_offered" if isinstance(exc, service.NotOffered) else "taken"
        return _picker_again(kind, zone.key, form, 409, just_taken=gone, chosen_mode=mode)
    except ValueError as exc:  # a way to meet that is not offered
        db.session.rollback()
        form.errors["location_mode"] = str(exc)
        return _picker_again(kind, zone.key, form, 400, chosen_mode=mode)
    db.session.commit()
    return _page(
        "public/done.html",
        kind=kind,
        booking=booking,
        record=record,
        local=booking.starts_at.astimezone(zone),
        zone=zone.key,
        **_summary(booking, record, zone.key),
    )


def _picker_again(kind, zone_name, form, status, just_taken=None, chosen_mode=None):
    settings = all_settings()
    args = {"tz": zone_name}
    if form.start is not None:
        args["day"] = form.start.astimezone(service.zone_or_default(zone_name)).date().isoformat()
    context = picker_context(kind, args, str(settings["organisation_timezone"]))
    context.update(
        mode="book",
        nav_endpoint="public.picker",
        nav_args={"slug": kind.slug},
        action=url_for("public.book", slug=kind.slug),
        need_email_phone=_required(),
        form=form,
        just_taken=just_taken,
        meeting_choices=_meeting_choices(kind),
        chosen_mode=chosen_mode,
    )
    return _page("public/picker.html", status, **context)


# --- S4 confirmation link -------------------------------------------------------------------


@bp.get("/confirm/<token>")
def confirm(token: str):
    state, row = tokens.lookup(token, Purpose.CONFIRM)
    if row is None:
        return _link_problem(state)
    record = db.session.get(PublicBooking, row.booking_id)
    if row.booking.status not in {"provisional", "confirmed"} or not record.pending_confirmation:
        return _link_problem(LinkState.EXPIRED)
    return _page(
        "public/confirm.html",
        record=record,
        booking=row.booking,
        **_when(record),
        **_summary(row.booking, record, record.visitor_timezone),
    )


@bp.post("/confirm/<token>")
def confirm_post(token: str):
    state, row = tokens.lookup(token, Purpose.CONFIRM)
    if row is None:
        db.session.rollback()
        return _link_problem(state)
    try:
        record = service.confirm_by_link(row)
    except service.LinkUsed as exc:
        db.session.rollback()
        return _link_problem(exc.state)
    db.session.commit()
    return _page(
        "public/confirmed.html",
        booking=row.booking,
        record=record,
        **_when(record),
        **_summary(row.booking, record, record.visitor_timezone),
    )


def _when(record: PublicBooking | None) -> dict:
    zone = service.zone_or_default(record.visitor_timezone if record else None)
    return {
        "zone": zone.key,
        "local": record.booking.starts_at.astimezone(zone) if record else None,
    }


# --- S5 manage link ---------------------------------------------------------------------------


def _manage_row(token: str):
    state, row = tokens.lookup(token, Purpose.MANAGE)
    if row is None:
        return None, None, _link_problem(state)
    record = db.session.get(PublicBooking, row.booking_id)
    if record is None:
        return None, None, _link_problem(LinkState.UNKNOWN)
    return row, record, None


@bp.get("/manage/<token>")
def manage(token: str):
    row, record, problem = _manage_row(token)
    if problem:
        return problem
    return _page(
        "public/manage.html",
        token=token,
        record=record,
        booking=row.booking,
        join=joining(row.booking),
        **_when(record),
        **_summary(row.booking, record, record.visitor_timezone, token),
    )


@bp.get("/manage/<token>/cancel")
def cancel_page(token: str):
    row, record, problem = _manage_row(token)
    if problem:
        return problem
    if ended := _ended(row.booking):
        return ended
    return _page("public/cancel.html", token=token, booking=row.booking, **_when(record))


@bp.post("/manage/<token>/cancel")
def cancel(token: str):
    row, record, problem = _manage_row(token)
    if problem or (problem := _ended(row.booking)):
        db.session.rollback()
        return problem
    try:
        service.cancel_by_link(row)
    except service.LinkUsed:  # cancelled meanwhile, by a concurrent click or by staff
        db.session.rollback()
        return _link_problem(LinkState.USED)  # what a later click gets (the link is used)
    db.session.commit()
    return _page("public/cancelled.html", booking=row.booking, **_when(record))


@bp.get("/manage/<token>/reschedule")
@limit_slot_queries
def reschedule_page(token: str):
    row, record, problem = _manage_row(token)
    if problem:
        return problem
    if ended := _ended(row.booking):
        return ended
    kind = row.booking.booking_type
    args = request.args.to_dict()
    args.setdefault("tz", record.visitor_timezone)
    context = picker_context(kind, args, record.visitor_timezone)
    context.update(
        mode="reschedule",
        booking=row.booking,
        nav_endpoint="public.reschedule_page",
        nav_args={"token": token},
        action=url_for("public.reschedule", token=token),
        need_email_phone=(False, False),
        form=forms.ContactForm(),
    )
    response = render(
        "public/picker.html", "public/_picker.html", settings=all_settings(), **context
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/manage/<token>/reschedule")
@limit_booking_posts
def reschedule(token: str):
    row, record, problem = _manage_row(token)
    if problem or (problem := _ended(row.booking)):
        db.session.rollback()
        return problem
    zone = service.zone_or_default(request.form.get("tz"), record.visitor_timezone)
    start = parse_instant(request.form.get("start"))
    if start is None:
        db.session.rollback()
        return redirect(url_for("public.reschedule_page", token=token, tz=zone.key), 303)
    booking = row.booking
    try:
        if service.slot_at(booking.booking_type, start) is None:
            raise service.gone(booking.booking_type, start)
        service.reschedule(booking, start)
    except (service.JustTaken, ValueError) as exc:
        db.session.rollback()
        message = str(exc) if not isinstance(exc, service.JustTaken) else ""
        not_offered = isinstance(exc, service.NotOffered)
        return _page(
            "public/just_taken.html",
            409,
            token=token,
            zone=zone.key,
            message=message,
            not_offered=not_offered,
        )
    except service.LinkUsed:  # cancelled meanwhile
        db.session.rollback()
        return _ended(row.booking) or _link_problem(LinkState.USED)
    record.visitor_timezone = zone.key
    db.session.commit()
    return _page(
        "public/rescheduled.html",
        token=token,
        booking=booking,
        local=booking.starts_at.astimezone(zone),
        zone=zone.key,
    )


@bp.context_processor
def _helpers():
    return {"tz_obj": service.zone_or_default}
