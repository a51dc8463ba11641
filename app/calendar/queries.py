"""What the team calendar shows (C1–C3, C6), loaded in a fixed number of queries.

- The visible range is whole local days in the viewer's zone (a week starts on Monday), so a
  week containing a clock change lasts 167 or 169 hours and every day still starts at local
  midnight.
- "Me" shows the viewer's own Slotbook bookings only (C6): those they hold, attend or are the
  learner of. "Team" shows one lane per active staff member (or one group's members) with
  their bookings and their external busy blocks. A booking the viewer may not open
  (``policy.can_view``) is drawn as an anonymous "Busy" block: no title, no link, no status.
- External busy blocks are titled by the C2 rule in ``connections.titles``.
- Conflicts (C3) come from ``scheduling.conflicts`` over the active bookings in range and the
  busy blocks of the people in them, so a booking is marked the same way in Me and Team.

Statements per request, whatever the number of people or items: the "show event details"
setting, groups, booking types, people (Team only), bookings, their internal attendees, busy
blocks.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import aliased

from app.accounts.models import Group, Role, User, WorkingHoursRule, group_members
from app.accounts.permissions import Perm
from app.admin.settings import get_setting
from app.bookings.models import (
    HOLDING_STATUSES,
    Attendee,
    Booking,
    BookingType,
    Hold,
    Status,
)
from app.connections.models import BLOCKING_STATUSES, BusyBlock, BusyStatus
from app.connections.titles import busy_label
from app.database import BulkReader, utcnow
from app.extensions import db
from app.scheduling.conflicts import Occupied, find_conflicts
from app.scheduling.localtime import wall_to_utc

VIEWS = ("week", "day")
SCOPES = ("me", "team")
SLOT_MINUTES = 15
DEFAULT_FIRST_MINUTE = 7 * 60  # the grid shows 07:00–20:00 unless an item lies outside
DEFAULT_LAST_MINUTE = 20 * 60
DAY_MINUTES = 24 * 60
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(2100, 12, 31)
ACTIVE_STATUSES = frozenset(str(s) for s in HOLDING_STATUSES)
ENDED_STATUSES = frozenset({str(Status.CANCELLED), str(Status.REJECTED)})
HIDDEN_TITLE = "Busy"  # a booking the viewer may not see: its title never reaches the page
MUTED_STATUSES = frozenset({str(Status.COMPLETED)}) | ENDED_STATUSES
KINDS = {"booking": "booking", "hidden": "hidden", "busy": "busy"}
STATES = {str(s): str(s) for s in Status} | {str(s): str(s) for s in BusyStatus}
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_DEFAULT_COLOUR = "#2457a7"


class BadRequest(ValueError):
    """A query-string value the calendar cannot show; the message is shown as it is."""


# --- parameters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """What the viewer asked for, from the query string (``/calendar?view=week&date=…``)."""

    day: date
    view: str = "week"
    scope: str = "me"
    group: str = ""
    type: str = ""
    cancelled: bool = False

    def args(self, **changes) -> dict[str, str]:
        """Query-string arguments for a link to this view with ``changes`` applied."""
        p = replace(self, **changes)
        out = {"view": p.view, "date": p.day.isoformat(), "scope": p.scope}
        if p.scope == "team" and p.group:
            out["group"] = p.group
        if p.type:
            out["type"] = p.type
        if p.cancelled:
            out["cancelled"] = "1"
        return out


def default_scope(viewer: User) -> str:
    """People who may see every booking land on the team; everyone else on their own."""
    if viewer.can(Perm.CALENDAR_VIEW_TEAM) and viewer.can(Perm.BOOKINGS_VIEW_ALL):
        return "team"
    return "me"


def parse_params(args: Mapping[str, str], *, today: date, scope: str) -> Params:
    """Read and check the query string; ``BadRequest`` names the first bad value."""
    view = args.get("view") or "week"
    if view not in VIEWS:
        raise BadRequest("The view must be “week” or “day”.")
    scope = args.get("scope") or scope
    if scope not in SCOPES:
        raise BadRequest("Choose “me” or “team”.")
    raw = (args.get("date") or "").strip()
    day = today
    if raw:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise BadRequest("The date must look like 2026-11-23.") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadRequest(f"Choose a date between {MIN_DATE:%Y} and {MAX_DATE:%Y}.")
    group = (args.get("group") or "").strip()
    kind = (args.get("type") or "").strip()
    if len(group) > 80 or len(kind) > 80:
        raise BadRequest("That filter is not known.")
    cancelled = (args.get("cancelled") or "") in {"1", "on", "true", "yes"}
    return Params(day=day, view=view, scope=scope, group=group, type=kind, cancelled=cancelled)


# --- the visible range ------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """One local calendar day and the UTC instants it spans (23, 24 or 25 hours)."""

    date: date
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Window:
    view: str
    anchor: date
    zone: ZoneInfo
    days: tuple[Day, ...]

    @property
    def start(self) -> datetime:
        return self.days[0].start

    @property
    def end(self) -> datetime:
        return self.days[-1].end

    @property
    def step(self) -> timedelta:
        return timedelta(days=7 if self.view == "week" else 1)

    @property
    def previous(self) -> date | None:
        day = self.anchor - self.step
        return day if day >= MIN_DATE else None

    @property
    def next(self) -> date | None:
        day = self.anchor + self.step
        return day if day <= MAX_DATE else None

    @property
    def label(self) -> str:
        first, last = self.days[0].date, self.days[-1].date
        if self.view == "day":
            return f"{first:%A} {first.day} {first:%B %Y}"
        if first.year != last.year:
            return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"
        if first.month != last.month:
            return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
        return f"{first.day}–{last.day} {last:%B %Y}"

    @property
    def zone_label(self) -> str:
        """The zone and the abbreviations in force during the range, e.g. "GMT/BST"."""
        names: list[str] = []
        for day in self.days:
            for instant in (day.start, day.end - timedelta(microseconds=1)):
                name = instant.astimezone(self.zone).tzname() or ""
                if name and name not in names:
                    names.append(name)
        return f"{self.zone.key} ({'/'.join(names)})" if names else self.zone.key


def make_window(view: str, anchor: date, zone: ZoneInfo) -> Window:
    """The days shown for ``anchor``: its Monday-to-Sunday week, or the day itself."""
    first = anchor - timedelta(days=anchor.weekday()) if view == "week" else anchor
    count = 7 if view == "week" else 1
    dates = [first + timedelta(days=n) for n in range(count + 1)]
    bounds = [wall_to_utc(d, time(0), zone) for d in dates]
    days = tuple(Day(dates[n], bounds[n], bounds[n + 1]) for n in range(count))
    return Window(view, anchor, zone, days)


# --- C2: what an external event may be called ------------------------------------------


# --- rows and items ---------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class BookingRow:
    """The columns of one booking the calendar needs, and its internal people."""

    id: int
    title: str
    status: str
    starts_at: datetime
    ends_at: datetime
    owner_id: int | None
    learner_id: int | None
    created_by_id: int | None
    type_slug: str
    type_name: str
    colour: str
    learner_name: str | None
    people: dict[int, str] = field(default_factory=dict)  # user id -> name

    def involves(self, user: User) -> bool:
        """Same rule as ``Booking.involves`` so ``policy.can_view`` can judge a row."""
        return user.id in {self.owner_id, self.learner_id, self.created_by_id} or (
            user.id in self.people
        )

    def is_own(self, user_id: int) -> bool:
        """On this person's own calendar: they hold it, attend it or are its learner."""
        return user_id in (self.owner_id, self.learner_id) or user_id in self.people


