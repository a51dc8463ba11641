"""Acceptance 1 of issue [09]: every setting in ``app.admin.settings.SETTINGS`` is changed
through its screen (``POST /admin/settings/<section>``, as an owner) and the product behaves
differently (the branding settings through their own screen at the same address). One test
per setting; the setting key is in the test's name, and ``test_every_setting_has_a_test_here``
fails when a setting is added without one."""
# ruff: noqa: F811 - the public world and SMTP fixtures are imported, then named by tests

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from app.admin.settings import SETTINGS
from app.extensions import db
from tests.bookings.conftest import add_busy
from tests.conftest import csrf_from, login
from tests.notifications.conftest import smtp_server  # noqa: F401 - fixture
from tests.public.conftest import (  # noqa: F401 - the public world fixture
    book_form,
    first_slot,
    outbox,
    public,
    token_from,
)

LINK = "https://meet.example.test/room-7"


# --- the screen ----------------------------------------------------------------------


@pytest.fixture
def change(app, factory):
    """``change(key, value)``: the owner posts one field to the setting's section screen."""
    factory.user("owner", email="owner@example.test", name="Olive Owner")
    screen = app.test_client()
    login(screen, "owner@example.test")

    def post(key: str, value) -> None:
        section = SETTINGS[key].section
        token = csrf_from(screen, f"/admin/settings/{section}")
        if isinstance(value, bool):
            field: object = ["n", "y"] if value else ["n"]
        elif isinstance(value, list):
            field = ["", *value]
        else:
            field = str(value)
        data = {"csrf_token": token, key: field}
        if section == "branding":  # the branding screen saves its name and colour together
            with app.app_context():
                from app.admin.settings import get_setting

                for other in ("organisation_name", "brand_primary_colour"):
                    data.setdefault(other, str(get_setting(other)))
                db.session.rollback()
        response = screen.post(f"/admin/settings/{section}", data=data)
        assert response.status_code == 303, response.get_data(as_text=True)[:800]
        with app.app_context():
            from app.admin.settings import get_setting

            assert get_setting(key) == value
            db.session.rollback()

    return post


# --- helpers -------------------------------------------------------------------------


def _kind(app, kind_id: int):
    from app.bookings.models import BookingType

    return db.session.get(BookingType, kind_id)


def _slots(app, kind, start, end, audience="public", now=None) -> list[datetime]:
    from app.bookings.availability import slots_for

    with app.app_context():
        found = [
            s.start for s in slots_for(_kind(app, kind.id), start, end, audience=audience, now=now)
        ]
        db.session.rollback()
    return found


def _day(days: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=days), time(0), UTC)


def _update(app, model, row_id, **fields) -> None:
    from app.database import begin_write

    with app.app_context():
        begin_write()
        row = db.session.get(model, row_id)
        for key, value in fields.items():
            setattr(row, key, value)
        db.session.commit()


def _count(app, statement) -> int:
    with app.app_context():
        n = db.session.scalar(statement)
        db.session.rollback()
    return n


def _booking_count(app) -> int:
    from app.bookings.models import Booking

    return _count(app, select(func.count()).select_from(Booking))


# A fixed Monday far ahead, so "now" and the window can be chosen by the test.
MONDAY = date(2031, 3, 3)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime.combine(day, time(hour, minute), ZoneInfo("Europe/London")).astimezone(UTC)


# --- general -------------------------------------------------------------------------


def test_organisation_name(app, client, public, change):
    change("organisation_name", "Riverside Skills Desk")
    assert "Riverside Skills Desk" in client.get("/book").get_data(as_text=True)
    change("organisation_name", "Hillside Training")
    page = client.get("/book").get_data(as_text=True)
    assert "Hillside Training" in page and "Riverside" not in page


