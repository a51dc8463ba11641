"""Teams attendance → off-the-job minutes (T3, seed 001).

Each night, for every ended Teams booking whose minutes are planned, the job reads the meeting's
attendance reports through Graph with the organisation connection (the organiser's
``onlineMeetings/{id}/attendanceReports`` and each report's ``attendanceRecords``, following
``@odata.nextLink``) and applies seed 001's rules, in ``decide``:

- the learner did not join → nothing is recorded;
- the organiser and the learner only → the learner's attended minutes;
- three or more people joined → the whole meeting's duration;
- held on another day than booked (in the organisation's time zone) → nothing is recorded
  automatically: the booking is flagged "needs review" for staff, who confirm or correct;
- only bookings with planned minutes are looked at.

Reports appear some time after a meeting ends; a meeting without any is tried again the next
night, up to ``TEAMS_ATTENDANCE_MAX_TRIES`` nights, then it needs review. A recorded result
adds "<name> hours verified" with the minutes to the booking's history and, when the type
says so, completes the booking.

Like write-back, each run is split in three so Graph is never called inside a database
transaction: ``_prepare`` reads what to check (and the provider) and ends the transaction,
``_read_sessions`` calls Graph with none open, ``_record`` stores each booking's result in its
own short transaction under the booking's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.bookings import policy
from app.bookings.lifecycle import Action
from app.bookings.models import AuditEntry, Booking, LocationMode, Status
from app.bookings.service import BookingError
from app.connections.providers.base import AuthFailed, ProviderError
from app.database import begin_write, utcnow
from app.extensions import db
from app.teams.attendance_models import AttendanceState, MeetingAttendance

log = logging.getLogger(__name__)

DEFAULT_MAX_TRIES = 3
MAX_REVIEW_MINUTES = 24 * 60  # a correction longer than a day is a typing mistake
# Bookings whose meeting may have taken place (a cancelled or rejected one did not).
HELD_STATUSES = (Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW)


class AttendanceError(BookingError):
    """A review or plan that cannot be saved; the message is for people (a 400 on screens)."""


# --- the rules (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class Presence:
    """One person in one session of the meeting, as an attendance record gives them."""

    email: str
    name: str
    seconds: int
    organiser: bool = False


@dataclass(frozen=True)
class Session:
    """One attendance report: a time the meeting was open, and who joined."""

    start: datetime
    end: datetime
    people: tuple[Presence, ...] = ()


@dataclass(frozen=True)
class Outcome:
    state: AttendanceState
    otj_minutes: int | None
    reason: str
    people: list[dict] = field(default_factory=list)
    meeting_minutes: int | None = None
    held_at: datetime | None = None


def decide(
    sessions: Iterable[Session],
    *,
    learner_email: str,
    organiser_email: str,
    booked_start: datetime,
    zone: ZoneInfo,
) -> Outcome:
    """Seed 001's rules for a meeting with at least one report. Minutes are whole minutes
    attended (seconds // 60), never rounded up: an auditor may count them."""
    sessions = sorted(sessions, key=lambda s: s.start)
    people = _people(sessions, organiser_email)
    summary = [{"email": p.email, "name": p.name, "minutes": p.seconds // 60} for p in people]
    meeting_seconds = sum(max(0, int((s.end - s.start).total_seconds())) for s in sessions)
    common = {
        "people": summary,
        "meeting_minutes": meeting_seconds // 60,
        "held_at": sessions[0].start if sessions else None,
    }
    learner = next((p for p in people if p.email == learner_email.lower()), None)
    if learner is None or learner.seconds <= 0:
        return Outcome(AttendanceState.NONE, None, "The learner did not join.", **common)
    joined = [p for p in people if p.seconds > 0]
    if len(joined) >= 3:
        minutes, why = meeting_seconds // 60, "three or more people joined: the whole meeting"
    elif len(joined) == 2 and any(p.organiser for p in joined if p is not learner):
        minutes, why = learner.seconds // 60, "the organiser and the learner: the learner's time"
    else:
        return Outcome(
            AttendanceState.NEEDS_REVIEW,
            learner.seconds // 60,
            "The organiser did not join, so the learner's time was not counted automatically.",
            **common,
        )
    booked_day = booked_start.astimezone(zone).date()
    other_days = sorted({s.start.astimezone(zone).date() for s in sessions} - {booked_day})
    if other_days:
        return Outcome(
            AttendanceState.NEEDS_REVIEW,
            minutes,
            f"The meeting was held on {_day(other_days[0])}, not on the day it was booked for "
            f"({_day(booked_day)}), so nothing was recorded automatically.",
            **common,
        )
    return Outcome(AttendanceState.RECORDED, minutes, f"Recorded from Teams ({why}).", **common)


def _people(sessions: list[Session], organiser_email: str) -> list[Presence]:
    """Everyone who appears in any session, their seconds added up, keyed by lower-case email."""
    found: dict[str, Presence] = {}
    for session in sessions:
        for person in session.people:
            key = person.email.lower()
            before = found.get(key)
            found[key] = Presence(
                key,
                person.name or (before.name if before else key),
                person.seconds + (before.seconds if before else 0),
                person.organiser
                or key == organiser_email.lower()
                or bool(before and before.organiser),
            )
    return sorted(found.values(), key=lambda p: (not p.organiser, p.email))


def _day(value: date) -> str:
    return value.strftime("%a %d %b %Y")


# --- reading Graph ------------------------------------------------------------------------


class ReportsNotReady(Exception):
    """Graph has no attendance report for the meeting (yet)."""


def read_sessions(provider, organiser: str, meeting_id: str) -> list[Session]:
    """Every attendance report of the meeting with its records, following every nextLink.
    ``provider`` is the organisation's ``GraphOrgProvider``."""
    base = f"/users/{quote(organiser, safe='@')}/onlineMeetings/{quote(meeting_id, safe='')}"
    sessions = []
    for report in provider._pages(provider._url(f"{base}/attendanceReports")):
        records = provider._pages(
            provider._url(
                f"{base}/attendanceReports/{quote(str(report['id']), safe='')}/attendanceRecords"
            )
        )
        sessions.append(
            Session(
                start=_graph_time(report.get("meetingStartDateTime")),
                end=_graph_time(report.get("meetingEndDateTime")),
                people=tuple(_presence(r) for r in records if _email_of(r)),
            )
        )
    if not sessions:
        raise ReportsNotReady
    return sessions


def find_meeting_id(provider, organiser: str, join_url: str) -> str:
    """The onlineMeeting id behind a join URL (the calendar event only carries the URL)."""
    flt = "JoinWebUrl eq '" + join_url.replace("'", "''") + "'"
    url = provider._url(
        f"/users/{quote(organiser, safe='@')}/onlineMeetings?" + urlencode({"$filter": flt})
    )
    for meeting in provider._pages(url):
        if meeting.get("id"):
            return str(meeting["id"])
    raise ProviderError("Microsoft Graph found no Teams meeting for the stored join link.")


def _presence(record: dict) -> Presence:
    identity = record.get("identity") or {}
    return Presence(
        email=_email_of(record),
        name=str(identity.get("displayName") or ""),
        seconds=int(record.get("totalAttendanceInSeconds") or 0),
        organiser=str(record.get("role") or "").lower() == "organizer",
    )


def _email_of(record: dict) -> str:
    return str(record.get("emailAddress") or "").strip().lower()


def _graph_time(value) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


# --- the nightly job ----------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    booking_id: int
    organiser: str
    meeting_id: str | None
    join_url: str | None
    learner_email: str
    booked_start: datetime


@dataclass
class RunSummary:
    checked: int = 0
    recorded: int = 0
    needs_review: int = 0
    none: int = 0
    pending: int = 0
    error: str | None = None
    lines: list[str] = field(default_factory=list)


def run(booking_id: int | None = None, now: datetime | None = None) -> RunSummary:
    """Check every ended Teams booking with planned minutes whose attendance is still open
    (or only ``booking_id``); returns what happened, for the CLI and the job's log."""
    now = now or utcnow()
    summary = RunSummary()
    work, provider, zone = _prepare(booking_id, now, summary)
    for item in work:
        summary.checked += 1
        found = None  # an onlineMeeting id looked up by join URL, kept for the next nights
        try:
            meeting_id = item.meeting_id or find_meeting_id(provider, item.organiser, item.join_url)
            found = None if item.meeting_id else meeting_id
            outcome = decide(
                read_sessions(provider, item.organiser, meeting_id),
                learner_email=item.learner_email,
                organiser_email=item.organiser,
                booked_start=item.booked_start,
                zone=zone,
            )
            failure = None
        except ReportsNotReady:
            outcome, failure = None, "Teams has no attendance report for the meeting yet."
        except AuthFailed as exc:
            # The organisation connection is refused: every other booking would be too, and
            # none of them should use up a night's try for it.
            summary.error = str(exc)
            summary.lines.append(f"Stopped: {exc}")
            break
        except ProviderError as exc:
            outcome, failure = None, f"Microsoft Graph: {exc}"
        _record(item, outcome, failure, now, summary, found)
    return summary


def _prepare(booking_id: int | None, now: datetime, summary: RunSummary):
    from app.admin.settings import get_setting
    from app.connections.providers import provider_for
    from app.connections.service import organisation_connection
    from app.teams.models import MeetingState, OnlineMeeting

    query = (
        select(Booking, OnlineMeeting)
        .join(OnlineMeeting, OnlineMeeting.booking_id == Booking.id)
        .outerjoin(MeetingAttendance, MeetingAttendance.booking_id == Booking.id)
        .where(
            Booking.location_mode == LocationMode.TEAMS,
            Booking.status.in_(HELD_STATUSES),
            Booking.ends_at <= now,
            Booking.planned_otj_minutes.is_not(None),
            OnlineMeeting.state == MeetingState.SCHEDULED,
            (MeetingAttendance.id.is_(None)) | (MeetingAttendance.state == AttendanceState.PENDING),
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    if booking_id is not None:
        query = query.where(Booking.id == booking_id)
    work = []
    for booking, meeting in db.session.execute(query):
        learner = booking.learner
        organiser = (meeting.organiser_email or "").strip().lower()
        if (
            learner is None
            or not organiser
            or not (meeting.graph_online_meeting_id or meeting.join_url)
        ):
            summary.lines.append(f"Booking {booking.id}: no learner or no Teams meeting to read.")
            continue
        work.append(
            Work(
                booking.id,
                organiser,
                meeting.graph_online_meeting_id,
                meeting.join_url,
                learner.email.lower(),
                booking.starts_at,
            )
        )
    connection = organisation_connection()
    provider = provider_for(connection) if (work and connection is not None) else None
    zone = zone_named(str(get_setting("organisation_timezone")))
    db.session.commit()  # end the read: Graph is called with no transaction open
    if work and provider is None:
        summary.error = "No Microsoft 365 organisation connection: attendance cannot be read."
        summary.lines.append(summary.error)
        return [], None, zone
    return work, provider, zone


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _max_tries() -> int:
    return int(current_app.config.get("TEAMS_ATTENDANCE_MAX_TRIES", DEFAULT_MAX_TRIES))


def _record(
    item: Work,
    outcome: Outcome | None,
    failure: str | None,
    now: datetime,
    summary: RunSummary,
    found_meeting_id: str | None = None,
) -> None:
    """Store one booking's result in its own transaction, under the booking's lock, unless
    someone settled it meanwhile (a reviewer, or another run)."""
    from app.bookings.service import lock_booking
    from app.teams.models import OnlineMeeting

    begin_write()
    booking = db.session.get(Booking, item.booking_id)
    if booking is None:
        db.session.rollback()
        return
    lock_booking(booking)
    row = _row(booking)
    if row.state != AttendanceState.PENDING:
        db.session.rollback()
        return
    row.checked_at = now
    meeting = db.session.scalars(
        select(OnlineMeeting).where(OnlineMeeting.booking_id == booking.id)
    ).first()
    if found_meeting_id and meeting is not None and not meeting.graph_online_meeting_id:
        meeting.graph_online_meeting_id = found_meeting_id
    if outcome is None:
        row.tries = (row.tries or 0) + 1
        if row.tries >= _max_tries():
            row.state = AttendanceState.NEEDS_REVIEW
            row.reason = f"{failure} Tried on {row.tries} nights; please enter the minutes."
        else:
            row.reason = f"{failure} Slotbook will try again tomorrow night."
    else:
        row.state = outcome.state
        row.otj_minutes = outcome.otj_minutes
        row.reason = outcome.reason
        row.people = outcome.people
        row.meeting_minutes = outcome.meeting_minutes
        row.held_at = outcome.held_at
        if outcome.state == AttendanceState.RECORDED:
            _verified(booking, row, None)
    state = str(row.state)
    setattr(summary, state, getattr(summary, state) + 1)
    summary.lines.append(f"Booking {booking.id}: {row.state.replace('_', ' ')}. {row.reason}")
    db.session.commit()


def _row(booking: Booking) -> MeetingAttendance:
    row = db.session.scalars(
        select(MeetingAttendance).where(MeetingAttendance.booking_id == booking.id)
    ).first()
    if row is None:
        row = MeetingAttendance(booking=booking, state=AttendanceState.PENDING, people=[], tries=0)
        db.session.add(row)
    return row


def _verified(booking: Booking, row: MeetingAttendance, actor: User | None) -> None:
    """The history note seed 001 asks for, and completion where the type says so."""
    from app.bookings.service import complete

    db.session.add(
        AuditEntry(
            booking=booking,
            actor_id=actor.id if actor else None,
            action="hours_verified",
            changes={
                "note": [None, f"{booking.title} hours verified"],
                "off_the_job_minutes": [None, row.otj_minutes],
            },
        )
    )
    if booking.booking_type.complete_on_verified and booking.status == Status.CONFIRMED:
        complete(actor, booking)


# --- staff review -------------------------------------------------------------------------


def review(actor: User, booking: Booking, minutes: int | None) -> MeetingAttendance:
    """Staff confirm (``minutes`` as proposed) or correct a "needs review" result; audited,
    and it counts as verified hours like the job's. The caller commits."""
    from app.bookings.service import lock_booking

    lock_booking(booking)
    policy.require(actor, Action.RESCHEDULE, booking)  # bookings.edit on this booking
    row = booking.attendance
    if row is None or row.state != AttendanceState.NEEDS_REVIEW:
        raise AttendanceError("This booking's attendance does not need a review.")
    proposed = row.otj_minutes
    if minutes is None:
        minutes = proposed
    if minutes is None or not 0 <= minutes <= MAX_REVIEW_MINUTES:
        raise AttendanceError(
            f"Enter the off-the-job minutes attended, from 0 to {MAX_REVIEW_MINUTES}."
        )
    db.session.add(
        AuditEntry(
            booking=booking,
            actor_id=actor.id,
            action="attendance_reviewed",
            changes={"off_the_job_minutes": [proposed, minutes]},
        )
    )
    row.state = AttendanceState.RECORDED
    row.otj_minutes = minutes
    row.reviewed_by_id = actor.id
    row.reviewed_at = utcnow()
    verb = "Confirmed" if minutes == proposed else "Corrected"
    row.reason = f"{verb} by {actor.name} after review. {row.reason}"
    _verified(booking, row, actor)
    return row


# --- what screens and the API show --------------------------------------------------------


def attendance_json(booking: Booking) -> dict | None:
    """The API's ``attendance`` object: null unless the booking is a Teams meeting with
    planned minutes (the only ones seed 001 turns into hours)."""
    if booking.location_mode != LocationMode.TEAMS or booking.planned_otj_minutes is None:
        return None
    row = booking.attendance
    if row is None:
        return {"state": AttendanceState.PENDING.value, "otj_minutes": None, "people": []}
    minutes = row.otj_minutes if row.state == AttendanceState.RECORDED else None
    return {
        "state": str(row.state),
        "otj_minutes": minutes,
        "people": [{"email": p["email"], "minutes": p["minutes"]} for p in row.people or []],
    }


# --- planned minutes (on booking types and bookings) --------------------------------------

MAX_PLANNED_MINUTES = 24 * 60


def check_planned(minutes: int | None) -> int | None:
    """A planned number of off-the-job minutes, or None (not planned: no hours recorded)."""
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise AttendanceError("Planned off-the-job minutes must be a whole number.")
    if not 1 <= minutes <= MAX_PLANNED_MINUTES:
        raise AttendanceError(
            f"Planned off-the-job minutes must be from 1 to {MAX_PLANNED_MINUTES}, or empty."
        )
    return minutes


def set_planned_minutes(actor: User | None, booking: Booking, minutes: int | None) -> bool:
    """Change a booking's planned off-the-job minutes (bookings.edit), audited; True when it
    changed. Attendance already recorded keeps its minutes: the plan is what it is measured
    against, not what was attended. The caller commits."""
    from app.bookings.service import lock_booking

    lock_booking(booking)
    policy.require(actor, Action.RESCHEDULE, booking)
    minutes = check_planned(minutes)
    if minutes == booking.planned_otj_minutes:
        return False
    db.session.add(
        AuditEntry(
            booking=booking,
            actor_id=actor.id if actor else None,
            action="updated",
            changes={"planned_otj_minutes": [booking.planned_otj_minutes, minutes]},
        )
    )
    booking.planned_otj_minutes = minutes
    return True