@dataclass(slots=True, eq=False)
class BusyRow:
    id: int
    person_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    source: str
    title: str | None


@dataclass(slots=True, eq=False)
class Item:
    """One thing drawn on the calendar."""

    kind: str  # "booking", "hidden" (a booking the viewer may not see) or "busy"
    start: datetime
    end: datetime
    title: str
    status: str  # a booking's status, or an external block's busy state
    time_label: str
    booking_id: int | None = None
    detail: str = ""
    colour: str = _DEFAULT_COLOUR
    conflicts: tuple[str, ...] = ()
    html: tuple | None = None  # its fixed HTML pieces, written once (``calendar.items``)

    @property
    def conflict_label(self) -> str:
        return "Conflicts with: " + "; ".join(self.conflicts) if self.conflicts else ""

    @property
    def css(self) -> str:
        """Classes from fixed words only (the template does not escape them)."""
        conflict = " has-conflict" if self.conflicts else ""
        return f"item-{KINDS[self.kind]} is-{STATES[self.status]}{conflict}"

    @property
    def ended(self) -> bool:
        """A booking whose status is worth saying in words (it is drawn muted)."""
        return self.kind == "booking" and self.status in MUTED_STATUSES


@dataclass(slots=True, eq=False)
class Segment:
    """The part of an item that falls on one day, in local wall-clock minutes."""

    item: Item
    start_min: int
    end_min: int
    all_day: bool
    col: int = 0
    cols: int = 1
    left: float = 0.0  # % of the column, time grid only
    width: float = 100.0
    row_start: int = 1
    row_end: int = 2

    @property
    def time_label(self) -> str:
        return "All day" if self.all_day else self.item.time_label