def test_organisation_timezone(app, public, change):
    """ "Earliest day" counts whole days in the organisation's zone: tomorrow starts 25 hours
    apart in Kiritimati (UTC+14) and Pago Pago (UTC-11), so the first offered time moves."""
    span = (_day(0), _day(6))
    change("organisation_timezone", "Pacific/Kiritimati")
    east = _slots(app, public["kind"], *span)[0]
    change("organisation_timezone", "Pacific/Pago_Pago")
    west = _slots(app, public["kind"], *span)[0]
    assert east != west


def test_public_scheduling_enabled(app, client, public, change):
    closed = "is not taking bookings online"
    start = first_slot(app, public["kind"])
    change("public_scheduling_enabled", False)
    page = client.get("/book/consultation").get_data(as_text=True)
    assert closed in page and 'name="csrf_token"' not in page  # no form to book with
    change("public_scheduling_enabled", True)
    assert closed not in client.get("/book/consultation").get_data(as_text=True)
    assert book_form(client, "consultation", start).status_code == 200
    assert _booking_count(app) == 1  # only now can a visitor book


def test_contact_required_fields(app, client, public, change):
    start = first_slot(app, public["kind"])
    change("contact_required_fields", "email")
    assert (
        book_form(client, "consultation", start, email="", phone="+44 20 7946 0000").status_code
        == 400
    )
    change("contact_required_fields", "phone")
    assert (
        book_form(client, "consultation", start, email="", phone="+44 20 7946 0000").status_code
        == 200
    )
    assert _booking_count(app) == 1


def test_max_bookings_per_contact_per_day(app, client, public, change):
    first = first_slot(app, public["kind"])
    second, third = first + timedelta(hours=2), first + timedelta(hours=4)
    change("max_bookings_per_contact_per_day", 1)
    assert book_form(client, "consultation", first).status_code == 200
    book_form(client, "consultation", second)
    assert _booking_count(app) == 1  # refused: one a day
    change("max_bookings_per_contact_per_day", 2)
    assert book_form(client, "consultation", third).status_code == 200
    assert _booking_count(app) == 2


def _purge(app, now) -> int:
    from app.database import begin_write
    from app.public.purge import purge_outdated_visitors

    with app.app_context():
        begin_write()
        n = purge_outdated_visitors(now)
        db.session.commit()
    return n


def _visitor_email(app) -> str | None:
    from app.public.models import PublicBooking

    return _count(app, select(PublicBooking.contact_email))


def _booked_end(app) -> datetime:
    from app.bookings.models import Booking

    return _count(app, select(Booking.ends_at))


def test_purge_outdated_events(app, client, public, change):
    assert book_form(client, "consultation", first_slot(app, public["kind"])).status_code == 200
    later = _booked_end(app) + timedelta(days=40)
    change("purge_outdated_events", False)
    assert _purge(app, later) == 0 and _visitor_email(app) == "vera@example.test"
    change("purge_outdated_events", True)
    assert _purge(app, later) == 1 and _visitor_email(app) is None


def test_purge_after_days(app, client, public, change):
    assert book_form(client, "consultation", first_slot(app, public["kind"])).status_code == 200
    later = _booked_end(app) + timedelta(days=10)
    change("purge_outdated_events", True)
    change("purge_after_days", 30)
    assert _purge(app, later) == 0 and _visitor_email(app) == "vera@example.test"
    change("purge_after_days", 7)
    assert _purge(app, later) == 1 and _visitor_email(app) is None


def test_show_unassigned_bookings(app, factory, public, change):
    """A booking whose person left is listed to take on agents' calendars only while on."""
    from app.accounts.models import User
    from app.database import begin_write

    leaver = factory.user("agent", email="lee@example.test", name="Lee Leaver")
    factory.booking(None, public["kind"], first_slot(app, public["kind"]), [leaver])
    with app.app_context():
        begin_write()
        db.session.get(User, leaver.id).active = False
        db.session.commit()
    agent = app.test_client()
    login(agent, "agent@example.test")
    change("show_unassigned_bookings", True)
    page = agent.get("/calendar").get_data(as_text=True)
    assert "To assign" in page and "was Lee Leaver" in page
    change("show_unassigned_bookings", False)
    page = agent.get("/calendar").get_data(as_text=True)
    assert "To assign" not in page and "Lee Leaver" not in page


