"""F2 (and the feed's text, F1): invitations and feeds read by two independent parsers, the
``icalendar`` library and Mozilla's ical.js under Node, with the right instants in the
organiser's zone, across DST changes, and the VTIMEZONE itself checked against zoneinfo."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr

from app.bookings.models import Booking
from app.config import PROJECT_ROOT
from app.extensions import db
from app.notifications import ics

ICALJS_DIR = Path(__file__).parent / "icaljs"
PARSE_SCRIPT = "tests/notifications/icaljs/parse.mjs"


# --- the two parsers -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def icaljs():
    """Parse with ical.js, installed from the lock file once (``make test`` does it before)."""
    if not (ICALJS_DIR / "node_modules" / "ical.js" / "package.json").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=ICALJS_DIR, check=True
        )
    return parse_with_icaljs


def parse_with_icaljs(text: str) -> dict:
    """What ical.js read (see parse.mjs); fails the test with ical.js's message if it can't."""
    done = subprocess.run(
        ["node", PARSE_SCRIPT],
        input=text,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _address(prop) -> dict | None:
    if prop is None:
        return None
    return {
        "email": str(prop).removeprefix("mailto:"),
        "cn": prop.params.get("CN"),
        "role": prop.params.get("ROLE"),
        "partstat": prop.params.get("PARTSTAT"),
        "rsvp": prop.params.get("RSVP"),
    }


def parse_with_icalendar(text: str) -> dict:
    """The same summary as parse.mjs prints, read by the icalendar library."""
    calendar = icalendar.Calendar.from_ical(text)
    events = []
    for event in calendar.walk("VEVENT"):
        attendees = event.get("ATTENDEE", [])
        attendees = attendees if isinstance(attendees, list) else [attendees]
        start, end = event.DTSTART, event.DTEND
        events.append(
            {
                "uid": str(event["UID"]),
                "sequence": int(event["SEQUENCE"]),
                "status": str(event["STATUS"]),
                "summary": str(event["SUMMARY"]),
                "description": str(event["DESCRIPTION"]),
                "location": str(event["LOCATION"]),
                "start": _iso(start),
                "end": _iso(end),
                "tzid": event["DTSTART"].params.get("TZID") or start.tzname(),
                "end_tzid": event["DTEND"].params.get("TZID") or end.tzname(),
                "organizer": _address(event.get("ORGANIZER")),
                "attendees": [_address(a) for a in attendees],
            }
        )
    return {
        "method": str(calendar["METHOD"]),
        "calname": str(calendar["X-WR-CALNAME"]) if "X-WR-CALNAME" in calendar else None,
        "timezones": [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")],
        "events": events,
    }


def both(icaljs, text: str) -> dict:
    """Parse with both libraries, insist they read the same, and return that reading."""
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # CRLF line ends only
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))  # folded
    ours, theirs = parse_with_icalendar(text), icaljs(text)
    assert len(theirs["events"]) == len(ours["events"])
    for mine, other in zip(ours["events"], theirs["events"], strict=True):
        differ = {k: (mine[k], other.get(k)) for k in mine if mine[k] != other.get(k)}
        assert not differ, f"icalendar vs ical.js: {differ}"
    assert theirs == ours
    return ours


# --- bookings to describe ------------------------------------------------------------------


@pytest.fixture
def people(factory):
    owner = factory.user("agent", email="olive@example.test", name="Olive Organiser")
    learner = factory.user("learner", email="lee@example.test", name="Lee Learner")
    return owner, learner


def _book(factory, owner, starts_at, *, approval=False, minutes=60, **kwargs):
    from app.bookings.service import Guest

    kind = factory.booking_type(
        name="Planning meeting" if approval else "Observation",
        requires_approval=approval,
        duration_minutes=minutes,
    )
    kwargs.setdefault("guests", [Guest("gina@example.test", 'Gina "G" Guest, Esq.')])
    return factory.booking(None, kind, starts_at, [owner], **kwargs)


def _with_booking(app, booking_id: int, make):
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        result = make(booking)
        db.session.rollback()
        return result


def _act(app, booking_id: int, action: str, *args):
    from app.bookings import service
    from app.database import begin_write

    with app.app_context():
        begin_write()
        booking = db.session.get(Booking, booking_id)
        getattr(service, action)(None, booking, *args)
        db.session.commit()
        return booking.sequence


def _invite(app, booking_id, method="REQUEST", sequence=None, recipient=None) -> str:
    return _with_booking(
        app,
        booking_id,
        lambda b: ics.invitation(
            b,
            method=method,
            sequence=b.sequence if sequence is None else sequence,
            recipient_email=recipient,
        ),
    )


FUTURE = datetime(2027, 6, 15, 9, 0, tzinfo=UTC)


# --- invitations ---------------------------------------------------------------------------


def test_provisional_invitation_is_tentative_with_organiser_and_attendees(
    app, factory, people, icaljs
):
    """REQUEST for a provisional booking: TENTATIVE, plain title, organiser and attendees."""
    owner, learner = people
    booking = _book(factory, owner, FUTURE, approval=True, learner=learner, title="Gateway")
    text = _invite(app, booking.id)
    read = both(icaljs, text)
    assert read["method"] == "REQUEST"
    [event] = read["events"]
    assert event["uid"] == booking.uid
    assert event["sequence"] == 0
    assert event["status"] == "TENTATIVE"
    assert event["summary"] == "Planning meeting: Gateway"  # the type named, no [PENDING]
    assert "[PENDING]" not in text
    assert (event["start"], event["end"]) == (_iso(FUTURE), _iso(FUTURE + timedelta(hours=1)))
    assert event["tzid"] == "Europe/London"
    assert read["timezones"] == ["Europe/London"]
    assert event["organizer"]["email"] == "olive@example.test"
    assert event["organizer"]["cn"] == "Olive Organiser"
    by_email = {a["email"]: a for a in event["attendees"]}
    assert set(by_email) == {"olive@example.test", "lee@example.test", "gina@example.test"}
    assert by_email["olive@example.test"]["role"] == "CHAIR"
    assert by_email["gina@example.test"]["cn"] == 'Gina "G" Guest, Esq.'
    for attendee in event["attendees"]:
        assert attendee["partstat"] == "NEEDS-ACTION"
        assert attendee["rsvp"] == "FALSE"
        assert attendee["role"] in {"CHAIR", "REQ-PARTICIPANT"}
    assert "PRODID:-//Slotbook//Slotbook//EN" in text and "VERSION:2.0" in text


def test_confirmed_invitation_keeps_the_uid_and_raises_the_sequence(app, factory, people, icaljs):
    """Approval: the same UID, a higher SEQUENCE, STATUS:CONFIRMED; completed stays confirmed."""
    owner, _ = people
    booking = _book(factory, owner, FUTURE, approval=True)
    first = both(icaljs, _invite(app, booking.id))["events"][0]
    sequence = _act(app, booking.id, "approve")
    second = both(icaljs, _invite(app, booking.id))["events"][0]
    assert second["uid"] == first["uid"] == booking.uid
    assert second["sequence"] == sequence > first["sequence"]
    assert (first["status"], second["status"]) == ("TENTATIVE", "CONFIRMED")

    past = _book(factory, owner, datetime.now(UTC) - timedelta(days=2))
    _act(app, past.id, "complete")
    assert both(icaljs, _invite(app, past.id))["events"][0]["status"] == "CONFIRMED"


def test_cancellation_has_the_same_uid_and_a_sequence_not_below_the_last(
    app, factory, people, icaljs
):
    """CANCEL after cancelling: same UID, STATUS:CANCELLED, SEQUENCE >= every REQUEST's."""
    owner, _ = people
    booking = _book(factory, owner, FUTURE)
    request = both(icaljs, _invite(app, booking.id))["events"][0]
    _act(app, booking.id, "reschedule", FUTURE + timedelta(days=1))
    moved = both(icaljs, _invite(app, booking.id))["events"][0]
    sequence = _act(app, booking.id, "cancel")
    # Even asked with an old sequence, the cancellation supersedes everything sent before.
    read = both(icaljs, _invite(app, booking.id, "CANCEL", sequence=0))
    assert read["method"] == "CANCEL"
    [cancel] = read["events"]
    assert cancel["uid"] == request["uid"] == moved["uid"] == booking.uid
    assert cancel["status"] == "CANCELLED"
    assert cancel["sequence"] == sequence >= moved["sequence"] > request["sequence"]
    assert cancel["start"] == _iso(FUTURE + timedelta(days=1))


