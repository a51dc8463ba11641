"""Editing one's own working hours, date overrides and time off (A1), with the rules here
rather than in the routes: ranges must be ordered and must not overlap on the same day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from itertools import pairwise

from sqlalchemy import delete, select

from app.accounts.models import DateOverride, TimeOff, User, WorkingHoursRule
from app.extensions import db

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class HoursError(ValueError):
    """Working time that cannot be saved; the message says what to fix."""


def _check_ranges(label: str, ranges: Iterable[tuple[time, time]]) -> list[tuple[time, time]]:
    ordered = sorted(ranges)
    for start, end in ordered:
        if end <= start:
            raise HoursError(f"{label}: {start:%H:%M}–{end:%H:%M} ends before it starts.")
    for (_, first_end), (second_start, _) in pairwise(ordered):
        if second_start < first_end:
            raise HoursError(f"{label}: two ranges overlap.")
    return ordered


def weekly_hours(user: User) -> dict[int, list[tuple[time, time]]]:
    rules = db.session.scalars(
        select(WorkingHoursRule)
        .where(WorkingHoursRule.user_id == user.id)
        .order_by(WorkingHoursRule.weekday, WorkingHoursRule.start_time)
    )
    week: dict[int, list[tuple[time, time]]] = {day: [] for day in range(7)}
    for rule in rules:
        week[rule.weekday].append((rule.start_time, rule.end_time))
    return week


def set_weekly_hours(user: User, week: dict[int, list[tuple[time, time]]]) -> None:
    """Replace the person's whole week (every day is validated before anything changes)."""
    checked = {day: _check_ranges(WEEKDAYS[day], week.get(day, [])) for day in range(7)}
    db.session.execute(delete(WorkingHoursRule).where(WorkingHoursRule.user_id == user.id))
    for day, ranges in checked.items():
        for start, end in ranges:
            db.session.add(
                WorkingHoursRule(user_id=user.id, weekday=day, start_time=start, end_time=end)
            )
    db.session.flush()


def set_override(user: User, day: date, ranges: list[tuple[time, time]]) -> None:
    """Replace one date's working time; an empty list makes it a day off."""
    checked = _check_ranges(f"{day:%d %b %Y}", ranges)
    db.session.execute(
        delete(DateOverride).where(DateOverride.user_id == user.id, DateOverride.day == day)
    )
    if not checked:
        db.session.add(DateOverride(user_id=user.id, day=day))
    for start, end in checked:
        db.session.add(DateOverride(user_id=user.id, day=day, start_time=start, end_time=end))
    db.session.flush()


def clear_override(user: User, day: date) -> int:
    result = db.session.execute(
        delete(DateOverride).where(DateOverride.user_id == user.id, DateOverride.day == day)
    )
    return result.rowcount or 0


def add_time_off(user: User, starts_at: datetime, ends_at: datetime, reason: str = "") -> TimeOff:
    if ends_at <= starts_at:
        raise HoursError("Time off must end after it starts.")
    row = TimeOff(user_id=user.id, starts_at=starts_at, ends_at=ends_at, reason=reason.strip())
    db.session.add(row)
    db.session.flush()
    return row


def remove_time_off(user: User, time_off_id: int) -> bool:
    """Only the person's own rows: another person's id simply is not found."""
    result = db.session.execute(
        delete(TimeOff).where(TimeOff.id == time_off_id, TimeOff.user_id == user.id)
    )
    return bool(result.rowcount)