# --- time ----------------------------------------------------------------------------


def _online_visitor_booking(app, client, public, starts_in: timedelta) -> tuple[int, str]:
    from app.bookings.models import Booking
    from app.database import utcnow

    assert book_form(client, "consultation", first_slot(app, public["kind"])).status_code == 200
    [created] = outbox(app, "public.booking_created")
    start = utcnow() + starts_in
    _update(
        app,
        Booking,
        created["booking_id"],
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        location_mode="remote",
        location_detail=LINK,
    )
    return created["booking_id"], token_from(created["manage_url"])


def test_join_early_minutes(app, client, public, change):
    _, token = _online_visitor_booking(app, client, public, timedelta(minutes=10))
    change("join_early_minutes", 5)
    assert f'href="{LINK}"' not in client.get(f"/book/manage/{token}").get_data(as_text=True)
    change("join_early_minutes", 15)
    assert f'href="{LINK}"' in client.get(f"/book/manage/{token}").get_data(as_text=True)


def test_max_waiting_minutes(app, client, public, change):
    from app.bookings.models import Booking

    booking_id, _ = _online_visitor_booking(app, client, public, -timedelta(minutes=10))
    agent = app.test_client()
    login(agent, "agent@example.test")

    def mark():
        token = csrf_from(agent, f"/bookings/{booking_id}")
        return agent.post(f"/bookings/{booking_id}/no_show", data={"csrf_token": token})

    change("max_waiting_minutes", 15)
    assert mark().status_code == 400
    change("max_waiting_minutes", 5)
    assert mark().status_code == 303
    assert _count(app, select(Booking.status).where(Booking.id == booking_id)) == "no_show"


def test_reminder_minutes(app, factory, public, change):
    from app.database import begin_write, utcnow
    from app.notifications.reminders import queue_reminders
    from app.outbox import OutboxMessage

    start = (utcnow() + timedelta(minutes=45)).replace(second=0, microsecond=0)
    factory.booking(None, public["kind"], start, [public["agent"]])

    def run() -> int:
        with app.app_context():
            begin_write()
            n = queue_reminders(start - timedelta(minutes=40))
            db.session.commit()
        return n

    change("reminder_minutes", 30)
    assert run() == 0
    change("reminder_minutes", 60)
    assert run() > 0
    kinds = select(func.count()).where(OutboxMessage.kind == "reminder.due")
    assert _count(app, kinds.select_from(OutboxMessage)) > 0


def test_weekends_enabled(app, public, change):
    from app.bookings.models import BookingType

    _update(app, BookingType, public["kind"].id, weekends_enabled=None)  # the default applies
    week = (_day(2), _day(9))
    change("weekends_enabled", True)
    assert any(s.weekday() >= 5 for s in _slots(app, public["kind"], *week))
    change("weekends_enabled", False)
    assert not any(s.weekday() >= 5 for s in _slots(app, public["kind"], *week))


def test_confirmation_timeout_minutes(app, client, public, change):
    start = first_slot(app, public["kind"])
    change("confirmation_timeout_minutes", 0)
    assert book_form(client, "consultation", start).status_code == 200
    assert len(outbox(app, "public.booking_created")) == 1
    assert outbox(app, "public.confirmation_requested") == []
    change("confirmation_timeout_minutes", 30)
    assert book_form(client, "consultation", start + timedelta(hours=2)).status_code == 200
    assert len(outbox(app, "public.confirmation_requested")) == 1


def _first_day(app, kind, audience) -> date:
    return _slots(app, kind, _day(0), _day(12), audience=audience)[0].date()


