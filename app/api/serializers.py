"""Rows as API JSON, through the response models of ``app.api.schemas`` (so what is sent is
what the document says). Instants are ISO 8601 with the offset of the zone asked for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.accounts.models import Group, LearnerProfile, User, group_members
from app.api import schemas
from app.bookings.models import Attendee, Booking, BookingType
from app.extensions import db
from app.scheduling.slots import Slot
from app.teams.attendance import attendance_json
from app.teams.service import meeting_json


def iso(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat()


def booking_type_json(kind: BookingType) -> dict:
    return schemas.BookingType.dump(
        slug=kind.slug,
        name=kind.name,
        description=kind.description or "",
        duration_minutes=kind.duration_minutes,
        buffer_before_minutes=kind.buffer_before_minutes,
        buffer_after_minutes=kind.buffer_after_minutes,
        location_modes=[str(m) for m in kind.location_modes],
        default_location_mode=kind.default_location_mode,
        location_detail=kind.location_detail or "",
        face_to_face_detail=kind.face_to_face_detail or "",
        remote_detail=kind.remote_detail or "",
        requires_approval=kind.requires_approval,
        bookable_by=[str(b) for b in kind.bookable_by],
        availability_source=str(kind.availability_source),
        group=kind.availability_group_id,
        minimum_notice_minutes=kind.minimum_notice_minutes,
        earliest_day_public=kind.earliest_day_public,
        earliest_day_staff=kind.earliest_day_staff,
        disabled_window_minutes=kind.disabled_window_minutes,
        horizon_days=kind.horizon_days,
        weekends_enabled=kind.weekends_enabled,
        max_per_day=kind.max_per_day,
        colour=kind.colour,
        active=kind.active,
        planned_otj_minutes=kind.planned_otj_minutes,
        complete_on_verified=bool(kind.complete_on_verified),
    )


# A local day as UTC instants: where its midnight falls, and the day after it.
_MIDNIGHT = time(0)
_ONE_DAY = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_NEVER = datetime.min.replace(tzinfo=UTC)


def _is_steady(start: datetime, offset: timedelta, zone: ZoneInfo) -> bool:
    """Whether ``zone`` is ``offset`` ahead of UTC from ``start`` for a whole day.

    True when the offset at the day's first and last instant is ``offset`` and so is that of
    some instant inside (the caller's): a single change in the day would make them disagree,
    and no zone changes its offset twice within 48 hours (``tests/api/test_slots_json.py``
    checks every zone of the tz database)."""
    return (
        start.astimezone(zone).utcoffset() == offset
        and (start + _ONE_DAY - _TICK).astimezone(zone).utcoffset() == offset
    )


def slots_json(slots: Sequence[Slot], zone: ZoneInfo) -> str:
    """The availability answer as JSON text, the bytes ``jsonify`` would write for
    ``{"slots": [{"end", "people", "start"}, ...]}`` (keys sorted, compact).

    The one answer written by hand: its values are only instants this function formats and
    people's ids, so nothing in it needs escaping, and building a dict per slot, checking the
    list against ``SlotList`` and encoding it cost more than finding the slots at small
    sizes. ``tests/api/test_slots_json.py`` holds it to ``SlotList`` and ``jsonify``; every
    API test checks the answers it gets against the OpenAPI document.

    Instants are written without converting each to local time. The local day last written
    is kept as UTC instants ``[day_start, day_end)`` with its date's and offset's text, once
    its offset is known to hold all day (:func:`_is_steady`); an instant inside it is then
    ``day_start`` plus a time of day, written once per answer. Slots come in order, so that
    is a comparison and a subtraction per instant instead of ``astimezone`` and
    ``isoformat``: 163 against 245 us for the 163 slots of 3 agents over 8 weeks. An
    instant on a day the clocks change is written in full."""
    day_start = day_end = _NEVER
    day_text = offset_text = ""
    clocks: dict[timedelta, str] = {}  # a time of day's text by its distance from midnight
    offsets: dict[timedelta, str] = {}

    def clock(since: timedelta) -> str:
        text = clocks[since] = (datetime.min + since).time().isoformat()
        return text

    def text(instant: datetime) -> str:
        """An instant's text; outside the day kept, its own day is kept instead if steady."""
        nonlocal day_start, day_end, day_text, offset_text
        if not day_start <= instant < day_end:
            local = instant.astimezone(zone)
            offset = local.utcoffset()
            day = local.date()
            try:
                start = datetime.combine(day, _MIDNIGHT, UTC) - offset
                steady = _is_steady(start, offset, zone)
            except OverflowError:  # the first or last day a datetime can hold
                steady = False
            if not steady:
                return local.isoformat()
            day_start, day_end, day_text = start, start + _ONE_DAY, day.isoformat()
            offset_text = offsets.get(offset)
            if offset_text is None:  # what isoformat writes after the date and the time
                written = len(day_text) + 1 + len(local.time().isoformat())
                offset_text = offsets[offset] = local.isoformat()[written:]
        since = instant - day_start
        return f"{day_text}T{clocks.get(since) or clock(since)}{offset_text}"

    lists: dict[tuple[int, ...], str] = {}
    parts = []
    add = parts.append
    for start, end, people in slots:
        people_text = lists.get(people)
        if people_text is None:
            people_text = lists[people] = ",".join(map(str, people))
        if day_start <= start <= end < day_end:  # the usual case: text() inlined, twice
            a, b = start - day_start, end - day_start
            a_text, b_text = clocks.get(a) or clock(a), clocks.get(b) or clock(b)
            add(
                f'{{"end":"{day_text}T{b_text}{offset_text}","people":[{people_text}],'
                f'"start":"{day_text}T{a_text}{offset_text}"}}'
            )
        else:
            start_text = text(start)
            add(f'{{"end":"{text(end)}","people":[{people_text}],"start":"{start_text}"}}')
    return '{"slots":[' + ",".join(parts) + "]}\n"


def people_json(users: Sequence[User]) -> list[dict]:
    """People with their groups and learner links, in three statements for any number."""
    ids = [u.id for u in users]
    groups: dict[int, list[int]] = {i: [] for i in ids}
    profiles: dict[int, LearnerProfile] = {}
    if ids:
        rows = db.session.execute(
            select(group_members.c.user_id, group_members.c.group_id)
            .where(group_members.c.user_id.in_(ids))
            .order_by(group_members.c.group_id)
        )
        for user_id, group_id in rows:
            groups[user_id].append(group_id)
        profiles = {
            p.user_id: p
            for p in db.session.scalars(
                select(LearnerProfile).where(LearnerProfile.user_id.in_(ids))
            )
        }
    out = []
    for user in users:
        profile = profiles.get(user.id)
        out.append(
            schemas.Person.dump(
                id=user.id,
                name=user.name,
                email=user.email,
                role=user.role.slug,
                timezone=user.timezone,
                active=user.active,
                groups=groups[user.id],
                assigned_agent=profile.assigned_agent_id if profile else None,
                mentor=profile.workplace_mentor_id if profile else None,
                assessor=profile.assessor_id if profile else None,
                employer=profile.employer_id if profile else None,
            )
        )
    return out


def person_json(user: User) -> dict:
    return people_json([user])[0]


def group_json(group: Group) -> dict:
    return schemas.Group.dump(
        id=group.id,
        slug=group.slug,
        name=group.name,
        system=bool(group.system),
        members=[m.id for m in sorted(group.members, key=lambda m: (m.name, m.id))],
    )


def _clock(value: time) -> str:
    return value.strftime("%H:%M")


def working_hours_json(user: User, week: dict[int, list[tuple[time, time]]]) -> dict:
    return schemas.WorkingHours.dump(
        timezone=user.timezone,
        week={
            name: [[_clock(start), _clock(end)] for start, end in week.get(day, [])]
            for day, name in enumerate(schemas.WEEKDAYS)
        },
    )


def attendee_json(attendee: Attendee) -> dict:
    return {
        "id": attendee.id,
        "user_id": attendee.user_id,
        "email": attendee.email,
        "name": attendee.display_name,
        "role": str(attendee.role),
    }


def booking_json(booking: Booking, zone: ZoneInfo) -> dict:
    return schemas.Booking.dump(
        id=booking.id,
        uid=booking.uid,
        status=str(booking.status),
        booking_type=booking.booking_type.slug,
        title=booking.title,
        description=booking.description,
        start=iso(booking.starts_at, zone),
        end=iso(booking.ends_at, zone),
        location_mode=str(booking.location_mode),
        location_detail=booking.location_detail,
        owner=booking.owner_id,
        learner=booking.learner_id,
        attendees=[attendee_json(a) for a in booking.attendees],
        rebook_of=booking.rebook_of_id,
        created_at=iso(booking.created_at, zone),
        updated_at=iso(booking.updated_at, zone),
        sequence=booking.sequence,
        planned_otj_minutes=booking.planned_otj_minutes,
        attendance=attendance_json(booking),  # T3: null unless Teams with planned minutes
        online_meeting=meeting_json(booking),  # T1/T2: null unless Teams
    )
