"""My availability: weekly working hours, date overrides and time off, for the signed-in
person only (every id in a URL is looked up among their own rows)."""

from __future__ import annotations

from datetime import date, time, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts import hours
from app.accounts.access import permission_required
from app.accounts.models import DateOverride, TimeOff
from app.accounts.permissions import Perm
from app.database import utcnow
from app.extensions import db
from app.scheduling.localtime import NonexistentTimeError, local_to_utc, wall_to_utc

bp = Blueprint("hours", __name__, url_prefix="/me/availability")
RANGES_PER_DAY = 2


class FormError(ValueError):
    pass


def _clock(value: str, label: str) -> time | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise FormError(f"{label}: {value!r} is not a time like 09:00.") from exc


def _day(value: str, label: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError as exc:
        raise FormError(f"{label}: choose a date.") from exc


def _range(start: str, end: str, label: str) -> tuple[time, time] | None:
    first, last = _clock(start, label), _clock(end, label)
    if first is None and last is None:
        return None
    if first is None or last is None:
        raise FormError(f"{label}: give both a start and an end, or neither.")
    return first, last


def _page(error: str | None = None, status: int = 200):
    today = utcnow().astimezone(current_user.zone).date()
    overrides = db.session.scalars(
        select(DateOverride)
        .where(DateOverride.user_id == current_user.id, DateOverride.day >= today)
        .order_by(DateOverride.day, DateOverride.start_time)
    ).all()
    time_off = db.session.scalars(
        select(TimeOff)
        .where(TimeOff.user_id == current_user.id, TimeOff.ends_at >= utcnow())
        .order_by(TimeOff.starts_at)
    ).all()
    week = hours.weekly_hours(current_user)
    return render_template(
        "accounts/hours.html",
        week=week,
        weekdays=hours.WEEKDAYS,
        ranges_per_day=RANGES_PER_DAY,
        overrides=overrides,
        time_off=time_off,
        error=error,
        form=request.form if error else None,
    ), status


def _save(change, success: str):
    """Run a change; commit and go back to the page, or roll back and show what to fix."""
    try:
        change()
        db.session.commit()
    except (FormError, hours.HoursError, NonexistentTimeError) as exc:
        db.session.rollback()
        return _page(str(exc), 400)
    flash(success, "success")
    return redirect(url_for("hours.page"), 303)


@bp.get("")
@permission_required(Perm.HOURS_EDIT_OWN)
def page():
    return _page()


@bp.post("/week")
@permission_required(Perm.HOURS_EDIT_OWN)
def save_week():
    def change():
        week = {}
        for day, name in enumerate(hours.WEEKDAYS):
            ranges = [
                _range(
                    request.form.get(f"d{day}_start{n}"), request.form.get(f"d{day}_end{n}"), name
                )
                for n in range(1, RANGES_PER_DAY + 1)
            ]
            week[day] = [r for r in ranges if r]
        hours.set_weekly_hours(current_user, week)

    return _save(change, "Working hours saved.")


@bp.post("/overrides")
@permission_required(Perm.HOURS_EDIT_OWN)
def add_override():
    def change():
        day = _day(request.form.get("day"), "Date")
        span = _range(request.form.get("start"), request.form.get("end"), f"{day:%d %b %Y}")
        hours.set_override(current_user, day, [span] if span else [])

    return _save(change, "Date override saved.")


@bp.post("/overrides/<day>/delete")
@permission_required(Perm.HOURS_EDIT_OWN)
def delete_override(day: str):
    def change():
        if not hours.clear_override(current_user, _day(day, "Date")):
            raise FormError("That override no longer exists.")

    return _save(change, "Date override removed; the weekly hours apply again.")


@bp.post("/time-off")
@permission_required(Perm.HOURS_EDIT_OWN)
def add_time_off():
    def change():
        zone = current_user.zone
        start_day = _day(request.form.get("start_day"), "From")
        end_day = _day(request.form.get("end_day") or request.form.get("start_day"), "Until")
        start_clock = _clock(request.form.get("start_time"), "From")
        end_clock = _clock(request.form.get("end_time"), "Until")
        # No times means whole days: from the first midnight to the midnight after the last.
        start = (
            local_to_utc(start_day, start_clock, zone)
            if start_clock
            else wall_to_utc(start_day, time(0), zone)
        )
        end = (
            local_to_utc(end_day, end_clock, zone)
            if end_clock
            else wall_to_utc(end_day + timedelta(days=1), time(0), zone)
        )
        hours.add_time_off(current_user, start, end, request.form.get("reason", "")[:200])

    return _save(change, "Time off added.")


@bp.post("/time-off/<int:time_off_id>/delete")
@permission_required(Perm.HOURS_EDIT_OWN)
def delete_time_off(time_off_id: int):
    def change():
        if not hours.remove_time_off(current_user, time_off_id):
            raise FormError("That time off no longer exists.")

    return _save(change, "Time off removed.")
