"""The team calendar page: ``/calendar?view=week&date=2026-11-23&scope=team&group=…&type=…``.

One URL serves the whole page and, for HTMX navigation, just the ``#calendar`` fragment
(DESIGN "HTMX conventions"). Thin: read the query, authorise, load, render.
"""

from __future__ import annotations

from flask import Blueprint, abort, request
from flask_login import current_user, login_required

from app.accounts.permissions import Perm
from app.calendar.queries import BadRequest, default_scope, load_calendar, parse_params
from app.database import utcnow
from app.htmx import render

bp = Blueprint("calendar", __name__)


@bp.after_request
def _vary(response):
    """Page and fragment share a URL, so caches must key on HX-Request (errors too)."""
    response.vary.add("HX-Request")
    return response


@bp.get("/calendar")
@login_required
def index():
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
