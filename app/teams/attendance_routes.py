"""Screens of T3/T4: staff review of "needs review" attendance, and the off-the-job report.

Thin: load (a booking only if the sender may see it), authorise, call ``app.teams.attendance``
or ``app.teams.otj_report``, commit once, render. The review is a POST with CSRF that answers
like the booking's other actions (the drawer for HTMX, a redirect otherwise).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_login import current_user, login_required

from app.accounts.access import permission_required
from app.accounts.permissions import Perm
from app.admin.settings import get_setting
from app.bookings import policy
from app.bookings.lifecycle import Action
from app.database import utcnow
from app.teams import otj_report
from app.teams.attendance import review, zone_named

bp = Blueprint("otj", __name__)


# --- reviewing a "needs review" result -------------------------------------------------------


@bp.post("/bookings/<int:booking_id>/attendance")
@login_required
def review_attendance(booking_id: int):
    """404 unless the sender sees the booking, 403 without bookings.edit (like its actions)."""
    from app.bookings.routes import _load, _run

    booking = _load(booking_id)
    if not policy.can(current_user, Action.RESCHEDULE, booking):
        abort(403)
    raw = (request.form.get("minutes") or "").strip()
    minutes = None
    if raw:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 5:
            return _refuse(booking, "Enter the off-the-job minutes as a whole number.")
        minutes = int(raw)

    # An AttendanceError is a BookingError: _run shows it in the drawer with a 400.
    return _run(
        booking, lambda: review(current_user, booking, minutes), "Off-the-job minutes recorded."
    )


def _refuse(booking, message: str):
    from app.bookings.routes import _detail

    return _detail(booking, message, 400)


# --- the off-the-job report ------------------------------------------------------------------


def _report_input():
    """(zone name, zone, first month, last month, learner id or None) from the query string,
    or a 400 page saying what is wrong."""
    zone_name = str(get_setting("organisation_timezone"))
    zone = zone_named(zone_name)
    first, last = otj_report.default_months(utcnow().astimezone(zone).date())
    try:
        first = otj_report.parse_month(request.args.get("from"), first)
        last = otj_report.parse_month(request.args.get("to"), last)
        otj_report.month_range(first, last)
        learner = (request.args.get("learner") or "").strip()
        if learner and not (learner.isascii() and learner.isdigit() and len(learner) <= 12):
            raise otj_report.ReportError("Choose a learner from the list.")
    except otj_report.ReportError as exc:
        return None, str(exc)
    return (zone_name, zone, first, last, int(learner) if learner else None), None


@bp.get("/reports/otj")
@permission_required(Perm.BOOKINGS_VIEW_ALL)
def report():
    values, error = _report_input()
    learners = otj_report.learners_with_plans()
    if error:
        return render_template("teams/otj_report.html", error=error, learners=learners), 400
    zone_name, zone, first, last, learner_id = values
    lines = otj_report.lines(zone, first, last, learner_id)
    return render_template(
        "teams/otj_report.html",
        rows=otj_report.monthly(zone, lines),
        lines=lines if learner_id else [],
        learners=learners,
        learner_id=learner_id,
        first=first,
        last=last,
        zone_name=zone_name,
        error=None,
    )


@bp.get("/reports/otj.csv")
@permission_required(Perm.BOOKINGS_VIEW_ALL)
def report_csv():
    values, error = _report_input()
    if error:
        return Response(error + "\n", 400, mimetype="text/plain")
    zone_name, zone, first, last, learner_id = values
    rows = otj_report.monthly(zone, otj_report.lines(zone, first, last, learner_id))
    name = f"off-the-job-{first:%Y-%m}-to-{last:%Y-%m}.csv"
    return Response(
        otj_report.to_csv(rows, zone_name),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.app_template_filter("otj_hours")
def otj_hours(minutes: int | None) -> str:
    return otj_report.hours(minutes)
