"""The team calendar page: ``/calendar?view=week&date=2026-11-23&scope=team&group=…&type=…``.

One URL serves the whole page and, for HTMX navigation, just the ``#calendar`` fragment
(DESIGN "HTMX conventions"). Thin: read the query, authorise, load, render.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request, url_for
from flask_login import current_user, login_required

from app.accounts.permissions import Perm
from app.calendar import setup
from app.calendar.items import cal_item, lane_cells
from app.calendar.queries import BadRequest, default_scope, load_calendar, parse_params
from app.database import collector_paused, utcnow
from app.htmx import render, wants_fragment

bp = Blueprint("calendar", __name__)
bp.add_app_template_global(cal_item, "cal_item")  # one calendar item's HTML (issue [14])
bp.add_app_template_global(lane_cells, "lane_cells")  # a Team week row's day cells


@bp.after_request
def _vary(response):
    """Page and fragment share a URL, so caches must key on HX-Request (errors too)."""
    response.vary.add("HX-Request")
    return response


def _setup_checklist():
    """The first-run checklist instead of an empty calendar, for people who can set up an
    organisation that has no booking type or no staff yet (``?setup=skip`` shows the
    calendar anyway; HTMX navigation inside the calendar never gets the checklist)."""
    if request.args.get("setup") == "skip" or wants_fragment():
        return None
    if not (setup.can_set_up(current_user) and setup.organisation_is_empty(current_user)):
        return None
    general = url_for("settings_screens.section", slug="general")
    urls = {
        "organisation": general,
        "hours": url_for("hours.page"),
        "staff": url_for("people.new"),
        "booking_type": url_for("booking_types.new"),
        "calendars": url_for("connections.index"),
        "public": general,
    }
    steps = setup.checklist(current_user, urls)
    return render_template("calendar/setup.html", steps=steps)


@bp.get("/calendar")
@login_required
def index():
    checklist = _setup_checklist()
    if checklist is not None:
        return checklist
    with collector_paused():
        return _calendar()


def _calendar():
    today = utcnow().astimezone(current_user.zone).date()
    try:
        params = parse_params(request.args, today=today, scope=default_scope(current_user))
        if params.scope == "team" and not current_user.can(Perm.CALENDAR_VIEW_TEAM):
            abort(403)
        calendar = load_calendar(current_user, params)
    except BadRequest as exc:
        return render(
            "errors/page.html",
            "errors/_message.html",
            400,
            code=400,
            title="Cannot show that",
            message=str(exc),
        )
    return render("calendar/index.html", "calendar/_calendar.html", cal=calendar)


# --- starting a booking from an empty slot (issue 15) ------------------------------------


def _pick_url(day, person_id: int) -> str | None:
    """The booking form for ``person_id`` on ``day``, or None when the viewer cannot book
    there (no bookings.create, or someone else without bookings.assign).

    A Team week asks this for every person and day (700 cells for 100 people), so the
    viewer's permissions and the form's address are worked out once per request."""
    viewer = g.get("calendar_pick")
    if viewer is None:
        viewer = g.calendar_pick = (
            current_user.id,
            current_user.can(Perm.BOOKINGS_CREATE),
            current_user.can(Perm.BOOKINGS_ASSIGN),
            url_for("bookings.new"),
        )
    me, can_create, can_assign, base = viewer
    if not can_create:
        return None
    if person_id != me and not can_assign:
        return None
    return f"{base}?day={day.isoformat()}&people={person_id}"


@bp.app_template_global()
def slot_pick_url(column, params, window, index: int) -> str | None:
    """For a time-grid column: a day of the viewer's own week, or a person's column on the
    Team day view. static/js/slot-pick.js adds the start time picked in the column."""
    if params.scope == "team":
        return _pick_url(params.day, int(column.key))
    return _pick_url(window.days[index].date, current_user.id)


@bp.app_template_global()
def lane_pick_url(lane, day) -> str | None:
    """For a day cell of a person's row on the Team week view (no time: chosen in the form)."""
    return _pick_url(day, lane.person_id)
