"""The pick-a-slot template globals as they were before issue [14] (permissions and url_for
per cell), for the old path of bench/bench_calendar.py."""

from __future__ import annotations

from flask import url_for
from flask_login import current_user

from app.accounts.permissions import Perm


def _pick_url(day, person_id: int) -> str | None:
    if not current_user.can(Perm.BOOKINGS_CREATE):
        return None
    if person_id != current_user.id and not current_user.can(Perm.BOOKINGS_ASSIGN):
        return None
    return url_for("bookings.new", day=day.isoformat(), people=person_id)


def slot_pick_url(column, params, window, index: int) -> str | None:
    if params.scope == "team":
        return _pick_url(params.day, int(column.key))
    return _pick_url(window.days[index].date, current_user.id)


def lane_pick_url(lane, day) -> str | None:
    return _pick_url(day, lane.person_id)
