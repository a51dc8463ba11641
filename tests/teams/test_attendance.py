"""Teams attendance → off-the-job minutes (T3, seed 001), through the nightly job against the
local Microsoft Graph stand-in (attendanceReports and attendanceRecords, paged with
@odata.nextLink as Graph pages them): one test per rule of the seed, the retry of reports that
are not ready, the review staff do (audited), and the API's ``attendance`` object."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.bookings.models import AuditEntry, Booking
from app.connections import service as connections
from app.database import begin_write
from app.extensions import db
from app.teams.attendance_models import MeetingAttendance
from app.teams.models import OnlineMeeting
from tests.conftest import at, csrf_from, login
from tests.connections.test_cli import allow_private_urls
from tests.fakes import graph_server as _fake_microsoft

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls

_numbers = itertools.count(1)
TUTOR = "tess.tutor@contoso.test"
LEARNER = "lee.learner@contoso.test"


# --- set-up -------------------------------------------------------------------------------


@pytest.fixture
def ms(app, graph_server):
    """The organisation connection to the stand-in, which knows the tutor and the learner."""
    allow_private_urls(app)
    app.config.update(
        MS_AUTHORITY_HOST=graph_server.authority_host, MS_GRAPH_URL=graph_server.graph_url
    )
    graph_server.add_user(TUTOR, "Tess Tutor")
    graph_server.add_user(LEARNER, "Lee Learner")
    with app.app_context():
        begin_write()
        connections.save_organisation_connection(
            graph_server.tenant_id, graph_server.client_id, graph_server.client_secret, False
        )
        db.session.commit()
    return graph_server


@pytest.fixture
def people(factory):
    tutor = factory.user("agent", email=TUTOR, name="Tess Tutor")
    learner = factory.user("learner", email=LEARNER, name="Lee Learner")
    return tutor, learner


def ended_teams_booking(
    app,
    factory,
    people,
    *,
    planned: int | None = 60,
    days_ago: int = 1,
    hour: int = 10,
    complete: bool = False,
) -> tuple[int, str]:
    """A confirmed one-hour Teams review held ``days_ago`` at ``hour``:00 UTC, its meeting
    scheduled in Graph (as the meeting helper leaves it); returns booking and meeting ids."""
    tutor, learner = people
    n = next(_numbers)
    kind = factory.booking_type(
        name="Progress review",
        slug=f"review-{n}",
        planned_otj_minutes=planned,
        complete_on_verified=complete,
    )
    booking = factory.booking(None, kind, at(5 + n, 10), [tutor], learner=learner)
    meeting_id = f"MSo1N2Y5ZGFjYy03MWJmLTQ3NDMtYjQxMy01M2EdFGkdRWHJlQ{n}"
    start = at(-days_ago, hour)
    with app.app_context():
        begin_write()
        row = db.session.get(Booking, booking.id)
        row.location_mode = "teams"
        row.starts_at, row.ends_at = start, start + timedelta(hours=1)
        db.session.add(
            OnlineMeeting(
                booking_id=row.id,
                state="scheduled",
                organiser_email=TUTOR,
                organiser_user_id=tutor.id,
                graph_event_id=f"AAMkAGevent{n}",
                graph_online_meeting_id=meeting_id,
                join_url=f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{n}%40thread.v2/0",
            )
        )
        db.session.commit()
    return booking.id, meeting_id


def session(ms, meeting_id: str, start: datetime, people: list[tuple[str, str, int]]) -> str:
    """One attendance report of an hour-long session starting at ``start``."""
    return ms.add_attendance_report(TUTOR, meeting_id, start, start + timedelta(hours=1), people)


def nightly(app) -> int:
    """The nightly job, as the worker runs it (its own app context)."""
    from app import jobs

    with app.app_context():
        return jobs.record_teams_attendance()


def attendance(app, booking_id: int) -> MeetingAttendance | None:
    with app.app_context():
        row = db.session.scalars(
            select(MeetingAttendance).where(MeetingAttendance.booking_id == booking_id)
        ).first()
        db.session.commit()
        return row


def history(app, booking_id: int) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(
            select(AuditEntry).where(AuditEntry.booking_id == booking_id).order_by(AuditEntry.id)
        ).all()
        db.session.commit()
        return rows


def verified_notes(app, booking_id: int) -> list[dict]:
    return [e.changes for e in history(app, booking_id) if e.action == "hours_verified"]


def api_attendance(app, client, booking_id: int, owner_email: str = "otj-owner@example.test"):
    from app.accounts.tokens import create_token

    with app.app_context():
        begin_write()
        owner = db.session.scalar(select(User).where(User.email == owner_email))
        if owner is None:
            from app.accounts.service import create_user

            owner = create_user(owner_email, "Owner", "owner", "a-long-password-1")
        secret = create_token(owner, "otj test")[1]
        db.session.commit()
    response = client.get(
        f"/api/v1/bookings/{booking_id}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["attendance"]


# --- seed 001's rules, one test each -----------------------------------------------------------


def test_learner_absent_records_nothing(app, client, factory, people, ms):
    booking_id, meeting = ended_teams_booking(app, factory, people)
    start = at(-1, 10)
    session(ms, meeting, start, [(TUTOR, "Organizer", 3600)])

    assert nightly(app) == 1
    row = attendance(app, booking_id)
    assert row.state == "none" and row.otj_minutes is None
    assert row.people == [{"email": TUTOR, "name": "Tess Tutor", "minutes": 60}]
    assert verified_notes(app, booking_id) == []
    assert api_attendance(app, client, booking_id) == {
        "state": "none",
        "otj_minutes": None,
        "people": [{"email": TUTOR, "minutes": 60}],
    }
    assert nightly(app) == 0  # settled: not read again


def test_organiser_and_learner_record_the_learners_minutes_across_pages(
    app, client, factory, people, ms
):
    """Tutor 60 min, learner 50 min → 50 minutes; reports and records come one per page."""
    ms.attendance_page_size = 1
    booking_id, meeting = ended_teams_booking(app, factory, people)
    start = at(-1, 10)
    # Two sessions on the booked day (the learner dropped out and came back): 30 + 20 minutes.
    session(ms, meeting, start, [(TUTOR, "Organizer", 2400), (LEARNER, "Attendee", 1800)])
    session(
        ms,
        meeting,
        start + timedelta(minutes=40),
        [(TUTOR, "Organizer", 1200), (LEARNER, "Attendee", 1200)],
    )

    nightly(app)
    row = attendance(app, booking_id)
    assert (row.state, row.otj_minutes) == ("recorded", 50)
    assert [n["note"][1] for n in verified_notes(app, booking_id)] == [
        "Progress review hours verified"
    ]
    assert verified_notes(app, booking_id)[0]["off_the_job_minutes"] == [None, 50]
    paged = [r for r in ms.graph_requests("GET", "attendance") if "skiptoken" in r.query]
    assert {r.path.rsplit("/", 1)[-1] for r in paged} == {"attendanceReports", "attendanceRecords"}
    assert api_attendance(app, client, booking_id) == {
        "state": "recorded",
        "otj_minutes": 50,
        "people": [{"email": TUTOR, "minutes": 60}, {"email": LEARNER, "minutes": 50}],
    }


def test_three_people_record_the_whole_meeting(app, factory, people, ms):
    """Tutor 60, learner 50, someone the link was shared with 40 → the meeting's 60 minutes."""
    booking_id, meeting = ended_teams_booking(app, factory, people)
    session(
        ms,
        meeting,
        at(-1, 10),
        [
            (TUTOR, "Organizer", 3600),
            (LEARNER, "Attendee", 3000),
            ("pat.guest@elsewhere.test", "Attendee", 2400),
        ],
    )

    nightly(app)
    row = attendance(app, booking_id)
    assert (row.state, row.otj_minutes, row.meeting_minutes) == ("recorded", 60, 60)
    assert len(row.people) == 3
    assert verified_notes(app, booking_id)[0]["off_the_job_minutes"] == [None, 60]


