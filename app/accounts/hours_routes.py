"""Availability screens: weekly working hours, date overrides and time off.

The same handlers serve two blueprints: ``hours`` (``/me/availability``, the signed-in person,
``hours.edit_own``) and ``people.hours`` (``/admin/people/<id>/availability``, a chosen person,
``people.manage``, registered under the people blueprint). Every id in a URL is looked up
among the chosen person's own rows, and times are read and shown in that person's zone.
"""

from __future__ import annotations

from datetime import date, time, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.accounts import hours
from app.accounts.access import permission_required
from app.accounts.models import DateOverride, TimeOff, User
from app.accounts.people import MAX_ID, get_person, may_edit
from app.accounts.permissions import Perm
from app.database import utcnow
from app.extensions import db
from app.scheduling.localtime import NonexistentTimeError, local_to_utc, wall_to_utc

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


def _shown_in(zone):
    def show(value) -> str:
        local = value.astimezone(zone)
        return f"{local.strftime('%a %d %b %Y, %H:%M')} {local.tzname()}"

    return show


def _signed_in(view_args: dict) -> User:
    return current_user._get_current_object()


def _chosen(view_args: dict) -> User:
    """The person whose availability a manager edits: 404 when unknown, 403 when their role
    has rights the manager lacks (the same rule as editing them)."""
    person = get_person(view_args.get("person_id")) or abort(404)
    if not may_edit(current_user, person):
        abort(403)
    return person


def _blueprint(name: str, url_prefix: str, permission: str, who) -> Blueprint:
    """The availability routes for one audience; ``who(view_args)`` is the person edited."""
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    def person_and_args(view_args: dict) -> tuple[User, dict]:
        person = who(view_args)
        args = {"person_id": person.id} if "person_id" in view_args else {}
        return person, args

    def render(person: User, args: dict, error: str | None = None, status: int = 200):
        zone = person.zone
        today = utcnow().astimezone(zone).date()
        overrides = db.session.scalars(
            select(DateOverride)
            .where(DateOverride.user_id == person.id, DateOverride.day >= today)
            .order_by(DateOverride.day, DateOverride.start_time)
        ).all()
        time_off = db.session.scalars(
            select(TimeOff)
            .where(TimeOff.user_id == person.id, TimeOff.ends_at >= utcnow())
            .order_by(TimeOff.starts_at)
        ).all()
        return render_template(
            "accounts/hours.html",
            person=person,
            own=not args,
            hours_bp=request.blueprint,
            hours_args=args,
            show=_shown_in(zone),
            week=hours.weekly_hours(person),
            weekdays=hours.WEEKDAYS,
            ranges_per_day=RANGES_PER_DAY,
            overrides=overrides,
            time_off=time_off,
            error=error,
            form=request.form if error else None,
        ), status

    def save(view_args: dict, change, success: str):
        """Run a change; commit and go back to the page, or roll back and show what to fix."""
        person, args = person_and_args(view_args)
        try:
            change(person)
            db.session.commit()
        except (FormError, hours.HoursError, NonexistentTimeError) as exc:
            db.session.rollback()
            return render(person, args, str(exc), 400)
        flash(success if not args else f"{person.name}: {success}", "success")
        return redirect(url_for(f"{request.blueprint}.page", **args), 303)

    @bp.get("")
    @permission_required(permission)
    def page(**view_args):
        return render(*person_and_args(view_args))

    @bp.post("/week")
    @permission_required(permission)
    def save_week(**view_args):
        def change(person):
            week = {}
            for day, name in enumerate(hours.WEEKDAYS):
                ranges = [
                    _range(
                        request.form.get(f"d{day}_start{n}"),
                        request.form.get(f"d{day}_end{n}"),
                        name,
                    )
                    for n in range(1, RANGES_PER_DAY + 1)
                ]
                week[day] = [r for r in ranges if r]
            hours.set_weekly_hours(person, week)

        return save(view_args, change, "Working hours saved.")

    @bp.post("/overrides")
    @permission_required(permission)
    def add_override(**view_args):
        def change(person):
            day = _day(request.form.get("day"), "Date")
            span = _range(request.form.get("start"), request.form.get("end"), f"{day:%d %b %Y}")
            hours.set_override(person, day, [span] if span else [])

        return save(view_args, change, "Date override saved.")

    @bp.post("/overrides/<day>/delete")
    @permission_required(permission)
    def delete_override(day: str, **view_args):
        def change(person):
            if not hours.clear_override(person, _day(day, "Date")):
                raise FormError("That override no longer exists.")

        return save(view_args, change, "Date override removed; the weekly hours apply again.")

    @bp.post("/time-off")
    @permission_required(permission)
    def add_time_off(**view_args):
        def change(person):
            zone = person.zone
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
            hours.add_time_off(person, start, end, request.form.get("reason", "")[:200])

        return save(view_args, change, "Time off added.")

    @bp.post("/time-off/<int:time_off_id>/delete")
    @permission_required(permission)
    def delete_time_off(time_off_id: int, **view_args):
        def change(person):
            if time_off_id > MAX_ID or not hours.remove_time_off(person, time_off_id):
                raise FormError("That time off no longer exists.")

        return save(view_args, change, "Time off removed.")

    return bp


# The signed-in person's own availability (the "My availability" screen).
bp = _blueprint("hours", "/me/availability", Perm.HOURS_EDIT_OWN, _signed_in)
# Anyone's availability, for people.manage; registered under the people blueprint, so its
# endpoints are ``people.hours.*`` at /admin/people/<person_id>/availability.
others_bp = _blueprint("hours", "/<int:person_id>/availability", Perm.PEOPLE_MANAGE, _chosen)