@dataclass(eq=False)
class Column:
    """One column of a time grid: a day (week view) or a person (Team day view)."""

    key: str
    label: str
    sublabel: str = ""
    is_today: bool = False
    segments: list[Segment] = field(default_factory=list)
    all_day: list[Segment] = field(default_factory=list)


@dataclass(eq=False)
class TimeGrid:
    columns: list[Column]
    first_min: int
    last_min: int

    @property
    def rows(self) -> int:
        return (self.last_min - self.first_min) // SLOT_MINUTES

    @property
    def hours(self) -> list[tuple[int, str]]:
        """(grid row, "HH:00") for each hour line."""
        return [
            ((minute - self.first_min) // SLOT_MINUTES + 1, f"{minute // 60:02d}:00")
            for minute in range(self.first_min, self.last_min, 60)
        ]

    @property
    def has_all_day(self) -> bool:
        return any(c.all_day for c in self.columns)


@dataclass(eq=False)
class Lane:
    """A person's row in the Team week view: one list of segments per day."""

    person_id: int
    name: str
    cells: list[list[Segment]]


@dataclass(eq=False)
class Calendar:
    params: Params
    window: Window
    today: date
    groups: list[tuple[str, str]]  # (slug, name)
    types: list[tuple[str, str]]
    grid: TimeGrid | None = None
    lanes: list[Lane] | None = None
    bookings_shown: int = 0
    busy_shown: int = 0
    people_shown: int = 0

    @property
    def is_empty(self) -> bool:
        return self.bookings_shown == 0


# --- loading ----------------------------------------------------------------------------


def _rows(query):
    """Plain rows through the session's connection (same transaction), skipping the ORM's
    per-row work: these queries return thousands of tuples and no objects."""
    return db.session.connection().execute(query).all()


def _in_range(entity, start: datetime, end: datetime):
    return and_(entity.starts_at < end, entity.ends_at > start)


def _own(entity, user_id: int):
    """Bookings on a person's own calendar (``BookingRow.is_own`` in SQL)."""
    attendee = aliased(Attendee)
    return or_(
        entity.owner_id == user_id,
        entity.learner_id == user_id,
        entity.id.in_(select(attendee.booking_id).where(attendee.user_id == user_id)),
    )


def _booking_filter(window: Window, statuses: frozenset[str], me: int | None):
    """Bookings in range; for Me, the viewer's own and those sharing a person with them
    (needed to find booking-against-booking conflicts of the viewer's bookings)."""
    where = and_(_in_range(Booking, window.start, window.end), Booking.status.in_(statuses))
    if me is None:
        return where
    mine, attendee, linked = aliased(Booking), aliased(Attendee), aliased(Attendee)
    my_people = (
        select(attendee.user_id)
        .join(mine, attendee.booking_id == mine.id)
        .where(
            _in_range(mine, window.start, window.end),
            mine.status.in_(statuses),
            _own(mine, me),
            attendee.user_id.is_not(None),
        )
    )
    related = Booking.id.in_(
        select(linked.booking_id).where(linked.user_id.in_(my_people.scalar_subquery()))
    )
    return and_(where, or_(_own(Booking, me), related))


def _load_bookings(window: Window, statuses: frozenset[str], me: int | None) -> list[BookingRow]:
    where = _booking_filter(window, statuses, me)
    learner = aliased(User)
    read = BulkReader(db.session.connection().dialect.name)
    rows = _rows(
        select(
            Booking.id,
            Booking.title,
            Booking.status,
            read.instant(Booking.starts_at),
            read.instant(Booking.ends_at),
            Booking.owner_id,
            Booking.learner_id,
            Booking.created_by_id,
            BookingType.slug,
            BookingType.name,
            BookingType.colour,
            learner.name,
        )
        .join(BookingType, Booking.booking_type_id == BookingType.id)
        .outerjoin(learner, Booking.learner_id == learner.id)
        .where(where)
        .order_by(Booking.starts_at, Booking.id)
    )
    rows = _instants_at(rows, (3, 4), read)
    bookings = {
        r[0]: BookingRow(
            *r[:10],
            colour=r[10] if r[10] and _COLOUR.fullmatch(r[10]) else _DEFAULT_COLOUR,
            learner_name=r[11],
        )
        for r in rows
    }
    attendees = _rows(
        select(Attendee.booking_id, Attendee.user_id, User.name)
        .join(User, Attendee.user_id == User.id)
        .join(Booking, Attendee.booking_id == Booking.id)
        .where(where)
        .order_by(Attendee.id)
    )
    for booking_id, user_id, name in attendees:
        row = bookings.get(booking_id)
        if row is not None:
            row.people[user_id] = name
    return list(bookings.values())


def _load_people(group: str, window: Window | None = None) -> list[tuple[int, str]]:
    """The Team view's people: active staff who can hold bookings (issue 15). Someone who
    has set no working hours of their own, belongs to no group, has linked no calendar and
    holds no booking in the shown range is an organiser (an owner, a booking manager), not a
    bookable person, and gets no empty lane."""
    from app.connections.models import Connection

    in_a_group = exists().where(group_members.c.user_id == User.id)
    has_hours = exists().where(WorkingHoursRule.user_id == User.id)
    has_calendar = exists().where(Connection.user_id == User.id)
    bookable = [in_a_group, has_hours, has_calendar]
    if window is not None:
        bookable.append(
            exists().where(
                Hold.person_id == User.id,
                Hold.active.is_(True),
                Hold.starts_at < window.end,
                Hold.ends_at > window.start,
            )
        )
        bookable.append(
            exists().where(
                BusyBlock.person_id == User.id,
                BusyBlock.starts_at < window.end,
                BusyBlock.ends_at > window.start,
            )
        )
    query = (
        select(User.id, User.name)
        .join(Role, User.role_id == Role.id)
        .where(Role.is_staff.is_(True), User.active.is_(True), or_(*bookable))
        .order_by(User.name, User.id)
    )
    if group:
        members = (
            select(group_members.c.user_id)
            .join(Group, Group.id == group_members.c.group_id)
            .where(Group.slug == group)
        )
        query = query.where(User.id.in_(members))
    return [(r[0], r[1]) for r in db.session.execute(query)]


def _instants_at(rows: list, positions: tuple[int, ...], read: BulkReader) -> list:
    """``rows`` with the raw instants at ``positions`` converted a column at a time."""
    if not rows:
        return rows
    columns = list(zip(*rows, strict=True))
    for n in positions:
        columns[n] = read.instants(columns[n])
    return list(zip(*columns, strict=True))


def _load_busy(person_ids: set[int], start: datetime, end: datetime) -> list[BusyRow]:
    read = BulkReader(db.session.connection().dialect.name)
    rows = _rows(
        select(
            BusyBlock.id,
            BusyBlock.person_id,
            read.instant(BusyBlock.starts_at),
            read.instant(BusyBlock.ends_at),
            BusyBlock.status,
            BusyBlock.source,
            BusyBlock.title,
        )
        .where(
            BusyBlock.person_id.in_(sorted(person_ids)),
            _in_range(BusyBlock, start, end),
            BusyBlock.status.in_([str(s) for s in BLOCKING_STATUSES]),
        )
        .order_by(BusyBlock.starts_at, BusyBlock.id)
    )
    return [BusyRow(*r) for r in _instants_at(rows, (2, 3), read)]


# --- labels -----------------------------------------------------------------------------


def _hm(local: datetime) -> str:
    return f"{local.hour:02d}:{local.minute:02d}"


@lru_cache(maxsize=4096)
def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    """``instant`` on ``zone``'s wall clock (memoised: a week's items share a few hundred
    start and end instants)."""
    return instant.astimezone(zone)


@lru_cache(maxsize=8192)
def span_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """Local times as "10:00–11:00", with weekdays when not within one local day (memoised:
    many items share their start and end)."""
    ls, le = _local(start, zone), _local(end, zone)
    last = (le - timedelta(microseconds=1)).date()
    if ls.date() == last:
        return f"{_hm(ls)}–{_hm(le)}"
    return f"{ls:%a} {ls.day} {_hm(ls)} – {le:%a} {le.day} {_hm(le)}"


def conflict_labels(
    viewer: User,
    bookings: list[BookingRow],
    busy: list[BusyRow],
    zone: ZoneInfo,
    show_details: bool,
    *,
    sees_all: bool | None = None,
) -> dict[int, tuple[str, ...]]:
    """Booking id -> what it conflicts with, as people read it (C3). Titles of bookings the
    viewer may not see are never named; busy blocks follow the C2 title rules."""
    occupied = [
        Occupied(("b", b.id), person, b.starts_at, b.ends_at)
        for b in bookings
        if b.status in ACTIVE_STATUSES
        for person in b.people
    ]
    blocks = [Occupied(("x", x.id), x.person_id, x.starts_at, x.ends_at) for x in busy]
    found = find_conflicts(occupied, blocks)
    if not found:
        return {}
    if sees_all is None:
        sees_all = viewer.can(Perm.BOOKINGS_VIEW_ALL)
    by_booking = {b.id: b for b in bookings}
    by_busy = {x.id: x for x in busy}
    labels: dict[int, tuple[str, ...]] = {}
    for (_, booking_id), others in found.items():
        booking = by_booking[booking_id]
        texts = []
        for kind, other_id in others:
            if kind == "x":
                block = by_busy[other_id]
                text = busy_label(block.status, block.source, block.title, show_details)
                text = f"{text} {span_label(block.starts_at, block.ends_at, zone)}"
                if block.person_id != booking.owner_id and block.person_id in booking.people:
                    text += f" ({booking.people[block.person_id]})"  # whose time it is
            else:
                other = by_booking[other_id]
                seen = sees_all or other.involves(viewer)  # policy.can_view
                name = other.title if seen else HIDDEN_TITLE
                text = f"{name} {span_label(other.starts_at, other.ends_at, zone)}"
            texts.append(text)
        labels[booking_id] = tuple(dict.fromkeys(texts))
    return labels


# --- layout -----------------------------------------------------------------------------


def _minutes(local: datetime) -> int:
    return local.hour * 60 + local.minute


@lru_cache(maxsize=64)
def _day_ends(days: tuple[Day, ...]) -> tuple[datetime, ...]:
    return tuple(day.end for day in days)


def _segments(item: Item, days: tuple[Day, ...], zone: ZoneInfo) -> list[tuple[int, Segment]]:
    """(day index, segment) for each shown day the item touches."""
    out = []
    local_start = local_end = None
    # Days are in order: start at the first that ends after the item starts, stop after it.
    for index in range(bisect_right(_day_ends(days), item.start), len(days)):
        day = days[index]
        if day.start >= item.end:
            break
        all_day = item.start <= day.start and item.end >= day.end
        if item.start <= day.start:
            start = 0
        else:
            local_start = local_start or _local(item.start, zone)
            start = _minutes(local_start)
        if item.end >= day.end:
            end = DAY_MINUTES
        else:
            local_end = local_end or _local(item.end, zone)
            end = _minutes(local_end)
        end = min(max(end, start + SLOT_MINUTES), DAY_MINUTES)  # visible even if tiny
        start = min(start, end - SLOT_MINUTES)
        out.append((index, Segment(item, start, end, all_day)))
    return out


BOOKING_TRACK = 70.0  # % of a column's width for bookings where they meet external busy time


def _clusters(segments: list[Segment]) -> list[list[Segment]]:
    """Side-by-side columns (``col`` of ``cols``) within each run of overlapping segments."""
    segments.sort(key=lambda s: (s.start_min, -s.end_min))
    clusters: list[list[Segment]] = []
    ends: list[int] = []
    cluster_end = -1
    for seg in segments:
        if not clusters or seg.start_min >= cluster_end:
            clusters.append([])
            ends = []
        for col, col_end in enumerate(ends):
            if col_end <= seg.start_min:
                seg.col, ends[col] = col, seg.end_min
                break
        else:
            seg.col = len(ends)
            ends.append(seg.end_min)
        clusters[-1].append(seg)
        cluster_end = max(cluster_end, seg.end_min)
        for member in clusters[-1]:
            member.cols = len(ends)
    return clusters


def _meets(cluster: list[Segment], others: list[Segment]) -> bool:
    return any(a.start_min < b.end_min and b.start_min < a.end_min for a in cluster for b in others)


def _place(segments: list[Segment], first_min: int) -> None:
    """Grid rows for each segment, and where it sits across the column.

    Overlapping bookings share the width side by side. Where bookings meet external busy
    time (a person's lane in the Team day view), the bookings keep the wider left track and
    the busy blocks take a narrow right one, so a conflicting booking stays readable.
    """
    for seg in segments:
        seg.row_start = (seg.start_min - first_min) // SLOT_MINUTES + 1
        seg.row_end = max(-(-(seg.end_min - first_min) // SLOT_MINUTES) + 1, seg.row_start + 1)
    bookings = [s for s in segments if s.item.kind != "busy"]
    busy = [s for s in segments if s.item.kind == "busy"]
    tracks = [(c, busy, 0.0, BOOKING_TRACK) for c in _clusters(bookings)]
    tracks += [(c, bookings, BOOKING_TRACK, 100 - BOOKING_TRACK) for c in _clusters(busy)]
    for cluster, others, offset, share in tracks:
        if not _meets(cluster, others):
            offset, share = 0.0, 100.0
        for seg in cluster:
            seg.width = round(share / seg.cols, 3)
            seg.left = round(offset + seg.width * seg.col, 3)
    segments.sort(key=lambda s: (s.start_min, -s.end_min))


def _grid(columns: list[Column]) -> TimeGrid:
    timed = [s for c in columns for s in c.segments]
    first = min([DEFAULT_FIRST_MINUTE] + [s.start_min for s in timed])
    last = max([DEFAULT_LAST_MINUTE] + [s.end_min for s in timed])
    first, last = first - first % 60, min(last + (-last) % 60, DAY_MINUTES)
    for column in columns:
        _place(column.segments, first)
    return TimeGrid(columns, first, last)


def _add(column: Column, segment: Segment) -> None:
    (column.all_day if segment.all_day else column.segments).append(segment)


# --- the calendar ---------------------------------------------------------------------


def load_calendar(user: User, params: Params, *, now: datetime | None = None) -> Calendar:
    """Everything the calendar page shows for ``user``. The caller has checked that they may
    use ``params.scope`` (Team needs calendar.view_team)."""
    # The viewer's permissions are read once: ``current_user`` is a proxy and ``User.can``
    # looks through the role, which thousands of per-booking checks would repeat.
    user = getattr(user, "_get_current_object", lambda: user)()
    sees_all = user.can(Perm.BOOKINGS_VIEW_ALL)
    zone = user.zone
    today = (now or utcnow()).astimezone(zone).date()
    window = make_window(params.view, params.day, zone)
    show_details = bool(get_setting("show_event_details"))
    groups = [(r[0], r[1]) for r in db.session.execute(select(Group.slug, Group.name))]
    groups.sort(key=lambda g: g[1].lower())
    types = [(r[0], r[1]) for r in db.session.execute(select(BookingType.slug, BookingType.name))]
    types.sort(key=lambda t: t[1].lower())
    team = params.scope == "team"
    if params.group and (not team or params.group not in dict(groups)):
        raise BadRequest("That group is not known.")
    if params.type and params.type not in dict(types):
        raise BadRequest("That booking type is not known.")

    people = _load_people(params.group, window) if team else [(user.id, user.name)]
    statuses = ACTIVE_STATUSES | (ENDED_STATUSES if params.cancelled else frozenset())
    bookings = _load_bookings(window, statuses, None if team else user.id)

    lane_ids = {pid for pid, _ in people}
    if team:
        shown = [b for b in bookings if lane_ids.intersection(b.people)]
    else:
        shown = [b for b in bookings if b.is_own(user.id)]
    concerned = set(lane_ids)
    lo, hi = window.start, window.end
    for b in shown:
        concerned.update(b.people)
        lo, hi = min(lo, b.starts_at), max(hi, b.ends_at)
    busy = _load_busy(concerned, lo, hi)
    conflicts = conflict_labels(user, bookings, busy, zone, show_details, sees_all=sees_all)

    items = {}
    for b in shown:
        visible = sees_all or b.involves(user)  # policy.can_view, permission read once
        # The type filter applies to bookings the viewer may see; the others are anonymous
        # busy time like external events (filtering them would reveal their type).
        if visible and params.type and b.type_slug != params.type:
            continue
        if not visible and b.status in ENDED_STATUSES:
            continue
        items[b.id] = _booking_item(b, visible, conflicts.get(b.id, ()), zone)

    calendar = Calendar(params, window, today, groups, types)
    calendar.bookings_shown = len(items)
    if not team:
        columns = _day_columns(window, today)
        for item in items.values():
            for index, segment in _segments(item, window.days, zone):
                _add(columns[index], segment)
        calendar.grid = _grid(columns)
        calendar.people_shown = 1
        return calendar

    lanes: dict[int, list[Item]] = {pid: [] for pid in lane_ids}  # bookings, then busy time
    for b in shown:
        item = items.get(b.id)
        if item is not None:
            for pid in b.people:
                if pid in lanes:
                    lanes[pid].append(item)
    for x in busy:
        if x.person_id in lane_ids and x.starts_at < window.end and x.ends_at > window.start:
            lanes[x.person_id].append(_busy_item(x, zone, show_details))
            calendar.busy_shown += 1
    calendar.people_shown = len(people)
    if params.view == "day":
        calendar.grid = _person_columns(people, lanes, window)
    else:
        calendar.lanes = _person_rows(people, lanes, window)
    return calendar


def _person_columns(people, lanes: dict[int, list[Item]], window: Window) -> TimeGrid:
    """Team day view: a time-grid column per person."""
    columns = []
    for pid, name in people:
        column = Column(key=str(pid), label=name)
        for item in lanes[pid]:
            for _, segment in _segments(item, window.days, window.zone):
                _add(column, segment)
        columns.append(column)
    return _grid(columns)


def _person_rows(people, lanes: dict[int, list[Item]], window: Window) -> list[Lane]:
    """Team week view: a row per person, a cell per day, items in time order (all-day first)."""
    rows = []
    for pid, name in people:
        cells: list[list[Segment]] = [[] for _ in window.days]
        for item in lanes[pid]:
            for index, segment in _segments(item, window.days, window.zone):
                cells[index].append(segment)
        for cell in cells:
            cell.sort(key=lambda s: (not s.all_day, s.start_min, s.end_min))
        rows.append(Lane(pid, name, cells))
    return rows


def _day_columns(window: Window, today: date) -> list[Column]:
    return [
        Column(
            key=day.date.isoformat(),
            label=f"{day.date:%a}",
            sublabel=f"{day.date.day} {day.date:%b}",
            is_today=day.date == today,
        )
        for day in window.days
    ]


def _booking_item(b: BookingRow, visible: bool, conflicts, zone: ZoneInfo) -> Item:
    label = span_label(b.starts_at, b.ends_at, zone)
    if not visible:
        return Item("hidden", b.starts_at, b.ends_at, HIDDEN_TITLE, "busy", label)
    title = f"[PENDING] {b.title}" if b.status == Status.PROVISIONAL else b.title
    active = b.status in ACTIVE_STATUSES
    return Item(
        "booking",
        b.starts_at,
        b.ends_at,
        title,
        b.status,
        label,
        booking_id=b.id,
        detail=b.learner_name or "",
        colour=b.colour,
        conflicts=tuple(conflicts) if active else (),
    )


def _busy_item(x: BusyRow, zone: ZoneInfo, show_details: bool) -> Item:
    return Item(
        "busy",
        x.starts_at,
        x.ends_at,
        busy_label(x.status, x.source, x.title, show_details),
        x.status,
        span_label(x.starts_at, x.ends_at, zone),
    )
