"""Teams meetings through Microsoft Graph (T1, T2), driven by the outbox like write-back.

Every ``booking.*`` / ``attendee.*`` message asks "make the meeting match this booking now":
a Teams booking inside its scheduling window gets a calendar event in the organiser's
mailbox with ``isOnlineMeeting`` and ``onlineMeetingProvider: teamsForBusiness`` (Microsoft
then sends the invitations and makes the join link); a move, an edit or an attendee change
PATCHes it; a cancel, a reject or a switch away from Teams cancels it (Microsoft tells the
attendees). A meeting not yet inside the window waits; ``schedule_due`` (the periodic job,
``flask teams schedule``) pushes the ones that entered it.

As in write-back, each delivery is split in three so no Graph call runs inside a database
transaction: ``_plan`` reads (short transaction), ``_run`` calls Graph with none open,
``_record`` stores the outcome. Creates carry the meeting's ``transactionId``, so a retried
POST (the event reached Microsoft, our commit did not) returns the first event, never a
second meeting; later calls use the stored event id.

Faults behave as K6: 429/503 keep the meeting waiting and the outbox retries after
Retry-After; a refused client secret marks the organisation connection for re-linking.
A meeting Microsoft will not make (secret refused, organiser not in the tenant, Graph
refusing) is marked failed with the reason for staff, the owner is told, and the booking
falls back to write-back and .ics (``bookings.writeback.teams_takes_over``), so nobody is
left without an invitation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking, Status
from app.bookings.service import lock_booking
from app.bookings.writeback import PENDING_PREFIX, calendar_title
from app.connections.providers import provider_for, provider_settings
from app.connections.providers.base import (
    AuthFailed,
    EventMissing,
    ProviderError,
    RateLimited,
    TemporaryFailure,
)
from app.connections.sync import mark_needs_relink
from app.database import utcnow
from app.extensions import db
from app.notifications.models import Notification
from app.outbox import OutboxMessage, PartialFailure, Send, emit, handles
from app.teams import service
from app.teams.models import MeetingState, OnlineMeeting

log = logging.getLogger(__name__)

PUSH_KIND = "booking.teams_push"  # "booking.*": ordered with the booking's other messages
LIVE_STATUSES = frozenset({Status.PROVISIONAL, Status.CONFIRMED})
CANCEL_COMMENT = "This meeting was cancelled in Slotbook."


class TeamsRetry(PartialFailure):
    """Microsoft asked us to wait (429) or failed for a passing reason (5xx)."""


@dataclass(frozen=True)
class _Plan:
    action: str  # "create", "update", "cancel"
    meeting_id: int
    booking_id: int
    mailbox: str
    event_id: str | None
    body: dict


@dataclass
class _Outcome:
    event: dict | None = None
    online_meeting_id: str | None = None
    failed: str | None = None
    relink: str | None = None
    retry: ProviderError | None = None


# --- the outbox handler ----------------------------------------------------------------


@handles("booking.*", "attendee.*")
def meeting_message(message: OutboxMessage) -> Send | None:
    if message.kind == PUSH_KIND:
        return None  # push_message runs it, at the job's clock
    booking = db.session.get(Booking, message.payload.get("booking_id"))
    if booking is None:
        return None
    return reconcile(booking)


def reconcile(booking: Booking, now: datetime | None = None) -> Send | None:
    """The Graph call that makes the booking's meeting match it, as a ``Send`` (None when
    there is nothing to call: no meeting, still waiting for the window, already failed)."""
    plan = _plan(booking, now or utcnow())
    if plan is None:
        return None
    connection = service.organisation_connection()
    if connection is None:
        _fail_now(booking, service.unavailable_reason() or "No Microsoft 365 connection.")
        return None
    settings = replace(provider_settings(), http_attempts=1, max_retry_wait=0, timeout=15)
    provider = provider_for(connection, settings)
    connection_id = connection.id
    return Send(
        io=lambda: _run(provider, plan),
        record=lambda outcome: _record(plan, connection_id, outcome),
    )


def _plan(booking: Booking, now: datetime) -> _Plan | None:
    meeting: OnlineMeeting | None = booking.online_meeting
    if meeting is None or meeting.state in {MeetingState.FAILED, MeetingState.CANCELLED}:
        return None
    wanted = booking.location_mode == service.TEAMS and booking.status in LIVE_STATUSES
    if not wanted:
        if booking.status in {Status.COMPLETED, Status.NO_SHOW}:
            return None  # held: the meeting stays as it was (its attendance is read later)
        if meeting.graph_event_id:
            return _make(meeting, booking, "cancel", {"comment": CANCEL_COMMENT})
        meeting.state = MeetingState.CANCELLED  # never made: nothing to tell Microsoft
        meeting.push_after = None
        return None
    if meeting.graph_event_id:
        return _make(meeting, booking, "update", event_body(booking, meeting))
    meeting.push_after = service.push_after_for(booking.starts_at)  # the window as set now
    if meeting.push_after > now:
        return None  # outside the window: the periodic job pushes it later
    body = event_body(booking, meeting)
    body["transactionId"] = meeting.transaction_id
    return _make(meeting, booking, "create", body)


def _make(meeting: OnlineMeeting, booking: Booking, action: str, body: dict) -> _Plan:
    return _Plan(
        action, meeting.id, booking.id, meeting.organiser_email, meeting.graph_event_id, body
    )


def event_body(booking: Booking, meeting: OnlineMeeting) -> dict:
    """The Graph event: titled with the type / component name, the description as agenda,
    every attendee but the organiser invited, an online meeting by Teams."""
    tentative = booking.status == Status.PROVISIONAL
    return {
        "subject": (PENDING_PREFIX if tentative else "") + calendar_title(booking),
        "body": {"contentType": "text", "content": booking.description or ""},
        "start": {"dateTime": _naive_utc(booking.starts_at), "timeZone": "UTC"},
        "end": {"dateTime": _naive_utc(booking.ends_at), "timeZone": "UTC"},
        "showAs": "tentative" if tentative else "busy",
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "allowNewTimeProposals": False,
        "attendees": attendees_for(booking, meeting.organiser_email),
    }


def attendees_for(booking: Booking, organiser: str) -> list[dict]:
    """Everyone on the booking (learner, employer, mentor, other staff, guests) but the
    organiser, once each, so Microsoft sends each of them the invitation."""
    seen, people = {organiser.lower()}, []
    for attendee in booking.attendees:
        email = (attendee.user.email if attendee.user else attendee.email) or ""
        name = attendee.user.name if attendee.user else attendee.name
        email = email.strip().lower()
        if email and email not in seen:
            seen.add(email)
            people.append(
                {"emailAddress": {"address": email, "name": name or email}, "type": "required"}
            )
    return people


# --- the calls (no transaction open) -----------------------------------------------------


def _run(provider, plan: _Plan) -> _Outcome:
    outcome = _Outcome()
    try:
        if plan.action == "cancel":
            provider.cancel_online_event(plan.mailbox, plan.event_id, CANCEL_COMMENT)
        elif plan.action == "update":
            try:
                outcome.event = provider.update_online_event(plan.mailbox, plan.event_id, plan.body)
            except EventMissing:  # deleted by hand in Outlook: the booking still stands
                body = dict(plan.body, transactionId=f"{plan.booking_id}-{utcnow().timestamp()}")
                outcome.event = provider.create_online_event(plan.mailbox, body)
        else:
            outcome.event = provider.create_online_event(plan.mailbox, plan.body)
        join_url = _join_url(outcome.event)
        if join_url:
            outcome.online_meeting_id = _find_meeting_id(provider, plan.mailbox, join_url)
    except AuthFailed as exc:
        outcome.relink = outcome.failed = str(exc)
    except (RateLimited, TemporaryFailure) as exc:
        outcome.retry = exc
    except EventMissing:
        outcome.failed = (
            f"The organiser {plan.mailbox} is not a user of the organisation's Microsoft 365 "
            "tenant, so Teams cannot create the meeting in their calendar."
        )
    except ProviderError as exc:
        outcome.failed = str(exc)
    return outcome


def _find_meeting_id(provider, mailbox: str, join_url: str) -> str | None:
    """The onlineMeeting id (for attendance). Teams' application access policy may not allow
    it yet; the meeting stands without it and the attendance job looks again."""
    try:
        return provider.find_online_meeting_id(mailbox, join_url)
    except (RateLimited, TemporaryFailure):
        return None
    except ProviderError as exc:
        log.info("onlineMeeting lookup failed: %s", exc)
        return None


def resolve_online_meeting_id(meeting: OnlineMeeting) -> str | None:
    """For the attendance job: the onlineMeeting id of a scheduled meeting, looked up (and
    stored by the caller) when the push could not find it. Network: call outside a
    transaction."""
    if meeting.graph_online_meeting_id or not meeting.join_url:
        return meeting.graph_online_meeting_id
    connection = service.organisation_connection()
    if connection is None:
        return None
    provider = provider_for(connection)
    return provider.find_online_meeting_id(meeting.organiser_email, meeting.join_url)


def _join_url(event: dict | None) -> str | None:
    online = (event or {}).get("onlineMeeting") or {}
    return online.get("joinUrl") or (event or {}).get("onlineMeetingUrl") or None


# --- storing what happened (a short transaction) -------------------------------------------


def _record(plan: _Plan, connection_id: int, outcome: _Outcome) -> None:
    meeting = db.session.get(OnlineMeeting, plan.meeting_id, populate_existing=True)
    if meeting is None:
        return
    booking = lock_booking(meeting.booking)
    meeting.attempts = (meeting.attempts or 0) + 1
    if outcome.retry is not None:
        meeting.error = f"Microsoft asked Slotbook to wait: {outcome.retry}"
        raise TeamsRetry(str(outcome.retry), retry_after=getattr(outcome.retry, "retry_after", 0))
    if outcome.relink:
        from app.connections.models import Connection

        connection = db.session.get(Connection, connection_id, populate_existing=True)
        if connection is not None:
            text = f"Could not create a Teams meeting: {outcome.relink}"
            mark_needs_relink(connection, text, utcnow())
    if outcome.failed:
        if plan.action == "cancel":
            meeting.error = outcome.failed  # the booking no longer wants it either way
            meeting.state = MeetingState.CANCELLED
            return
        if plan.action == "update":  # the meeting exists and its invitations went out
            meeting.error = f"Could not update the Teams meeting: {outcome.failed}"
            return
        _fall_back(booking, meeting, outcome.failed)
        return
    if plan.action == "cancel":
        meeting.state = MeetingState.CANCELLED
        meeting.push_after = None
        meeting.error = None
        return
    event = outcome.event or {}
    meeting.state = MeetingState.SCHEDULED
    meeting.graph_event_id = str(event.get("id") or plan.event_id or "")
    meeting.etag = event.get("@odata.etag")
    meeting.join_url = _join_url(event) or meeting.join_url
    if outcome.online_meeting_id:
        meeting.graph_online_meeting_id = outcome.online_meeting_id
    meeting.error = None
    if plan.action == "create":
        db.session.add(
            AuditEntry(
                booking=booking,
                actor_id=None,
                action="teams_scheduled",
                changes={"join_url": [None, meeting.join_url]},
            )
        )


def _fail_now(booking: Booking, reason: str) -> None:
    meeting = booking.online_meeting
    if meeting is not None:
        _fall_back(booking, meeting, reason)


def _fall_back(booking: Booking, meeting: OnlineMeeting, reason: str) -> None:
    """The meeting cannot be made: say why to staff, tell the owner, and let write-back and
    the .ics invitations stand in (a "booking.updated" message makes both happen)."""
    log.warning("Teams meeting for booking %s failed: %s", booking.id, reason)
    meeting.state = MeetingState.FAILED
    meeting.error = reason
    meeting.push_after = None
    db.session.add(
        AuditEntry(
            booking=booking, actor_id=None, action="teams_failed", changes={"teams": [None, reason]}
        )
    )
    if booking.owner_id is not None:
        db.session.add(
            Notification(
                user_id=booking.owner_id,
                rule="teams_failed",
                title=f"Teams meeting not created: {booking.title}",
                body=f"{reason} Slotbook sent calendar invitations instead.",
                url=f"/bookings/{booking.id}",
                booking_id=booking.id,
            )
        )
    db.session.flush()
    emit(
        "booking.updated",
        booking_id=booking.id,
        status=booking.status,
        sequence=booking.sequence,
        actor_id=None,
    )


# --- the window job (T2) ------------------------------------------------------------------


def due_meetings(now: datetime) -> list[int]:
    """Booking ids whose meeting waits and has entered the window (as the window is set
    now: a changed setting applies to meetings already waiting)."""
    window_end = now + timedelta(days=service.window_days())
    return list(
        db.session.scalars(
            select(OnlineMeeting.booking_id)
            .join(Booking, Booking.id == OnlineMeeting.booking_id)
            .where(
                OnlineMeeting.state == MeetingState.WAITING,
                Booking.starts_at <= window_end,
                Booking.status.in_(list(LIVE_STATUSES)),
                Booking.location_mode == service.TEAMS,
            )
            .order_by(Booking.starts_at)
        )
    )


def schedule_due(now: datetime | None = None) -> int:
    """Queue the push of every meeting that entered the window (one outbox row each, so one
    meeting's trouble retries only that meeting). The caller commits."""
    now = now or utcnow()
    ids = due_meetings(now)
    for booking_id in ids:
        emit(PUSH_KIND, booking_id=booking_id, now=now.isoformat())
    return len(ids)


def run_periodic(now: datetime | None = None) -> int | None:
    """The periodic job: the worker ticks it every 15 minutes, and it works once per
    ``teams_schedule_interval_hours`` (a Redis claim per interval, so workers and restarts
    never double it). None when this interval's run already happened. The caller commits."""
    from app.extensions import redis_client

    now = now or utcnow()
    seconds = service.interval_hours() * 3600
    number = int(now.timestamp() // seconds)
    claim = f"slotbook:teams-schedule:{seconds}:{number}"
    if not redis_client().set(claim, "1", nx=True, ex=seconds * 2):
        return None
    return schedule_due(now)


@handles(PUSH_KIND)
def push_message(message: OutboxMessage) -> Send | None:
    """``reconcile`` at the job's clock: a meeting the job found inside the window is pushed
    even when the job ran with an injected time (tests, ``flask teams schedule --now``)."""
    booking = db.session.get(Booking, message.payload.get("booking_id"))
    if booking is None:
        return None
    stamp = message.payload.get("now")
    now = datetime.fromisoformat(stamp) if stamp else utcnow()
    return reconcile(booking, max(now, utcnow()))


def _naive_utc(value: datetime) -> str:
    from datetime import UTC

    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")