def test_rejection_is_a_cancel(app, factory, people, icaljs):
    """A rejected provisional booking is withdrawn with METHOD:CANCEL, STATUS:CANCELLED."""
    owner, _ = people
    booking = _book(factory, owner, FUTURE, approval=True)
    sequence = _act(app, booking.id, "reject")
    [event] = both(icaljs, _invite(app, booking.id, "CANCEL", sequence=sequence))["events"]
    assert (event["status"], event["sequence"]) == ("CANCELLED", sequence)


def test_removed_attendee_gets_a_cancel_naming_only_them(app, factory, people, icaljs):
    """Someone taken off a booking gets CANCEL for the same UID with only their ATTENDEE line."""
    owner, _ = people
    booking = _book(factory, owner, FUTURE)

    def remove_guest(b):
        from app.bookings import service
        from app.database import begin_write

        db.session.rollback()
        begin_write()
        b = db.session.get(Booking, b.id)
        guest = next(a for a in b.attendees if a.email == "gina@example.test")
        service.remove_attendee(None, b, guest)
        db.session.commit()

    _with_booking(app, booking.id, remove_guest)
    read = both(icaljs, _invite(app, booking.id, "CANCEL", recipient="gina@example.test"))
    [event] = read["events"]
    assert event["uid"] == booking.uid and event["status"] == "CANCELLED"
    assert [a["email"] for a in event["attendees"]] == ["gina@example.test"]
    # The others, still invited, keep getting the full list.
    [kept] = both(icaljs, _invite(app, booking.id, recipient="olive@example.test"))["events"]
    assert [a["email"] for a in kept["attendees"]] == ["olive@example.test"]