def test_earliest_day_staff(app, public, change):
    """The staff audience (the staff booking form) starts later; the public one does not move."""
    change("earliest_day_public", 1)
    change("earliest_day_staff", 0)
    public_day = _first_day(app, public["kind"], "public")
    staff_soon = _first_day(app, public["kind"], "staff")
    change("earliest_day_staff", 5)
    staff_late = _first_day(app, public["kind"], "staff")
    assert staff_late >= datetime.now(UTC).date() + timedelta(days=4) > staff_soon
    assert _first_day(app, public["kind"], "public") == public_day


def test_earliest_day_public(app, client, public, change):
    """/book offers its first time later; the staff audience does not move."""
    change("earliest_day_staff", 0)
    change("earliest_day_public", 1)
    staff_day = _first_day(app, public["kind"], "staff")
    public_soon = _first_day(app, public["kind"], "public")
    change("earliest_day_public", 5)
    public_late = _first_day(app, public["kind"], "public")
    assert public_late >= datetime.now(UTC).date() + timedelta(days=4) > public_soon
    assert _first_day(app, public["kind"], "staff") == staff_day
    assert first_slot(app, public["kind"], after_days=0).date() == public_late


def _first_on_monday(app, kind, now) -> datetime:
    return _slots(app, kind, _at(MONDAY, 0), _at(MONDAY, 23), audience="staff", now=now)[0]


def test_disabled_window_minutes(app, public, change):
    change("earliest_day_staff", 0)
    now = _at(MONDAY, 7)
    change("disabled_window_minutes", 0)
    assert _first_on_monday(app, public["kind"], now) == _at(MONDAY, 8)
    change("disabled_window_minutes", 240)
    assert _first_on_monday(app, public["kind"], now) >= _at(MONDAY, 11)


def test_minimum_notice_minutes(app, public, change):
    change("earliest_day_staff", 0)
    now = _at(MONDAY, 7)
    change("minimum_notice_minutes", 0)
    assert _first_on_monday(app, public["kind"], now) == _at(MONDAY, 8)
    change("minimum_notice_minutes", 180)
    assert _first_on_monday(app, public["kind"], now) >= _at(MONDAY, 10)


def test_booking_horizon_days(app, public, change):
    now = _at(MONDAY, 7)
    later = (_at(MONDAY + timedelta(days=9), 0), _at(MONDAY + timedelta(days=10), 0))
    change("booking_horizon_days", 30)
    assert _slots(app, public["kind"], *later, audience="staff", now=now)
    change("booking_horizon_days", 5)
    assert _slots(app, public["kind"], *later, audience="staff", now=now) == []


def test_day_start(app, public, change):
    change("earliest_day_staff", 0)
    now = _at(MONDAY, 0)
    change("day_start", "08:00")
    assert _first_on_monday(app, public["kind"], now) == _at(MONDAY, 8)
    change("day_start", "10:00")
    assert _first_on_monday(app, public["kind"], now) == _at(MONDAY, 10)


def test_day_end(app, public, change):
    change("earliest_day_staff", 0)
    now = _at(MONDAY, 0)
    day = (_at(MONDAY, 0), _at(MONDAY, 23))
    change("day_end", "18:00")
    assert max(_slots(app, public["kind"], *day, audience="staff", now=now)) == _at(MONDAY, 17)
    change("day_end", "15:00")
    assert max(_slots(app, public["kind"], *day, audience="staff", now=now)) == _at(MONDAY, 14)


# --- calendars -----------------------------------------------------------------------


def test_slot_availability_percentage(app, factory, public, change):
    """A group of two, one of them busy: at 100 % the time needs both free, at 50 % one."""
    from app.accounts.models import Group, User
    from app.database import begin_write

    second = factory.user("agent", email="bo@example.test", name="Bo Second")
    with app.app_context():
        begin_write()
        group = db.session.scalar(select(Group).where(Group.slug == "public-team"))
        group.members.append(db.session.get(User, second.id))
        db.session.commit()
    start = first_slot(app, public["kind"])
    add_busy(app, second, start, start + timedelta(hours=1))
    span = (start - timedelta(hours=1), start + timedelta(hours=2))
    change("slot_availability_percentage", 100)
    assert start not in _slots(app, public["kind"], *span)
    change("slot_availability_percentage", 50)
    assert start in _slots(app, public["kind"], *span)


