"""The off-the-job report (T4) and planned minutes on the screens: /reports/otj per learner and
month with its CSV download and empty state, months counted in the organisation's time zone,
the learner's own page, and planned minutes set on the booking type and booking edit forms."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.bookings.models import AuditEntry, Booking, BookingType
from app.database import begin_write
from app.extensions import db
from app.teams.attendance_models import MeetingAttendance
from tests.accounts.perm_booking_types import form_data
from tests.conftest import at, csrf_from, login

_days = itertools.count()


@pytest.fixture
def cast(factory):
    manager = factory.user("booking-manager", email="mo@example.test", name="Mo Manager")
    tutor = factory.user("agent", email="tess@example.test", name="Tess Tutor")
    lee = factory.user("learner", email="lee@example.test", name="Lee Learner")
    ann = factory.user("learner", email="ann@example.test", name="=Ann Apprentice")
    return manager, tutor, lee, ann


def past_booking(app, factory, tutor, learner, start: datetime, planned, recorded=None, state=None):
    """A held booking moved to ``start`` with a plan and, when given, an attendance result."""
    kind = factory.booking_type(name="Progress review", planned_otj_minutes=planned)
    made = factory.booking(None, kind, at(30 + next(_days), 9), [tutor], learner=learner)
    with app.app_context():
        begin_write()
        row = db.session.get(Booking, made.id)
        row.starts_at, row.ends_at = start, start + timedelta(hours=1)
        row.location_mode = "teams"
        if state:
            db.session.add(
                MeetingAttendance(
                    booking_id=row.id,
                    state=state,
                    otj_minutes=recorded,
                    people=[],
                    reason="",
                    tries=0,
                )
            )
        db.session.commit()
    return made.id


def test_empty_report_says_why(client, cast):
    login(client, cast[0].email)
    page = client.get("/reports/otj")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No bookings with planned off-the-job minutes in these months" in text
    assert "Europe/London" in text  # the zone months are counted in is named
    assert "Download CSV" not in text


def test_report_and_csv_per_learner_and_month(app, client, factory, cast):
    manager, tutor, lee, ann = cast
    june = datetime(2026, 6, 10, 9, tzinfo=UTC)
    past_booking(app, factory, tutor, lee, june, 60, 50, "recorded")
    past_booking(app, factory, tutor, lee, june + timedelta(days=1), 60, 45, "needs_review")
    # 23:30 UTC on 30 June is 00:30 on 1 July in London: a July booking there.
    past_booking(
        app, factory, tutor, lee, datetime(2026, 6, 30, 23, 30, tzinfo=UTC), 30, 30, "recorded"
    )
    past_booking(app, factory, tutor, ann, june, 90)  # not read yet

    login(client, manager.email)
    page = client.get("/reports/otj?from=2026-05&to=2026-08")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Lee Learner" in text and "June 2026" in text and "July 2026" in text
    assert "50 min" in text and "2 h" in text  # June: 50 recorded of 120 planned
    assert "1 to review" in text and "1 not read yet" in text

    download = client.get("/reports/otj.csv?from=2026-05&to=2026-08")
    assert download.status_code == 200
    assert download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"] == (
        'attachment; filename="off-the-job-2026-05-to-2026-08.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    got = [
        (r["learner"], r["month"], r["planned_minutes"], r["recorded_minutes"], r["needs_review"])
        for r in rows
    ]
    assert got == [
        ("'=Ann Apprentice", "2026-06", "90", "0", "0"),  # a formula-looking name stays text
        ("Lee Learner", "2026-06", "120", "50", "1"),
        ("Lee Learner", "2026-07", "30", "30", "0"),
    ]
    assert {r["time_zone"] for r in rows} == {"Europe/London"}
    assert rows[1]["recorded_hours"] == "0.83"

    one = client.get(f"/reports/otj.csv?from=2026-06&to=2026-06&learner={lee.id}")
    assert [r["month"] for r in csv.DictReader(io.StringIO(one.get_data(as_text=True)))] == [
        "2026-06"
    ]
    detail = client.get(f"/reports/otj?from=2026-06&to=2026-07&learner={lee.id}")
    assert "Needs review" in detail.get_data(as_text=True)
    assert (
        "Ann Apprentice"
        not in detail.get_data(as_text=True).split("<main", 1)[-1].split("</select>", 1)[-1]
    )


def test_report_refuses_bad_months_with_a_reason(client, cast):
    login(client, cast[0].email)
    bad = client.get("/reports/otj?from=2026-13")
    assert bad.status_code == 400
    assert "is not a month" in bad.get_data(as_text=True)
    backwards = client.get("/reports/otj.csv?from=2026-06&to=2026-01")
    assert backwards.status_code == 400
    assert "before the first month" in backwards.get_data(as_text=True)
    for odd in ("abc", "²", "٣", "9" * 40):  # digits Python reads but ids are not
        assert client.get(f"/reports/otj?learner={odd}").status_code == 400, odd


def test_learner_sees_their_own_hours_and_not_the_report(app, client, factory, cast):
    _, tutor, lee, ann = cast
    recent = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(
        days=2
    )
    past_booking(app, factory, tutor, lee, recent, 60, 55, "recorded")
    past_booking(app, factory, tutor, ann, recent + timedelta(hours=3), 60, 40, "recorded")
    login(client, lee.email)
    page = client.get("/me/book").get_data(as_text=True)
    assert "Your off-the-job hours" in page
    assert "55 min" in page and "40 min" not in page  # only their own
    assert client.get("/reports/otj").status_code == 403


def test_type_form_sets_the_plan_and_completion(app, client, factory, cast):
    owner = factory.user("owner", email="olive@example.test")
    login(client, owner.email)
    token = csrf_from(client, "/admin/booking-types/new")
    data = form_data("Monthly review", planned_otj_minutes="75", complete_on_verified="y")
    response = client.post("/admin/booking-types/new", data={**data, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    with app.app_context():
        kind = db.session.scalars(
            select(BookingType).where(BookingType.name == "Monthly review")
        ).one()
        assert (kind.planned_otj_minutes, kind.complete_on_verified) == (75, True)
        kind_id = kind.id
        db.session.rollback()
    page = client.get(f"/admin/booking-types/{kind_id}").get_data(as_text=True)
    assert 'name="planned_otj_minutes"' in page and 'value="75"' in page
    refused = client.post(
        f"/admin/booking-types/{kind_id}",
        data={**form_data("Monthly review", planned_otj_minutes="0"), "csrf_token": token},
    )
    assert refused.status_code == 400
    cleared = client.post(
        f"/admin/booking-types/{kind_id}",
        data={**form_data("Monthly review", planned_otj_minutes=""), "csrf_token": token},
    )
    assert cleared.status_code == 303
    with app.app_context():
        kind = db.session.get(BookingType, kind_id)
        assert (kind.planned_otj_minutes, kind.complete_on_verified) == (None, False)
        db.session.rollback()


def test_booking_edit_screen_changes_the_plan_audited(app, client, factory, cast):
    manager, tutor, lee, _ = cast
    kind = factory.booking_type(name="Coaching", planned_otj_minutes=60)
    booking = factory.booking(None, kind, at(3, 10), [tutor], learner=lee)
    assert booking.planned_otj_minutes == 60  # the type's plan
    login(client, manager.email)
    url = f"/bookings/{booking.id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert 'name="planned_otj_minutes"' in page and 'value="60"' in page
    local = booking.starts_at.astimezone(manager.zone)
    form = {
        "day": local.date().isoformat(),
        "start": local.strftime("%H:%M"),
        "location_mode": booking.location_mode,
        "location_detail": booking.location_detail,
        "description": "",
        "planned_otj_minutes": "40",
        "csrf_token": csrf_from(client, url),
    }
    assert client.post(url, data=form).status_code == 303
    assert client.post(url, data={**form, "planned_otj_minutes": "5000"}).status_code == 400
    without = {k: v for k, v in form.items() if k != "planned_otj_minutes"}
    assert client.post(url, data={**without, "description": "Kept plan"}).status_code == 303
    with app.app_context():
        assert db.session.get(Booking, booking.id).planned_otj_minutes == 40
        [entry] = [
            e
            for e in db.session.scalars(
                select(AuditEntry).where(AuditEntry.booking_id == booking.id)
            )
            if "planned_otj_minutes" in e.changes
        ]
        assert entry.changes["planned_otj_minutes"] == [60, 40]
        assert entry.actor_id == manager.id
        db.session.rollback()
    drawer = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "Off-the-job hours" in drawer and "40 min" in drawer


def test_a_learners_people_page_links_to_their_report(app, client, factory, cast):
    _, tutor, lee, _ = cast
    past_booking(
        app, factory, tutor, lee, datetime.now(UTC) - timedelta(days=3), 60, 60, "recorded"
    )
    owner = factory.user("owner", email="olive@example.test")
    login(client, owner.email)
    page = client.get(f"/admin/people/{lee.id}").get_data(as_text=True)
    link = f"/reports/otj?learner={lee.id}"
    assert f'href="{link}"' in page
    report = client.get(link).get_data(as_text=True)
    assert f'<option value="{lee.id}" selected>Lee Learner</option>' in report
    assert "1 h" in report
    tutor_page = client.get(f"/admin/people/{tutor.id}").get_data(as_text=True)
    assert "/reports/otj" not in tutor_page.split("<main", 1)[-1]  # staff have no such hours


def test_review_in_the_drawer_answers_with_the_updated_drawer(app, client, factory, cast):
    manager, tutor, lee, _ = cast
    booking_id = past_booking(
        app, factory, tutor, lee, datetime.now(UTC) - timedelta(days=2), 60, 45, "needs_review"
    )
    login(client, manager.email)
    drawer = client.get(f"/bookings/{booking_id}", headers={"HX-Request": "true"})
    text = drawer.get_data(as_text=True)
    assert f'hx-post="/bookings/{booking_id}/attendance"' in text and 'value="45"' in text
    response = client.post(
        f"/bookings/{booking_id}/attendance",
        data={"minutes": "", "csrf_token": csrf_from(client, f"/bookings/{booking_id}")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "bookingChanged"
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and "45 min verified" in fragment  # blank: as proposed
    assert "Confirmed by Mo Manager" in fragment