def test_held_on_another_day_needs_review_and_staff_correct_it(app, client, factory, people, ms):
    booking_id, meeting = ended_teams_booking(app, factory, people, days_ago=2)
    held = at(-1, 14)  # the day after the booked one
    session(ms, meeting, held, [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 2700)])

    nightly(app)
    row = attendance(app, booking_id)
    assert row.state == "needs_review"
    assert row.otj_minutes == 45  # what the rules would give, not recorded
    assert "not on the day it was booked for" in row.reason
    assert verified_notes(app, booking_id) == []
    assert api_attendance(app, client, booking_id)["state"] == "needs_review"
    assert api_attendance(app, client, booking_id)["otj_minutes"] is None

    manager = factory.user("booking-manager", email="mo@example.test", name="Mo Manager")
    login(client, manager.email)
    page = f"/bookings/{booking_id}"
    assert "Needs review" in client.get(page).get_data(as_text=True)
    for odd in ("-5", "²", "1e3", "2000"):
        bad = client.post(
            f"{page}/attendance", data={"minutes": odd, "csrf_token": csrf_from(client, page)}
        )
        assert bad.status_code == 400, odd
    assert attendance(app, booking_id).state == "needs_review"  # nothing changed
    response = client.post(
        f"{page}/attendance", data={"minutes": "40", "csrf_token": csrf_from(client, page)}
    )
    assert response.status_code == 303

    row = attendance(app, booking_id)
    assert (row.state, row.otj_minutes, row.reviewed_by_id) == ("recorded", 40, manager.id)
    [review] = [e for e in history(app, booking_id) if e.action == "attendance_reviewed"]
    assert review.actor_id == manager.id
    assert review.changes == {"off_the_job_minutes": [45, 40]}
    [note] = verified_notes(app, booking_id)
    assert note["off_the_job_minutes"] == [None, 40]
    again = client.post(
        f"{page}/attendance", data={"minutes": "55", "csrf_token": csrf_from(client, page)}
    )
    assert again.status_code == 400  # a recorded result is not reviewed twice
    assert attendance(app, booking_id).otj_minutes == 40