def _linked_calendar(app, person, synced_ago: timedelta, receives: bool = False) -> int:
    from app.connections.models import Connection, LinkedCalendar
    from app.database import begin_write, utcnow

    with app.app_context():
        begin_write()
        connection = Connection(
            kind="caldav", user_id=person.id, url="https://cal.example.test/", username="agnes"
        )
        db.session.add(connection)
        db.session.flush()
        calendar = LinkedCalendar(
            connection_id=connection.id,
            person_id=person.id,
            remote_id="/calendars/agnes/work/",
            name="Work",
            receives_bookings=receives,
            last_synced_at=utcnow() - synced_ago,
        )
        db.session.add(calendar)
        db.session.commit()
        return calendar.id


def test_two_way_sync(app, factory, public, change):
    """Bookings are written to a person's receiving calendar only while two-way sync is on."""
    from app.bookings.models import Booking
    from app.bookings.writeback import plan

    _linked_calendar(app, public["agent"], timedelta(minutes=1), receives=True)
    booking = factory.booking(
        None, public["kind"], first_slot(app, public["kind"]), [public["agent"]]
    )

    def planned() -> int:
        with app.app_context():
            n = len(plan(db.session.get(Booking, booking.id)))
            db.session.rollback()
        return n

    change("two_way_sync", True)
    assert planned() == 1
    change("two_way_sync", False)
    assert planned() == 0


def test_compute_availability(app, public, change):
    start = first_slot(app, public["kind"])
    add_busy(app, public["agent"], start, start + timedelta(minutes=30))
    span = (start - timedelta(hours=1), start + timedelta(hours=2))
    change("compute_availability", True)
    assert start not in _slots(app, public["kind"], *span)
    change("compute_availability", False)
    assert start in _slots(app, public["kind"], *span)


def test_cache_update_interval_minutes(app, public, change):
    """A calendar last read 50 minutes ago is stale (its person offers nothing) when it should
    be read every 15 minutes, and fresh when every 30."""
    _linked_calendar(app, public["agent"], timedelta(minutes=50))
    span = (_day(2), _day(4))
    change("cache_update_interval_minutes", 15)
    assert _slots(app, public["kind"], *span) == []
    change("cache_update_interval_minutes", 30)
    assert _slots(app, public["kind"], *span)


def test_personal_providers(app, factory, change):
    factory.user("agent", email="cal@example.test", name="Cal Agent")
    agent = app.test_client()
    login(agent, "cal@example.test")
    change("personal_providers", ["microsoft", "caldav", "ics"])
    assert "CalDAV account" in agent.get("/me/calendars").get_data(as_text=True)
    change("personal_providers", ["ics"])
    page = agent.get("/me/calendars").get_data(as_text=True)
    assert "CalDAV account" not in page and "ICS subscription" in page


def test_show_event_details(app, factory, public, change):
    """The staff form's preview names an organisation calendar's event only when allowed."""
    from urllib.parse import urlencode

    factory.user("booking-manager", email="bea@example.test", name="Bea Bookings")
    kind = factory.booking_type(name="Review")
    day = MONDAY
    add_busy(app, public["agent"], _at(day, 9), _at(day, 10), source="graph-org", title="Board")
    manager = app.test_client()
    login(manager, "bea@example.test")
    query = urlencode(
        {
            "booking_type": kind.id,
            "people": public["agent"].id,
            "learner": 0,
            "day": day.isoformat(),
        }
    )

    def preview() -> str:
        response = manager.get(f"/bookings/preview?{query}", headers={"HX-Request": "true"})
        return response.get_data(as_text=True)

    change("show_event_details", False)
    assert "Board" not in preview() and "Private event" in preview()
    change("show_event_details", True)
    assert "Board" in preview()


