"""Teams on the screens and in emails (issue [10] acceptance 4 and the join link): Teams is
offered in the booking and type forms only while the organisation's Microsoft 365
connection works, the staff see why a meeting could not be made, the visitor's Join button
opens the Teams link, and emails carry the join link without an .ics of ours."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from app.bookings.models import Booking
from app.connections.models import Connection
from app.database import begin_write
from app.extensions import db
from app.outbox import OutboxMessage
from app.public.joining import joining
from app.teams import meetings
from tests.conftest import at, login
from tests.fakes import graph_server as _fake_microsoft
from tests.teams import meet_helpers
from tests.teams.meet_helpers import deliver_all, meeting_of

graph_server = _fake_microsoft.graph_server
_graph_tls = _fake_microsoft._graph_tls
tenant = meet_helpers.tenant

TEAMS_OPTION = re.compile(r'<option[^>]*value="teams"')
SELECTED_F2F = re.compile(r'<option (selected value="face_to_face"|value="face_to_face" selected)')


def _teams_type(factory):
    return factory.booking_type(
        name="Review", location_modes=["teams", "face_to_face"], default_location_mode="teams"
    )


def test_without_a_connection_the_forms_do_not_offer_teams(app, client, factory):
    factory.user("owner", email="olive@example.test", name="Olive Owner")
    kind = _teams_type(factory)
    login(client, "olive@example.test")
    form = client.get(f"/bookings/new?booking_type={kind.id}").get_data(as_text=True)
    assert not TEAMS_OPTION.search(form)
    assert SELECTED_F2F.search(form)  # the type's default that works
    assert "Organiser email" not in form
    type_form = client.get("/admin/booking-types/new").get_data(as_text=True)
    assert 'value="teams"' not in type_form


def test_with_a_connection_the_forms_offer_teams(app, client, factory, teams_connection):
    factory.user("owner", email="olive@example.test", name="Olive Owner")
    kind = _teams_type(factory)
    login(client, "olive@example.test")
    form = client.get(f"/bookings/new?booking_type={kind.id}").get_data(as_text=True)
    assert TEAMS_OPTION.search(form)
    assert "Organiser email" in form
    assert 'value="teams"' in client.get("/admin/booking-types/new").get_data(as_text=True)


def test_staff_see_why_the_meeting_failed(app, factory, tenant, client):
    manager, ada, lee = tenant
    kind = _teams_type(factory)
    booking = factory.booking(manager, kind, at(10, 10), [ada], learner=lee, location_mode="teams")
    deliver_all(app)
    login(client, ada.email)
    assert "Teams link will be created on" in client.get(f"/bookings/{booking.id}").get_data(
        as_text=True
    )
    with app.app_context():
        begin_write()
        db.session.execute(Connection.__table__.delete())
        meetings.schedule_due(now=booking.starts_at - timedelta(days=4))
        db.session.commit()
    deliver_all(app)
    page = client.get(f"/bookings/{booking.id}").get_data(as_text=True)
    assert "The Teams meeting could not be created" in page
    assert "Microsoft 365 connection" in page
    assert meeting_of(app, booking.id).state == "failed"


def test_emails_carry_the_join_link_and_no_ics_while_teams_takes_over(
    app, factory, tenant, graph_server
):
    manager, ada, lee = tenant
    kind = _teams_type(factory)
    booking = factory.booking(manager, kind, at(3, 10), [ada], learner=lee, location_mode="teams")
    deliver_all(app)
    join_url = meeting_of(app, booking.id).join_url
    assert join_url
    with app.app_context():
        begin_write()
        from app.bookings import service

        service.update_details(
            db.session.get(type(manager), manager.id),
            db.session.get(Booking, booking.id),
            description="New agenda",
        )
        db.session.commit()
    deliver_all(app)
    [(event, _)] = graph_server.teams_meetings_of(ada.email)
    assert event.body["content"] == "New agenda"  # the edit reached the meeting's agenda
    with app.app_context():
        mails = [
            m
            for m in db.session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "notify.email")
            )
            if m.payload.get("to") == lee.email
        ]
        assert mails
        updated = mails[-1]
        assert join_url in updated.data["text"]
        assert updated.payload.get("ics") is None
        db.session.rollback()


def test_the_visitors_join_button_opens_the_teams_link(app, factory, tenant):
    manager, ada, lee = tenant
    kind = _teams_type(factory)
    booking = factory.booking(manager, kind, at(3, 10), [ada], learner=lee, location_mode="teams")
    with app.app_context():
        row = db.session.get(Booking, booking.id)
        assert joining(row, now=row.starts_at) is None  # not made yet: nothing to join
        db.session.rollback()
    deliver_all(app)
    with app.app_context():
        row = db.session.get(Booking, booking.id)
        join = joining(row, now=row.starts_at - timedelta(minutes=1))
        assert join is not None and join.link == row.online_meeting.join_url
        db.session.rollback()


def test_the_edit_form_changes_the_organiser_before_the_meeting_is_made(
    app, factory, tenant, client, graph_server
):
    from tests.conftest import csrf_from

    manager, ada, lee = tenant
    kind = _teams_type(factory)
    booking = factory.booking(manager, kind, at(10, 10), [ada], learner=lee, location_mode="teams")
    login(client, manager.email)
    url = f"/bookings/{booking.id}/edit"
    form = client.get(url).get_data(as_text=True)
    assert 'value="ada@contoso.test"' in form  # the owner organises unless changed
    local_start = booking.starts_at.astimezone(manager.zone)
    data = {
        "csrf_token": csrf_from(client, url),
        "day": local_start.date().isoformat(),
        "start": local_start.strftime("%H:%M"),
        "location_mode": "teams",
        "location_detail": "",
        "description": "",
        "organiser_email": "mo@contoso.test",
    }
    assert client.post(url, data=data).status_code == 303
    assert meeting_of(app, booking.id).organiser_email == "mo@contoso.test"
    with app.app_context():
        begin_write()
        meetings.schedule_due(now=booking.starts_at - timedelta(days=4))
        db.session.commit()
    deliver_all(app)
    assert graph_server.teams_meetings_of(ada.email) == []
    assert len(graph_server.teams_meetings_of(manager.email)) == 1


def test_the_waiting_date_is_the_readers_day(app):
    """ "Teams link will be created on <date>" names the day in the reader's zone: a window
    opening at 23:30 UTC opens on the next day in Auckland."""
    from datetime import UTC, datetime
    from types import SimpleNamespace
    from zoneinfo import ZoneInfo

    from app.teams.models import MeetingState
    from app.teams.service import waiting_text

    starts = datetime(2030, 3, 20, 23, 30, tzinfo=UTC)
    meeting = SimpleNamespace(state=MeetingState.WAITING, booking=SimpleNamespace(starts_at=starts))
    with app.app_context():
        assert waiting_text(meeting) == "Teams link will be created on 15 March 2030"
        auckland = waiting_text(meeting, ZoneInfo("Pacific/Auckland"))
    assert auckland == "Teams link will be created on 16 March 2030"


def test_the_organiser_starts_the_meeting_and_others_join():
    """ "Start meeting" is for the organiser, by account or by the email entered on the
    booking (in any case); everyone else, and anyone signed out, gets "Join"."""
    from types import SimpleNamespace

    from app.teams.service import is_organiser

    meeting = SimpleNamespace(organiser_user_id=7, organiser_email="mo@contoso.test")

    def person(id_, email, signed_in=True):
        return SimpleNamespace(id=id_, email=email, is_authenticated=signed_in)

    assert is_organiser(meeting, person(7, "ada@contoso.test"))
    assert is_organiser(meeting, person(9, "MO@Contoso.test"))
    assert not is_organiser(meeting, person(8, "lee@contoso.test"))
    assert not is_organiser(meeting, person(7, "ada@contoso.test", signed_in=False))