def test_reports_not_ready_are_tried_on_later_nights_then_need_review(app, factory, people, ms):
    app.config["TEAMS_ATTENDANCE_MAX_TRIES"] = 3
    booking_id, meeting = ended_teams_booking(app, factory, people)

    nightly(app)
    row = attendance(app, booking_id)
    assert (row.state, row.tries) == ("pending", 1)
    assert "try again" in row.reason
    nightly(app)
    assert (attendance(app, booking_id).state, attendance(app, booking_id).tries) == ("pending", 2)
    nightly(app)
    row = attendance(app, booking_id)
    assert (row.state, row.tries) == ("needs_review", 3)
    assert verified_notes(app, booking_id) == []
    # Once it needs review the job leaves it to staff, even if a report turns up later.
    session(ms, meeting, at(-1, 10), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 3600)])
    assert nightly(app) == 0
    assert attendance(app, booking_id).state == "needs_review"


def test_report_ready_on_the_second_night_is_recorded(app, factory, people, ms):
    booking_id, meeting = ended_teams_booking(app, factory, people)
    nightly(app)
    assert attendance(app, booking_id).state == "pending"
    session(ms, meeting, at(-1, 10), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 3300)])
    nightly(app)
    assert (attendance(app, booking_id).state, attendance(app, booking_id).otj_minutes) == (
        "recorded",
        55,
    )


def test_no_planned_minutes_no_hours_and_no_graph_call(app, client, factory, people, ms):
    booking_id, meeting = ended_teams_booking(app, factory, people, planned=None)
    session(ms, meeting, at(-1, 10), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 3600)])

    assert nightly(app) == 0
    assert attendance(app, booking_id) is None
    assert ms.graph_requests(contains="attendanceReports") == []
    assert verified_notes(app, booking_id) == []
    assert api_attendance(app, client, booking_id) is None


# --- what a verified result does -----------------------------------------------------------


def test_a_type_that_says_so_completes_the_booking_when_hours_are_verified(
    app, factory, people, ms
):
    booking_id, meeting = ended_teams_booking(app, factory, people, complete=True)
    plain_id, plain_meeting = ended_teams_booking(app, factory, people, hour=14)
    for mid, hour in ((meeting, 10), (plain_meeting, 14)):
        session(ms, mid, at(-1, hour), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 3600)])

    nightly(app)
    with app.app_context():
        completing = db.session.get(Booking, booking_id)
        plain = db.session.get(Booking, plain_id)
        assert (completing.status, plain.status) == ("completed", "confirmed")
        db.session.commit()
    actions = [e.action for e in history(app, booking_id)]
    assert actions[-2:] == ["hours_verified", "completed"]