def test_allow_private_calendar_urls(app, change):
    from app.connections.providers import provider_settings

    def allowed() -> bool:
        with app.test_request_context():
            return provider_settings().allow_private_urls

    change("allow_private_calendar_urls", False)
    assert not allowed()
    change("allow_private_calendar_urls", True)
    assert allowed()


def test_primary_calendar_provider(app, factory, change, google_server):
    """Issue [12]: the Google Workspace link covers its domains' people only while Google is
    the primary provider (or both); with Microsoft primary it covers nobody."""
    from datetime import timedelta

    from app.connections import service
    from app.connections.models import BusyBlock, Connection, ConnectionKind
    from app.connections.sync import sync_connection
    from app.database import begin_write, utcnow

    app.config.update(**google_server.config())
    ada = factory.user("agent", email="ada@school.example", name="Ada Agent")
    google_server.add_account(ada.email)
    start = _day(2) + timedelta(hours=9)
    google_server.add_event(ada.email, "Moderation", start, start + timedelta(hours=1))
    with app.app_context():
        begin_write()
        service.save_google_workspace(google_server.service_account_info(), ["school.example"])
        db.session.commit()

    def covered(hours: int) -> int:
        with app.app_context():
            row = db.session.scalars(
                select(Connection).where(Connection.kind == ConnectionKind.GOOGLE_ORG)
            ).one()
            assert sync_connection(row.id, utcnow() + timedelta(hours=hours)).error is None
            blocks = db.session.scalar(select(func.count()).select_from(BusyBlock))
            db.session.rollback()
            return blocks

    change("primary_calendar_provider", "microsoft")
    assert covered(0) == 0
    change("primary_calendar_provider", "google")
    assert covered(1) == 1
    change("primary_calendar_provider", "both")
    assert covered(2) == 1
    change("primary_calendar_provider", "microsoft")
    assert covered(3) == 0


# --- mailer, UX and branding ---------------------------------------------------------


def _test_email(app, smtp_server):
    client = app.test_client()
    login(client, "owner@example.test")
    token = csrf_from(client, "/admin/settings/mailer")
    smtp_server.clear()
    client.post("/admin/settings/mailer/test", data={"csrf_token": token})
    [message] = smtp_server.messages
    return message


def test_mailer_from_name(app, change, smtp_server):
    change("mailer_from_name", "Riverside Desk")
    assert "Riverside Desk" in _test_email(app, smtp_server).message["From"]
    change("mailer_from_name", "Hillside Desk")
    assert "Hillside Desk" in _test_email(app, smtp_server).message["From"]


def test_mailer_from_address(app, change, smtp_server):
    change("mailer_from_address", "desk@riverside.example")
    assert "desk@riverside.example" in _test_email(app, smtp_server).message["From"]
    change("mailer_from_address", "")
    assert "desk@riverside.example" not in _test_email(app, smtp_server).message["From"]


def test_mailer_reply_to(app, change, smtp_server):
    change("mailer_reply_to", "replies@riverside.example")
    assert _test_email(app, smtp_server).message["Reply-To"] == "replies@riverside.example"
    change("mailer_reply_to", "")
    assert _test_email(app, smtp_server).message["Reply-To"] is None


@pytest.mark.parametrize(
    "key", ["slot_text_colour", "slot_available_colour", "slot_selected_colour"]
)
def test_slot_colour(app, client, public, change, key):
    colour = {
        "slot_text_colour": "#000000",
        "slot_available_colour": "#e6ffe6",
        "slot_selected_colour": "#cce0ff",
    }[key]
    assert colour not in client.get("/book/consultation?tz=UTC").get_data(as_text=True)
    change(key, colour)
    assert colour in client.get("/book/consultation?tz=UTC").get_data(as_text=True)


