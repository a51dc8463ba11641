"""The staff booking form refuses the past and books outside the usual times only on
purpose ("book anyway", issue 15): the preview says why a time is not free, and the reason
lands in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.bookings.models import AuditEntry, Booking
from app.extensions import db
from app.scheduling import outside
from app.scheduling.intervals import Interval
from app.scheduling.rules import BookingWindow, WorkingHours
from tests.bookings.conftest import HX, local, weekday
from tests.conftest import csrf_from, login

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
HOURS = WorkingHours(LONDON, {d: ((time(9), time(17)),) for d in range(5)})
WINDOW = BookingWindow(LONDON)


def _slot(day: int, hour: int, minutes: int = 60) -> Interval:
    start = datetime(2026, 12, day, hour, tzinfo=LONDON).astimezone(UTC)
    return Interval(start, start + timedelta(minutes=minutes))


def test_pure_reasons_name_past_closed_day_hours_and_day_off():
    """The engine's codes: an ordinary time has none."""
    assert outside.window_reasons(WINDOW, NOW, _slot(3, 10)) == []
    assert outside.hours_reasons(HOURS, _slot(3, 10)) == []
    assert [r.code for r in outside.window_reasons(WINDOW, NOW, _slot(1, 10))] == ["past"]
    assert [r.code for r in outside.window_reasons(WINDOW, NOW, _slot(5, 10))] == ["closed_day"]
    assert [r.code for r in outside.hours_reasons(HOURS, _slot(5, 10))] == ["day_off"]
    early = outside.hours_reasons(HOURS, _slot(3, 3))
    assert [r.code for r in early] == ["hours"] and len(early[0].ranges) == 1
    assert [r.code for r in outside.hours_reasons(HOURS, _slot(3, 16, 90))] == ["hours"]
    far = BookingWindow(LONDON, horizon=timedelta(days=2))
    assert [r.code for r in outside.window_reasons(far, NOW, _slot(10, 10))] == ["horizon"]
    notice = BookingWindow(LONDON, minimum_notice=timedelta(days=2))
    assert [r.code for r in outside.window_reasons(notice, NOW, _slot(3, 10))] == ["notice"]
    off = WorkingHours(LONDON, HOURS.weekly, time_off=(_slot(3, 9, 480),))
    assert [r.code for r in outside.hours_reasons(off, _slot(3, 10))] == ["time_off"]


def _data(token, cast, day, start, **extra):
    return {
        "csrf_token": token,
        "booking_type": cast.review.id,
        "people": [cast.agent.id],
        "learner": "0",
        "day": day.isoformat(),
        "start": start,
        "location_mode": "face_to_face",
        **extra,
    }


def _count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Booking))


def test_preview_does_not_call_three_in_the_morning_free(app, client, cast):
    """03:00 on a working day: the preview names the working hours and offers "book anyway"."""
    login(client, cast.manager.email)
    day = weekday()
    args = urlencode(
        {"booking_type": cast.review.id, "people": cast.agent.id, "day": day, "start": "03:00"}
    )
    html = client.get(f"/bookings/preview?{args}", headers=HX).get_data(as_text=True)
    assert "is free" not in html and "03:00–04:00 is not a usual time" in html
    assert "outside Amara Okafor&#39;s working hours (they work 08:00–18:00)" in html
    assert 'name="book_anyway"' in html and 'name="anyway_reason"' in html
    ordinary = client.get(f"/bookings/preview?{args.replace('03%3A00', '10%3A00')}", headers=HX)
    text = ordinary.get_data(as_text=True)
    assert "is free for everyone chosen" in text and 'name="book_anyway"' not in text


def test_preview_names_a_closed_day(app, client, cast):
    """A Saturday is a closed day (weekends off) and the person does not work then."""
    login(client, cast.manager.email)
    saturday = weekday() + timedelta(days=(5 - weekday().weekday()))
    args = urlencode(
        {"booking_type": cast.review.id, "people": cast.agent.id, "day": saturday, "start": "10:00"}
    )
    html = client.get(f"/bookings/preview?{args}", headers=HX).get_data(as_text=True)
    assert "Saturday is a closed day" in html and "does not work on Saturday" in html
    assert "is free" not in html


def test_the_past_is_refused_with_a_clear_message(app, client, cast):
    """2020 and yesterday: refused, nothing booked, even with "book anyway"."""
    login(client, cast.manager.email)
    token = csrf_from(client, "/bookings/new")
    yesterday = datetime.now(LONDON).date() - timedelta(days=1)
    for day, message in (
        (datetime(2020, 3, 2).date(), "cannot start more than a year ago"),
        (yesterday, f"{yesterday:%d %B %Y}, 10:00 has already passed"),
    ):
        data = _data(token, cast, day, "10:00", book_anyway="y", anyway_reason="late entry")
        response = client.post("/bookings/new", data=data)
        html = response.get_data(as_text=True)
        assert response.status_code == 400 and message in html
    assert _count(app) == 0


def test_outside_hours_needs_book_anyway_and_the_reason_is_audited(app, client, cast):
    """03:00: refused (409) until "book anyway" is ticked with a reason; then the audit
    entry records why the time was unusual and the reason given."""
    login(client, cast.manager.email)
    token = csrf_from(client, "/bookings/new")
    day = weekday()
    refused = client.post("/bookings/new", data=_data(token, cast, day, "03:00"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 409 and "Book anyway" in text and _count(app) == 0
    no_reason = client.post("/bookings/new", data=_data(token, cast, day, "03:00", book_anyway="y"))
    assert no_reason.status_code == 400 and "Say why" in no_reason.get_data(as_text=True)
    assert _count(app) == 0
    data = _data(token, cast, day, "03:00", book_anyway="y", anyway_reason="Night-shift learner")
    booked = client.post("/bookings/new", data=data)
    assert booked.status_code == 302 and _count(app) == 1
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry)).one()
        assert entry.changes["book_anyway_reason"] == [None, "Night-shift learner"]
        assert "working hours" in " ".join(entry.changes["outside_usual_times"][1])
        assert db.session.scalars(select(Booking)).one().starts_at == local(day, 3)


def test_an_ordinary_time_records_no_override(app, client, cast):
    """10:00 on a weekday books at once; the audit carries no book-anyway entry."""
    login(client, cast.manager.email)
    token = csrf_from(client, "/bookings/new")
    response = client.post("/bookings/new", data=_data(token, cast, weekday(), "10:00"))
    assert response.status_code == 302
    with app.app_context():
        assert "book_anyway_reason" not in db.session.scalars(select(AuditEntry)).one().changes