def test_a_refused_connection_stops_the_night_without_using_a_try(app, factory, people, ms):
    booking_id, _ = ended_teams_booking(app, factory, people)
    ms.client_secret = "rotated-" + ms.client_secret  # the saved secret no longer works
    nightly(app)
    row = attendance(app, booking_id)
    assert row is None  # untouched: tomorrow's night starts afresh


def test_the_job_is_on_the_nightly_schedule(app, redis):
    from app import jobs

    [entry] = [p for p in jobs.SCHEDULE if p.func is jobs.record_teams_attendance]
    assert entry.every_seconds == 86400
    night = 86400 * 20_000 + 60
    assert len(jobs.tick(redis, now=night, schedule=[entry])) == 1
    assert jobs.tick(redis, now=night + 7200, schedule=[entry]) == []


def test_cli_reads_one_booking(app, factory, people, ms):
    booking_id, meeting = ended_teams_booking(app, factory, people)
    other_id, _ = ended_teams_booking(app, factory, people, hour=14)
    session(ms, meeting, at(-1, 10), [(TUTOR, "Organizer", 3600), (LEARNER, "Attendee", 1500)])

    result = app.test_cli_runner().invoke(args=["teams", "attendance", "--booking", booking_id])
    assert result.exit_code == 0, result.output
    assert f"Booking {booking_id}: recorded." in result.output
    assert "Checked 1: 1 recorded" in result.output
    assert attendance(app, booking_id).otj_minutes == 25
    assert attendance(app, other_id) is None  # not this booking: left for the night


def test_the_day_is_the_organisations_day(app, factory, people, ms):
    """Booked 00:30 London summer time (23:30 UTC the day before), held from 01:10 London
    (00:10 UTC): another UTC day, but the same day where the organisation is."""
    booking_id, meeting = ended_teams_booking(app, factory, people)
    with app.app_context():
        begin_write()
        row = db.session.get(Booking, booking_id)
        start = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
        row.starts_at, row.ends_at = start, start + timedelta(hours=1)
        db.session.commit()
    session(
        ms,
        meeting,
        datetime(2026, 7, 2, 0, 10, tzinfo=UTC),
        [(TUTOR, "Organizer", 3000), (LEARNER, "Attendee", 3000)],
    )
    nightly(app)
    assert (attendance(app, booking_id).state, attendance(app, booking_id).otj_minutes) == (
        "recorded",
        50,
    )


# --- with a meeting made through Graph by the Teams meetings code ----------------------------


def test_a_meeting_made_through_graph_is_read_after_it_ends(app, factory, graph_server):
    """The whole way: the booking's meeting is created in the stand-in by the outbox, it ends,
    and the job finds its onlineMeeting by join URL (the stored id forgotten) and records."""
    from tests.teams.meet_helpers import deliver_all, meeting_of, tenant_people

    manager, ada, lee = tenant_people(app, factory, graph_server)
    kind = factory.booking_type(
        name="Review",
        location_modes=["teams"],
        default_location_mode="teams",
        planned_otj_minutes=60,
    )
    booking = factory.booking(manager, kind, at(3, 10), [ada], learner=lee, location_mode="teams")
    deliver_all(app)
    made = meeting_of(app, booking.id)
    assert made.state == "scheduled" and made.graph_online_meeting_id
    start = at(-1, 10)
    with app.app_context():
        begin_write()
        row = db.session.get(Booking, booking.id)
        row.starts_at, row.ends_at = start, start + timedelta(hours=1)
        row.online_meeting.graph_online_meeting_id = None
        db.session.commit()
    graph_server.add_attendance_report(
        ada.email,
        made.graph_online_meeting_id,
        start,
        start + timedelta(hours=1),
        [(ada.email, "Organizer", 3600), (lee.email, "Attendee", 3300)],
    )

    assert nightly(app) == 1
    assert (attendance(app, booking.id).state, attendance(app, booking.id).otj_minutes) == (
        "recorded",
        55,
    )
    assert meeting_of(app, booking.id).graph_online_meeting_id == made.graph_online_meeting_id
    lookups = [r for r in graph_server.graph_requests("GET") if r.path.endswith("/onlineMeetings")]
    assert lookups and "JoinWebUrl" in lookups[-1].query
