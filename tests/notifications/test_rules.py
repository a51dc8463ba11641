"""Seed 004's notification matrix, rule by rule, through the real booking service, the real
outbox and a real SMTP server: who receives what, with which subject, and the .ics they get
(METHOD, stable UID, increasing SEQUENCE, STATUS)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import at
from tests.notifications.conftest import deliver_all

AGENT = "agent@example.test"
LEARNER = "learner@example.test"
GUEST = "guest@example.test"
EXTRA = "extra@example.test"
NEWCOMER = "newcomer@example.test"
EVERYONE = {AGENT, LEARNER, GUEST}


@dataclass
class World:
    app: object
    manager: object
    agent: object
    learner: object
    extra: object
    provisional: object
    confirmed: object


@pytest.fixture
def world(app, factory, smtp_server) -> World:
    """A manager who acts, an agent (London), a learner (New York), a colleague (Tokyo)."""
    return World(
        app=app,
        manager=factory.user("manager", email="manager@example.test", name="Mia Manager"),
        agent=factory.user("agent", email=AGENT, name="Agnes Agent", timezone="Europe/London"),
        learner=factory.user(
            "learner", email=LEARNER, name="Leo Learner", timezone="America/New_York"
        ),
        extra=factory.user("agent", email=EXTRA, name="Ezra Extra", timezone="Asia/Tokyo"),
        provisional=factory.booking_type(slug="review", name="Review", requires_approval=True),
        confirmed=factory.booking_type(slug="planning", name="Planning meeting"),
    )


def book(world: World, factory, kind: str, with_extra: bool = False) -> int:
    """A booking by the manager for the agent and the learner, with one guest."""
    from app.bookings.service import Guest

    people = [world.agent, world.extra] if with_extra else [world.agent]
    booking = factory.booking(
        world.manager,
        getattr(world, kind),
        at(3, 10),
        people,
        learner=world.learner,
        guests=[Guest(GUEST, "Gail Guest")],
    )
    return booking.id


def act(world: World, change, booking_id: int, *args, **kwargs):
    """One booking change by the manager, committed like a request would."""
    from app.accounts.models import User
    from app.bookings.models import Booking
    from app.database import begin_write
    from app.extensions import db

    with world.app.app_context():
        begin_write()
        manager = db.session.get(User, world.manager.id)
        booking = db.session.get(Booking, booking_id)
        change(manager, booking, *args, **kwargs)
        db.session.commit()


def attendee_id(world: World, booking_id: int, email: str) -> int:
    from app.accounts.models import User
    from app.bookings.models import Attendee
    from app.extensions import db

    with world.app.app_context():
        row = db.session.scalar(
            select(Attendee)
            .outerjoin(User, User.id == Attendee.user_id)
            .where(Attendee.booking_id == booking_id)
            .where((Attendee.email == email) | (User.email == email))
        )
        db.session.rollback()
        return row.id


def booking_facts(world: World, booking_id: int) -> dict:
    from app.bookings.models import Booking
    from app.extensions import db

    with world.app.app_context():
        booking = db.session.get(Booking, booking_id)
        facts = {
            "uid": booking.uid,
            "sequence": booking.sequence,
            "starts_at": booking.starts_at,
            "ends_at": booking.ends_at,
        }
        db.session.rollback()
    return facts


# --- the changes of seed 004 -----------------------------------------------------------


def _update(world, booking_id):
    from app.bookings.service import update_details

    act(world, update_details, booking_id, location_detail="Room 4, Leeds office")


def _reschedule(world, booking_id):
    from app.bookings.service import reschedule

    act(world, reschedule, booking_id, at(4, 14))


def _approve(world, booking_id):
    from app.bookings.service import approve

    act(world, approve, booking_id)


def _reject(world, booking_id):
    from app.bookings.service import reject

    act(world, reject, booking_id)


def _cancel(world, booking_id):
    from app.bookings.service import cancel

    act(world, cancel, booking_id)


def _remove_guest(world, booking_id):
    from app.bookings.models import Attendee
    from app.bookings.service import remove_attendee
    from app.extensions import db

    row_id = attendee_id(world, booking_id, GUEST)
    act(
        world,
        lambda actor, b: remove_attendee(actor, b, db.session.get(Attendee, row_id)),
        booking_id,
    )


def _remove_colleague(world, booking_id):
    from app.bookings.models import Attendee
    from app.bookings.service import remove_attendee
    from app.extensions import db

    row_id = attendee_id(world, booking_id, EXTRA)
    act(
        world,
        lambda actor, b: remove_attendee(actor, b, db.session.get(Attendee, row_id)),
        booking_id,
    )


def _add_colleague(world, booking_id):
    from app.accounts.models import User
    from app.bookings.service import add_attendee
    from app.extensions import db

    act(
        world,
        lambda actor, b: add_attendee(actor, b, user=db.session.get(User, world.extra.id)),
        booking_id,
    )


def _add_guest(world, booking_id):
    from app.bookings.service import Guest, add_attendee

    act(
        world, lambda actor, b: add_attendee(actor, b, guest=Guest(NEWCOMER, "Nia New")), booking_id
    )


@dataclass(frozen=True)
class Case:
    """One line of seed 004: a change to a booking of ``kind`` and what must arrive."""

    kind: str
    change: object  # None: the booking's creation is the change
    subject: str  # the subject's start (the rule's wording)
    recipients: set
    method: str
    status: str
    with_extra: bool = False


CASES = {
    "provisional booked -> provisional invite": Case(
        "provisional", None, "Provisional booking: Review on", EVERYONE, "REQUEST", "TENTATIVE"
    ),
    "provisional updated -> meeting updated": Case(
        "provisional", _update, "Meeting updated: Review on", EVERYONE, "REQUEST", "TENTATIVE"
    ),
    "provisional moved -> meeting updated": Case(
        "provisional", _reschedule, "Meeting updated: Review on", EVERYONE, "REQUEST", "TENTATIVE"
    ),
    "provisional attendee removed -> meeting cancelled to them": Case(
        "provisional",
        _remove_guest,
        "Meeting cancelled: Review on",
        {GUEST},
        "CANCEL",
        "CANCELLED",
    ),
    "provisional attendee added -> provisional invite to them": Case(
        "provisional",
        _add_colleague,
        "Provisional booking: Review on",
        {EXTRA},
        "REQUEST",
        "TENTATIVE",
    ),
    "approved -> meeting invite": Case(
        "provisional", _approve, "Meeting invitation: Review on", EVERYONE, "REQUEST", "CONFIRMED"
    ),
    "rejected -> meeting rejected": Case(
        "provisional", _reject, "Booking rejected: Review on", EVERYONE, "CANCEL", "CANCELLED"
    ),
    "confirmed booked -> meeting invite": Case(
        "confirmed",
        None,
        "Meeting invitation: Planning meeting on",
        EVERYONE,
        "REQUEST",
        "CONFIRMED",
    ),
    "confirmed updated -> meeting updated": Case(
        "confirmed",
        _update,
        "Meeting updated: Planning meeting on",
        EVERYONE,
        "REQUEST",
        "CONFIRMED",
    ),
    "rescheduled -> meeting rescheduled": Case(
        "confirmed",
        _reschedule,
        "Meeting rescheduled: Planning meeting on",
        EVERYONE,
        "REQUEST",
        "CONFIRMED",
    ),
    "cancelled -> meeting cancelled": Case(
        "confirmed",
        _cancel,
        "Meeting cancelled: Planning meeting on",
        EVERYONE,
        "CANCEL",
        "CANCELLED",
    ),
    "confirmed attendee removed -> meeting cancelled to them": Case(
        "confirmed",
        _remove_colleague,
        "Meeting cancelled: Planning meeting on",
        {EXTRA},
        "CANCEL",
        "CANCELLED",
        with_extra=True,
    ),
    "confirmed attendee added -> meeting invite to them": Case(
        "confirmed",
        _add_guest,
        "Meeting invitation: Planning meeting on",
        {NEWCOMER},
        "REQUEST",
        "CONFIRMED",
    ),
}

ZONES = {
    AGENT: "Europe/London",
    LEARNER: "America/New_York",
    EXTRA: "Asia/Tokyo",
    GUEST: "Europe/London",  # guests: the organisation's zone
    NEWCOMER: "Europe/London",
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_rule_of_seed_004_mails_the_right_people(world, factory, smtp_server, case):
    """The change reaches exactly its recipients, once each, with the rule's subject (in
    their own zone) and an .ics of the right METHOD, UID, SEQUENCE and STATUS."""
    booking_id = book(world, factory, case.kind, with_extra=case.with_extra)
    deliver_all(world.app)
    if case.change is not None:
        smtp_server.clear()
        case.change(world, booking_id)
        deliver_all(world.app)
    facts = booking_facts(world, booking_id)

    received = smtp_server.messages
    assert sorted(address for m in received for address in m.to) == sorted(case.recipients)
    for message in received:
        [address] = message.to
        assert message.subject.startswith(case.subject), message.subject
        assert message.subject.endswith(f"({ZONES[address]})"), message.subject
        calendar = message.ics()
        assert str(calendar["METHOD"]) == case.method
        event = message.event()
        assert str(event["UID"]) == facts["uid"]
        assert int(event["SEQUENCE"]) == facts["sequence"]
        assert str(event["STATUS"]) == case.status
        assert event.decoded("DTSTART") == facts["starts_at"]
        assert event.decoded("DTEND") == facts["ends_at"]
        assert str(event["ORGANIZER"]).lower() == f"mailto:{AGENT}"
        attendees = event.get("ATTENDEE")
        attendees = attendees if isinstance(attendees, list) else [attendees]
        assert f"mailto:{address}" in {str(a).lower() for a in attendees}
        assert message.calendar_part.get_param("method") == case.method


def test_rescheduling_three_times_keeps_the_uid_and_raises_the_sequence(
    world, factory, smtp_server
):
    """Every version is the same calendar event (one UID) with a strictly higher SEQUENCE,
    and each invitation carries the new time."""
    from app.bookings.service import reschedule

    booking_id = book(world, factory, "confirmed")
    deliver_all(world.app)
    [first] = smtp_server.to(LEARNER)
    uids = {str(first.event()["UID"])}
    sequences = [int(first.event()["SEQUENCE"])]
    for hours in (2, 26, 50):
        smtp_server.clear()
        new_start = at(3, 10) + timedelta(hours=hours)
        act(world, reschedule, booking_id, new_start)
        deliver_all(world.app)
        assert sorted(a for m in smtp_server.messages for a in m.to) == sorted(EVERYONE)
        [message] = smtp_server.to(LEARNER)
        assert message.subject.startswith("Meeting rescheduled: Planning meeting on")
        event = message.event()
        assert str(message.ics()["METHOD"]) == "REQUEST"
        assert event.decoded("DTSTART") == new_start
        uids.add(str(event["UID"]))
        sequences.append(int(event["SEQUENCE"]))
    assert uids == {booking_facts(world, booking_id)["uid"]}
    assert len(sequences) == 4
    assert all(later > earlier for earlier, later in itertools.pairwise(sequences))


def test_cancelling_after_changes_supersedes_every_invitation(world, factory, smtp_server):
    """The cancellation's SEQUENCE is at least that of every REQUEST sent before it."""
    from app.bookings.service import approve, cancel, reschedule

    booking_id = book(world, factory, "provisional")
    act(world, approve, booking_id)
    act(world, reschedule, booking_id, at(5, 9))
    act(world, cancel, booking_id)
    deliver_all(world.app)
    mails = smtp_server.to(AGENT)
    assert [m.subject.split(":")[0] for m in mails] == [
        "Provisional booking",
        "Meeting invitation",
        "Meeting rescheduled",
        "Meeting cancelled",
    ]
    events = [m.event() for m in mails]
    assert len({str(e["UID"]) for e in events}) == 1
    sequences = [int(e["SEQUENCE"]) for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == 4
    assert str(mails[-1].ics()["METHOD"]) == "CANCEL"
    assert str(events[-1]["STATUS"]) == "CANCELLED"


def test_completing_a_booking_tells_nobody(world, factory, smtp_server):
    """booking.completed has no rule in seed 004: no email, no bell."""
    from app.bookings.models import Booking
    from app.bookings.service import complete
    from app.extensions import db
    from app.notifications.models import Notification

    booking_id = book(world, factory, "confirmed")
    with world.app.app_context():
        from app.database import begin_write

        begin_write()
        booking = db.session.get(Booking, booking_id)
        booking.starts_at -= timedelta(days=5)
        booking.ends_at -= timedelta(days=5)
        db.session.commit()
    deliver_all(world.app)
    smtp_server.clear()
    with world.app.app_context():
        before = db.session.query(Notification).count()
        db.session.rollback()
    act(world, complete, booking_id)
    deliver_all(world.app)
    assert smtp_server.messages == []
    with world.app.app_context():
        assert db.session.query(Notification).count() == before


def test_internal_people_get_a_bell_in_their_own_zone(world, factory, smtp_server):
    """In-app notifications go to internal attendees only, titled in each one's zone, linking
    to the booking; the guest gets email alone."""
    from app.extensions import db
    from app.notifications.models import Notification

    booking_id = book(world, factory, "provisional")
    deliver_all(world.app)
    with world.app.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        by_user = {row.user_id: row for row in rows}
        assert set(by_user) == {world.agent.id, world.learner.id}
        for user, zone in ((world.agent, "Europe/London"), (world.learner, "America/New_York")):
            row = by_user[user.id]
            assert row.rule == "provisional_invite"
            assert row.title.startswith("Provisional booking: Review on ")
            assert row.title.endswith(f"({zone})")
            assert row.url == f"/bookings/{booking_id}"
            assert row.booking_id == booking_id and row.read_at is None
        # 10:00 UTC is 05:00 or 06:00 in New York, depending on the season.
        learner_title = by_user[world.learner.id].title
        assert " 05:00 " in learner_title or " 06:00 " in learner_title
        db.session.rollback()


def test_an_inactive_person_is_not_told(world, factory, smtp_server):
    """A disabled account receives neither email nor bell (they cannot act on it)."""
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    booking_id = book(world, factory, "confirmed")
    deliver_all(world.app)
    smtp_server.clear()
    with world.app.app_context():
        begin_write()
        db.session.get(User, world.learner.id).active = False
        db.session.commit()
    _update(world, booking_id)
    deliver_all(world.app)
    assert sorted(a for m in smtp_server.messages for a in m.to) == [AGENT, GUEST]


# --- the other rules: reminders, polls, calendar links ---------------------------------


def emit(app, kind: str, **payload) -> None:
    """An outbox message as its producer writes it (the payloads documented in outbox.py)."""
    from app.database import begin_write
    from app.extensions import db
    from app.outbox import emit as outbox_emit

    with app.app_context():
        begin_write()
        outbox_emit(kind, **payload)
        db.session.commit()


def test_a_reminder_reaches_its_one_attendee_without_an_invitation(world, factory, smtp_server):
    """reminder.due: email and bell to the attendee it names, in their zone, no .ics."""
    from app.extensions import db
    from app.notifications.models import Notification

    booking_id = book(world, factory, "confirmed")
    deliver_all(world.app)
    smtp_server.clear()
    facts = booking_facts(world, booking_id)
    emit(
        world.app,
        "reminder.due",
        booking_id=booking_id,
        status="confirmed",
        sequence=facts["sequence"],
        attendee={"user_id": world.learner.id, "email": LEARNER, "name": "Leo Learner"},
    )
    deliver_all(world.app)
    [mail] = smtp_server.messages
    assert mail.to == [LEARNER]
    assert mail.subject.startswith("Reminder: Planning meeting on ")
    assert mail.subject.endswith("(America/New_York)")
    assert mail.attachment is None and mail.calendar_part is None
    with world.app.app_context():
        [bell] = db.session.scalars(
            select(Notification).where(Notification.rule == "reminder")
        ).all()
        assert bell.user_id == world.learner.id and bell.url == f"/bookings/{booking_id}"
        db.session.rollback()


def test_a_calendar_needing_relink_tells_its_owner(world, smtp_server):
    """connection.needs_relink: the owner is mailed the re-link page and gets a bell."""
    from app.extensions import db
    from app.notifications.models import Notification

    emit(
        world.app,
        "connection.needs_relink",
        connection_id=41,
        user_id=world.agent.id,
        connection_kind="caldav",
    )
    deliver_all(world.app)
    [mail] = smtp_server.messages
    assert mail.to == [AGENT]
    assert mail.subject == "Your linked calendar needs re-linking"
    assert "/me/calendars" in mail.text and mail.attachment is None
    with world.app.app_context():
        [bell] = db.session.scalars(select(Notification)).all()
        assert bell.user_id == world.agent.id and bell.url == "/me/calendars"
        db.session.rollback()


def test_poll_invitations_carry_each_invitees_own_link(world, smtp_server):
    """poll.invited: each invitee gets the poll's title and their own answer link."""
    from app.database import begin_write, utcnow
    from app.extensions import db
    from app.polls.models import Poll, PollInvitee

    with world.app.app_context():
        begin_write()
        poll = Poll(
            title="Quarterly review",
            organiser_id=world.manager.id,
            booking_type_id=world.confirmed.id,
            expires_at=utcnow() + timedelta(days=3),
        )
        poll.invitees.append(PollInvitee(user_id=world.agent.id, email=AGENT, token_hash="a" * 64))
        poll.invitees.append(PollInvitee(email=GUEST, name="Gail Guest", token_hash="b" * 64))
        db.session.add(poll)
        db.session.flush()
        ids = {i.email: i.id for i in poll.invitees}
        poll_id = poll.id
        db.session.commit()
    base = "http://127.0.0.1:5000/polls/answer/"
    for address, token in ((AGENT, "sbp_agent_token"), (GUEST, "sbp_guest_token")):
        emit(
            world.app,
            "poll.invited",
            poll_id=poll_id,
            invitee_id=ids[address],
            email=address,
            token=token,
            url=base + token,
        )
    deliver_all(world.app)
    assert sorted(a for m in smtp_server.messages for a in m.to) == [AGENT, GUEST]
    for address, token in ((AGENT, "sbp_agent_token"), (GUEST, "sbp_guest_token")):
        [mail] = smtp_server.to(address)
        assert mail.subject == "Choose a time: Quarterly review"
        assert base + token in mail.text and "Mia Manager" in mail.text
        other = "sbp_guest_token" if token == "sbp_agent_token" else "sbp_agent_token"
        assert other not in mail.text
    assert "Hello Gail Guest" in smtp_server.to(GUEST)[0].text


@pytest.mark.parametrize("stored", ["Europe", "America", "", None, "Not/AZone", "../etc"])
def test_zone_named_falls_back_on_folders_and_nonsense(stored):
    """A stored zone naming a folder of the zone database ("Europe") raises OSError in
    ZoneInfo; it falls back like any other unusable name instead of crashing a notification."""
    from app.notifications.render import zone_named

    assert zone_named(stored, "Europe/London").key == "Europe/London"
    assert zone_named(stored, "Europe").key == "UTC"