def test_brand_primary_colour(app, client, public, change):
    change("brand_primary_colour", "#1a4d80")
    assert "--brand: #1a4d80" in client.get("/book").get_data(as_text=True)
    change("brand_primary_colour", "#6b2c91")
    page = client.get("/book").get_data(as_text=True)
    assert "--brand: #6b2c91" in page and "#1a4d80" not in page


# --- Microsoft Teams (issue [10], T2) -----------------------------------------------------


def _teams_booking(app, factory, people, days: float, hours: float = 0):
    from app.bookings.models import Booking

    manager, ada, lee = people
    kind = factory.booking_type(name="Review", location_modes=["teams", "face_to_face"])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days, hours=hours)
    booking = factory.booking(manager, kind, start, [ada], learner=lee, location_mode="teams")
    assert isinstance(booking, Booking)
    return booking


def _meeting_state(app, booking_id: int) -> str:
    from app.teams.models import OnlineMeeting

    with app.app_context():
        state = db.session.scalar(
            select(OnlineMeeting.state).where(OnlineMeeting.booking_id == booking_id)
        )
        db.session.rollback()
        return state


def test_teams_scheduling_window_days(app, factory, graph_server, change):
    """A meeting four days out waits with a three-day window and is made in Teams when the
    window is widened to five and the scheduling job runs."""
    from app.teams.meetings import schedule_due
    from tests.teams.meet_helpers import deliver_all, tenant_people

    people = tenant_people(app, factory, graph_server)
    change("teams_scheduling_window_days", 3)
    booking = _teams_booking(app, factory, people, days=4)
    deliver_all(app)
    assert _meeting_state(app, booking.id) == "waiting"
    change("teams_scheduling_window_days", 5)
    with app.app_context():
        from app.database import begin_write

        begin_write()
        assert schedule_due() == 1
        db.session.commit()
    deliver_all(app)
    assert _meeting_state(app, booking.id) == "scheduled"
    assert len(graph_server.teams_meetings_of(people[1].email)) == 1


def test_teams_min_lead_hours(app, factory, change, teams_connection):
    """A Teams booking two hours ahead is refused with three hours' notice, taken with one."""
    from app.bookings.service import BookingError

    people = (
        factory.user("booking-manager"),
        factory.user("agent", email="ada@contoso.test"),
        factory.user("learner"),
    )
    change("teams_min_lead_hours", 3)
    with pytest.raises(BookingError, match="at least 3 hours from now"):
        _teams_booking(app, factory, people, days=0, hours=2)
    change("teams_min_lead_hours", 1)
    assert _teams_booking(app, factory, people, days=0, hours=2).location_mode == "teams"


def test_teams_schedule_interval_hours(app, change):
    """The periodic job works once per interval: an hour after a run it does nothing every
    three hours, and runs again every hour."""
    import uuid

    from app.teams.meetings import run_periodic

    # A start of its own in a far year, so no other test's claim in Redis is in the way.
    hours = 24 * 365 * 30 + uuid.uuid4().int % (24 * 365 * 100) * 3
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=10)
    change("teams_schedule_interval_hours", 3)
    with app.app_context():
        assert run_periodic(now=start) == 0
        assert run_periodic(now=start + timedelta(hours=1)) is None
        db.session.rollback()
    change("teams_schedule_interval_hours", 1)
    with app.app_context():
        assert run_periodic(now=start + timedelta(hours=1)) == 0
        db.session.rollback()


# --- the list ------------------------------------------------------------------------


def test_every_setting_has_a_test_here():
    """Each key in SETTINGS names a test in this module (slot colours share one, by key)."""
    module = sys.modules[__name__]
    names = {name for name in dir(module) if name.startswith("test_")}
    shared = {"slot_text_colour", "slot_available_colour", "slot_selected_colour"}
    missing = [k for k in SETTINGS if k not in shared and f"test_{k}" not in names]
    assert missing == []
