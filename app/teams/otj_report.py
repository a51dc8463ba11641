"""The off-the-job report (T4): per learner and month, minutes recorded against minutes planned.

What a training provider shows an auditor, so it counts only what can be defended: planned
minutes of bookings that could have taken place (confirmed, completed, no-show), and recorded
minutes only where attendance was verified (by the Teams job or a reviewed correction).
Months are calendar months in the organisation's time zone, and the report says so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.accounts.models import User
from app.bookings.models import Booking
from app.extensions import db
from app.teams.attendance import HELD_STATUSES
from app.teams.attendance_models import AttendanceState, MeetingAttendance

MAX_MONTHS = 36  # one page (and one CSV) covers at most three years


class ReportError(Exception):
    """Bad report parameters; the message is for people."""


@dataclass
class MonthRow:
    learner_id: int
    learner_name: str
    learner_email: str
    month: date  # the first day of the month, in the organisation's zone
    planned: int = 0
    recorded: int = 0
    needs_review: int = 0
    pending: int = 0
    bookings: int = 0

    @property
    def month_label(self) -> str:
        return self.month.strftime("%B %Y")


@dataclass(frozen=True)
class BookingLine:
    booking: Booking
    planned: int
    recorded: int | None
    state: str  # an AttendanceState value, or "" when attendance is not read (not Teams)


def parse_month(value: str | None, default: date) -> date:
    """``YYYY-MM`` → the month's first day; refuses anything else with a clear message."""
    if value is None or value.strip() == "":
        return default
    try:
        parsed = datetime.strptime(value.strip(), "%Y-%m").date()
    except ValueError:
        raise ReportError(f"“{value[:20]}” is not a month: use YYYY-MM, e.g. 2026-09.") from None
    if not 2000 <= parsed.year <= 2100:
        raise ReportError("Choose a month between the years 2000 and 2100.")
    return parsed


def month_range(first: date, last: date) -> tuple[date, date]:
    if last < first:
        raise ReportError("The last month comes before the first month.")
    if _index(last) - _index(first) >= MAX_MONTHS:
        raise ReportError(f"Choose at most {MAX_MONTHS} months at a time.")
    return first, last


def default_months(today: date) -> tuple[date, date]:
    """The last twelve months, this one included."""
    this = today.replace(day=1)
    return _month_at(_index(this) - 11), this


def lines(
    zone: ZoneInfo, first: date, last: date, learner_id: int | None = None
) -> list[BookingLine]:
    """Every booking with planned minutes in the months, oldest first."""
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    after = _month_at(_index(last) + 1)
    end = datetime(after.year, after.month, 1, tzinfo=zone)
    query = (
        select(Booking, MeetingAttendance)
        .outerjoin(MeetingAttendance, MeetingAttendance.booking_id == Booking.id)
        .where(
            Booking.learner_id.is_not(None),
            Booking.planned_otj_minutes.is_not(None),
            Booking.status.in_(HELD_STATUSES),
            Booking.starts_at >= start,
            Booking.starts_at < end,
        )
        .options(selectinload(Booking.learner))
        .order_by(Booking.starts_at, Booking.id)
    )
    if learner_id is not None:
        query = query.where(Booking.learner_id == learner_id)
    result = []
    for booking, row in db.session.execute(query):
        state = str(row.state) if row is not None else ""
        if not state and booking.location_mode == "teams":
            state = AttendanceState.PENDING.value
        recorded = row.otj_minutes if row and row.state == AttendanceState.RECORDED else None
        result.append(BookingLine(booking, booking.planned_otj_minutes, recorded, state))
    return result


def monthly(zone: ZoneInfo, booking_lines: Iterable[BookingLine]) -> list[MonthRow]:
    """The lines added up per learner and month (learners by name, months in order)."""
    rows: dict[tuple[int, date], MonthRow] = {}
    for line in booking_lines:
        booking, learner = line.booking, line.booking.learner
        month = booking.starts_at.astimezone(zone).date().replace(day=1)
        row = rows.setdefault(
            (learner.id, month), MonthRow(learner.id, learner.name, learner.email, month)
        )
        row.bookings += 1
        row.planned += line.planned
        row.recorded += line.recorded or 0
        row.needs_review += line.state == AttendanceState.NEEDS_REVIEW
        row.pending += line.state == AttendanceState.PENDING
    return sorted(rows.values(), key=lambda r: (r.learner_name.lower(), r.learner_id, r.month))


def learners_with_plans() -> list[User]:
    """Learners who have at least one booking with planned minutes (the report's filter)."""
    ids = select(Booking.learner_id).where(Booking.planned_otj_minutes.is_not(None)).distinct()
    return list(db.session.scalars(select(User).where(User.id.in_(ids)).order_by(User.name)))


def to_csv(rows: list[MonthRow], zone_name: str) -> str:
    """One line per learner and month; minutes as whole numbers, hours to two places."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "learner",
            "email",
            "month",
            "time_zone",
            "planned_minutes",
            "recorded_minutes",
            "recorded_hours",
            "bookings",
            "needs_review",
            "pending",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                _cell(r.learner_name),
                _cell(r.learner_email),
                r.month.strftime("%Y-%m"),
                zone_name,
                r.planned,
                r.recorded,
                f"{r.recorded / 60:.2f}",
                r.bookings,
                r.needs_review,
                r.pending,
            ]
        )
    return out.getvalue()


def hours(minutes: int | None) -> str:
    """Minutes as people read them: "1 h 50 min", "45 min", "0 min"."""
    if minutes is None:
        return "—"
    whole, rest = divmod(int(minutes), 60)
    if whole and rest:
        return f"{whole} h {rest} min"
    return f"{whole} h" if whole else f"{rest} min"


def _cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas: make them text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _index(month: date) -> int:
    return month.year * 12 + month.month - 1


def _month_at(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)