def test_a_recipient_missing_from_the_attendees_is_added(app, factory, people, icaljs):
    """A visitor's contact address that is not an attendee still finds itself in the invite."""
    owner, _ = people
    booking = _book(factory, owner, FUTURE, guests=[])
    [event] = both(icaljs, _invite(app, booking.id, recipient="visitor@example.test"))["events"]
    assert [a["email"] for a in event["attendees"]] == [
        "olive@example.test",
        "visitor@example.test",
    ]


# --- time zones ----------------------------------------------------------------------------


def _local_lines(text: str) -> dict[str, str]:
    """The event's DTSTART/DTEND lines with a TZID, as written (the VTIMEZONE's have none)."""
    return {
        line.split(":", 1)[0]: line.split(":", 1)[1]
        for line in text.split("\r\n")
        if line.startswith(("DTSTART;", "DTEND;"))
    }


def test_booking_across_the_london_spring_change(app, factory, people, icaljs):
    """00:30 GMT to 03:30 BST on 28 March 2027: two hours, right in both parsers."""
    owner, _ = people
    start = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    booking = _book(factory, owner, start, minutes=120)
    text = _invite(app, booking.id)
    [event] = both(icaljs, text)["events"]
    assert (event["start"], event["end"]) == (
        "2027-03-28T00:30:00.000Z",
        "2027-03-28T02:30:00.000Z",
    )
    assert event["tzid"] == event["end_tzid"] == "Europe/London"
    lines = _local_lines(text)
    assert lines["DTSTART;TZID=Europe/London"] == "20270328T003000"
    assert lines["DTEND;TZID=Europe/London"] == "20270328T033000"


def test_booking_in_the_repeated_hour_of_the_london_autumn_change(app, factory, people, icaljs):
    """01:30 happens twice on 31 October 2027 (BST, then GMT): both bookings keep their own
    instant in both parsers, although ical.js and RFC 5545 disagree on what a repeated local
    time means (so such times are written in UTC)."""
    owner, _ = people
    start = datetime(2027, 10, 31, 0, 30, tzinfo=UTC)  # 01:30 BST, the first 01:30
    first = _book(factory, owner, start, minutes=60)
    second = _book(factory, owner, start + timedelta(hours=1), minutes=60)  # 01:30 GMT
    for booking, begins in ((first, start), (second, start + timedelta(hours=1))):
        [event] = both(icaljs, _invite(app, booking.id))["events"]
        assert (event["start"], event["end"]) == (_iso(begins), _iso(begins + timedelta(hours=1)))


def test_new_york_organiser_writes_new_york_times(app, factory, icaljs):
    """An organiser in New York: TZID America/New_York with its own VTIMEZONE, across the
    14 March 2027 change (01:30 EST to 04:30 EDT)."""
    owner = factory.user("agent", email="nyc@example.test", timezone="America/New_York")
    start = datetime(2027, 3, 14, 6, 30, tzinfo=UTC)
    booking = _book(factory, owner, start, minutes=120)
    text = _invite(app, booking.id)
    read = both(icaljs, text)
    [event] = read["events"]
    assert read["timezones"] == ["America/New_York"]
    assert event["tzid"] == "America/New_York"
    assert (event["start"], event["end"]) == (
        "2027-03-14T06:30:00.000Z",
        "2027-03-14T08:30:00.000Z",
    )
    lines = _local_lines(text)
    assert lines["DTSTART;TZID=America/New_York"] == "20270314T013000"
    assert lines["DTEND;TZID=America/New_York"] == "20270314T043000"


@pytest.mark.parametrize("tzid", ["Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_vtimezone_onsets_are_the_real_transitions(tzid):
    """Each onset, read as RFC 5545 says (DTSTART and its RRULE's occurrences, in the offset
    before it), is an instant where zoneinfo's offset changes from TZOFFSETFROM to
    TZOFFSETTO; every change is there; and the changes are yearly rules, not RDATE lists
    (ical.js reads only an RDATE's first value)."""
    zone = ZoneInfo(tzid)
    component = ics.vtimezone(tzid, 2026, 2028)
    onsets = set()
    for part in component.subcomponents:
        assert "RDATE" not in part
        before, after = part.TZOFFSETFROM, part.TZOFFSETTO
        if before == after:
            continue  # the opening observance: no change there
        for local in _onsets(part, datetime(2029, 1, 1)):
            instant = (local - before).replace(tzinfo=UTC)
            assert instant.astimezone(zone).utcoffset() == after, (tzid, local)
            assert (instant - timedelta(seconds=1)).astimezone(zone).utcoffset() == before
            onsets.add(instant)
    hour, real = datetime(2026, 1, 1, tzinfo=UTC), set()
    while hour < datetime(2029, 1, 1, tzinfo=UTC):
        nxt = hour + timedelta(minutes=30)
        if hour.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            real.add(nxt)
        hour = nxt
    assert onsets == real and len(real) == 6
    assert sum("RRULE" in part for part in component.subcomponents) == 2


def _onsets(part, until: datetime) -> list[datetime]:
    if "RRULE" not in part:
        return [part.DTSTART]
    text = part["RRULE"].to_ical().decode()
    return list(rrulestr(text, dtstart=part.DTSTART).between(part.DTSTART, until, inc=True))


def test_the_vtimezone_alone_gives_the_right_offsets_in_python(app, factory, people):
    """icalendar, made to ignore its own zone database and use only our VTIMEZONE, agrees with
    zoneinfo at each end of the DST-crossing booking."""
    owner, _ = people
    start = datetime(2027, 3, 28, 0, 30, tzinfo=UTC)
    booking = _book(factory, owner, start, minutes=120)
    calendar = icalendar.Calendar.from_ical(_invite(app, booking.id))
    [component] = calendar.walk("VTIMEZONE")
    ours = component.to_tz(lookup_tzid=False)
    london = ZoneInfo("Europe/London")
    for instant in (start, start + timedelta(hours=2), datetime(2027, 11, 1, 12, tzinfo=UTC)):
        assert instant.astimezone(ours).utcoffset() == instant.astimezone(london).utcoffset()


# --- text ----------------------------------------------------------------------------------


def test_awkward_text_is_escaped_and_folded(app, factory, people, icaljs):
    """Commas, semicolons, backslashes, new lines and long non-ASCII text come back intact."""
    owner, _ = people
    title = "Réunion; étape 2, « revue » \\ fin " * 4
    description = "Bring: laptop, charger; ID\nSecond line"
    booking = _book(
        factory, owner, FUTURE, title=title.strip(), description=description, location_detail="A,B"
    )
    [event] = both(icaljs, _invite(app, booking.id))["events"]
    assert event["summary"] == f"Observation: {title.strip()}"
    assert event["description"].startswith(description)
    assert event["location"] == "A,B"


# --- the feed's text -----------------------------------------------------------------------


def test_feed_parses_in_both_with_pending_titles_and_zones(app, factory, people, icaljs):
    """A feed with bookings of two organisers' zones: PUBLISH, calendar name, "[PENDING] " on
    provisional titles, STATUS per booking, no ATTENDEE lines, right instants."""
    owner, learner = people
    nyc = factory.user("agent", email="nyc@example.test", name="Nia", timezone="America/New_York")
    pending = _book(factory, owner, FUTURE, approval=True, learner=learner)
    confirmed = _book(factory, owner, datetime(2027, 3, 28, 0, 30, tzinfo=UTC), minutes=120)
    theirs = _book(factory, nyc, datetime(2027, 3, 14, 6, 30, tzinfo=UTC), learner=learner)

    def make(_):
        from app.accounts.models import User

        rows = [db.session.get(Booking, b.id) for b in (confirmed, pending, theirs)]
        return ics.feed(db.session.get(User, learner.id), rows)

    text = _with_booking(app, pending.id, make)
    read = both(icaljs, text)
    assert read["method"] == "PUBLISH"
    assert read["calname"] == "Slotbook – Lee Learner"
    assert sorted(read["timezones"]) == ["America/New_York", "Europe/London"]
    events = {e["uid"]: e for e in read["events"]}
    assert set(events) == {pending.uid, confirmed.uid, theirs.uid}
    assert events[pending.uid]["summary"] == "[PENDING] Planning meeting"
    assert events[pending.uid]["status"] == "TENTATIVE"
    assert events[confirmed.uid]["summary"] == "Observation"
    assert events[confirmed.uid]["status"] == "CONFIRMED"
    assert events[confirmed.uid]["end"] == "2027-03-28T02:30:00.000Z"
    assert events[theirs.uid]["tzid"] == "America/New_York"
    assert events[theirs.uid]["start"] == "2027-03-14T06:30:00.000Z"
    assert all(e["attendees"] == [] for e in read["events"])
    assert "Lee Learner" in events[pending.uid]["description"]
