"""Which times a booking type can offer, to whom: the database side of the engine (A1–A6, B6).

Loads everything the engine needs for a set of people in a constant number of queries
(people, working hours, overrides, time off, holds, busy blocks, settings), builds plain
``scheduling`` values and asks the engine. The same code re-checks a single start inside a
booking's transaction, so what is offered and what is accepted can never disagree.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import chain, groupby
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    Select,
    String,
    Text,
    TextClause,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import selectinload

from app.accounts.models import (
    PLANNING_GROUP_SLUG,
    DateOverride,
    Group,
    LearnerProfile,
    TimeOff,
    User,
    WorkingHoursRule,
    group_members,
)
from app.admin.settings import all_settings
from app.bookings.models import AvailabilitySource, Booking, BookingType, Hold
from app.connections.freshness import stale_people
from app.connections.models import BLOCKING_SQL
from app.database import BulkReader, collector_paused, driver_rows, utcnow
from app.extensions import db
from app.scheduling.intervals import (
    Interval,
    Pair,
    covers,
    intersect_pairs,
    merge_pairs,
    merge_widened,
)
from app.scheduling.rules import BookingWindow, WorkingHours, shift_ranges
from app.scheduling.slots import Person, Slot, SlotRequest, find_slots, free_intervals
from app.sql_values import (
    day_value,
    id_list,
    instant_texts,
    instant_value,
    member,
    stored_param,
)

Audience = Literal["public", "staff"]
UTC_ZONE = ZoneInfo("UTC")
_ONE_DAY = timedelta(days=1)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


# --- what a booking type sets ----------------------------------------------------------


class OfferRules(NamedTuple):
    """What finding slots reads of a booking type (A3–A5, B6), as one row.

    A request that only finds slots (the API's availability) reads this instead of the ORM
    ``BookingType``: one statement's driver tuple, not an object with its state and identity
    (~110 us less of a 2.7 ms request at 3 agents x 8 weeks, issue [14]). ``BookingType`` has
    the same attributes, so either serves every function here."""

    id: int
    availability_source: str
    availability_group_id: int | None
    duration_minutes: int
    slot_interval_minutes: int | None
    buffer_before_minutes: int
    buffer_after_minutes: int
    max_per_day: int | None
    minimum_notice_minutes: int | None
    earliest_day_public: int | None
    earliest_day_staff: int | None
    disabled_window_minutes: int | None
    horizon_days: int | None
    weekends_enabled: bool | None

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


BookingRules = BookingType | OfferRules

_OFFER_RULES = select(*(getattr(BookingType, name) for name in OfferRules._fields)).where(
    BookingType.slug == bindparam("slug"), BookingType.active.is_(True)
)


def offer_rules(slug: str) -> OfferRules | None:
    """The rules of the active booking type ``slug``; None when there is none."""
    rows = driver_rows(_OFFER_RULES, {"slug": slug})
    if not rows:
        return None
    *row, weekends = rows[0]  # SQLite's driver gives a boolean as 0 or 1
    return OfferRules(*row, None if weekends is None else bool(weekends))


# --- who is considered (B6) ---------------------------------------------------------


def candidate_people(booking_type: BookingType, learner: User | None = None) -> list[User]:
    """The people a booking type draws availability from. Unconfigured sources give [],
    never an error (B6)."""
    source = booking_type.availability_source
    assigned = _assigned_agent(learner)
    if source == AvailabilitySource.ASSIGNED_AGENT:
        return [assigned] if assigned else []
    if source == AvailabilitySource.GROUP:
        group = booking_type.availability_group
        return _active(group.members) if group else []
    planning = db.session.scalars(
        select(Group).where(Group.slug == PLANNING_GROUP_SLUG).options(selectinload(Group.members))
    ).one_or_none()
    members = _active(planning.members) if planning else []
    if members:
        return members
    return [assigned] if assigned else []


def _assigned_agent(learner: User | None) -> User | None:
    if learner is None:
        return None
    profile = db.session.get(LearnerProfile, learner.id)
    agent = profile.assigned_agent if profile else None
    return agent if agent is not None and agent.active else None


def _active(users: Sequence[User]) -> list[User]:
    return [u for u in users if u.active]


class Candidate(NamedTuple):
    """What loading availability needs of a person (``load_context`` takes these or users)."""

    id: int
    timezone: str
    active: bool


def candidates(booking_type: BookingRules, learner: User | None = None) -> list[Candidate]:
    """:func:`candidate_people` as plain rows, in one statement per source: computing slots
    needs only each person's id and zone, not a user with their role and its permissions."""
    source = booking_type.availability_source
    if source == AvailabilitySource.ASSIGNED_AGENT:
        return _assigned_candidate(learner)
    if source == AvailabilitySource.GROUP:
        group_id = booking_type.availability_group_id
        return [] if group_id is None else _candidate_rows(_GROUP_MEMBERS, {"group": group_id})
    planning = _candidate_rows(_PLANNING_MEMBERS, {})
    return planning or _assigned_candidate(learner)


# Built once (a statement object keeps its cache key): the active members of a group in the
# group's order (by name), of the planning group, and a learner's active assigned agent.
_PERSON = (User.id, User.timezone, User.active)
_MEMBERS = (
    select(*_PERSON)
    .join(group_members, group_members.c.user_id == User.id)
    .where(User.active.is_(True))
    .order_by(User.name)
)
_GROUP_MEMBERS = _MEMBERS.where(group_members.c.group_id == bindparam("group"))
_PLANNING_MEMBERS = _MEMBERS.join(Group, Group.id == group_members.c.group_id).where(
    Group.slug == PLANNING_GROUP_SLUG
)
_ASSIGNED = (
    select(*_PERSON)
    .join(LearnerProfile, LearnerProfile.assigned_agent_id == User.id)
    .where(LearnerProfile.user_id == bindparam("learner"), User.active.is_(True))
)


def _candidate_rows(statement: Select, values: dict) -> list[Candidate]:
    db.session.flush()  # members changed in this transaction count (as the ORM's autoflush)
    # The driver's rows (SQLite gives a boolean as 0 or 1): no SQLAlchemy Row each.
    rows = driver_rows(statement, values)
    return [Candidate(person, zone, bool(active)) for person, zone, active in rows]


def _assigned_candidate(learner: User | None) -> list[Candidate]:
    return [] if learner is None else _candidate_rows(_ASSIGNED, {"learner": learner.id})


# --- loading ------------------------------------------------------------------------


def organisation_week(settings: dict) -> dict[int, tuple[tuple[time, time], ...]]:
    """Working hours of someone who has set none: the organisation's day (A1 defaults, "no
    early or late hours"), Monday to Friday unless weekends are on."""
    try:
        span = (time.fromisoformat(settings["day_start"]), time.fromisoformat(settings["day_end"]))
    except ValueError:
        span = (time(8), time(18))
    if span[1] <= span[0]:
        span = (time(8), time(18))
    days = range(7) if settings["weekends_enabled"] else range(5)
    return {day: (span,) for day in days}


@dataclass(frozen=True)
class Context:
    """Everything the engine needs, loaded once for a set of people and a range."""

    people: list[Person]
    request: SlotRequest
    # Why someone offers nothing although they may be free: their calendar data is stale or
    # unreadable (K4, fail closed). Staff screens show these sentences.
    calendar_problems: dict[int, str] = field(default_factory=dict)


def _window(booking_type: BookingRules, settings: dict, audience: Audience) -> BookingWindow:
    def pick(own, key):
        return own if own is not None else settings[key]

    earliest_own = (
        booking_type.earliest_day_public
        if audience == "public"
        else booking_type.earliest_day_staff
    )
    return BookingWindow(
        zone=_zone(settings["organisation_timezone"]),
        minimum_notice=timedelta(
            minutes=pick(booking_type.minimum_notice_minutes, "minimum_notice_minutes")
        ),
        earliest_day=pick(earliest_own, f"earliest_day_{audience}"),
        disabled_window=timedelta(
            minutes=pick(booking_type.disabled_window_minutes, "disabled_window_minutes")
        ),
        horizon=timedelta(days=pick(booking_type.horizon_days, "booking_horizon_days")),
        weekends=pick(booking_type.weekends_enabled, "weekends_enabled"),
    )


def load_context(
    booking_type: BookingRules,
    people: Sequence[User | Candidate],
    start: datetime,
    end: datetime,
    *,
    audience: Audience = "staff",
    now: datetime | None = None,
    group_threshold: bool = True,
    ignore_booking: Booking | None = None,
) -> Context:
    """Build engine inputs for ``people`` over [start, end) in six queries, whatever the
    number of people.

    Rows are read in bulk on the session's Core connection as plain tuples and their
    datetimes converted a column at a time (:class:`_Reader`); the engine gets busy time as
    plain pairs, a person's rows a run at a time (:func:`_add_pairs`); each person's week
    comes as one text, parsed once per distinct week (:func:`_weeks`). Calendar busy blocks
    that cannot touch anybody's working time inside the booking window (nights, weekends,
    beyond the horizon) are dropped by SQL, so they are neither transferred nor converted
    (:func:`_busy_statement`). Holds are all read: they also count towards each person's
    load; their bookings are joined only when the type has a daily maximum, the one use of
    the bookings per day.
    """
    now = now or utcnow()
    settings = all_settings()
    ids = [p.id for p in people]
    before = timedelta(minutes=booking_type.buffer_before_minutes)
    after = timedelta(minutes=booking_type.buffer_after_minutes)
    lo, hi = start - before - after - _ONE_DAY, end + before + after + _ONE_DAY
    dialect = db.session.connection().dialect.name
    read = _Reader(dialect)
    zones = {p.id: _zone(p.timezone) for p in people}

    sql = _statements(dialect)
    # Values in the driver's own form (app.sql_values): no converter runs per execution.
    bounds = {
        "ids": id_list(dialect, ids),
        "lo": instant_value(lo, dialect),
        "hi": instant_value(hi, dialect),
    }

    weeks: dict[int, str] = dict(driver_rows(sql.weeks, {"ids": bounds["ids"]}))
    overrides: dict[int, dict[date, list]] = defaultdict(lambda: defaultdict(list))
    days = {
        "ids": bounds["ids"],
        "first": day_value((lo - _ONE_DAY).date(), dialect),
        "last": day_value((hi + _ONE_DAY).date(), dialect),
    }
    for user_id, day, t0, t1 in driver_rows(sql.overrides, days):
        ranges = overrides[user_id][read.one_day(day)]
        if t0 is not None and t1 is not None:
            ranges.append((read.one_clock(t0), read.one_clock(t1)))
    time_off: dict[int, list[Interval]] = defaultdict(list)
    for user_id, t0, t1 in driver_rows(sql.time_off, bounds):
        time_off[user_id].append(Interval(read.one_instant(t0), read.one_instant(t1)))

    default_week = organisation_week(settings)
    # People with the same zone and week and no override or time off share one (immutable)
    # WorkingHours: a team's members mostly do, and each one is checked when it is built.
    parsed: dict[str, dict] = {}
    shared: dict[tuple, WorkingHours] = {}
    working: dict[int, WorkingHours] = {}
    for p in people:
        own = weeks.get(p.id)  # None: the organisation's week
        if own is None:
            week = default_week
        else:
            week = parsed.get(own)
            if week is None:
                week = parsed[own] = _parsed_week(own)
        if p.id in overrides or p.id in time_off:
            working[p.id] = WorkingHours(
                zone=zones[p.id],
                weekly=week,
                overrides={day: tuple(r) for day, r in overrides[p.id].items()},
                time_off=tuple(time_off[p.id]),
            )
            continue
        key = (zones[p.id], own)
        hours = shared.get(key)
        if hours is None:
            hours = shared[key] = WorkingHours(zone=zones[p.id], weekly=week)
        working[p.id] = hours
    threshold = settings["slot_availability_percentage"] / 100 if group_threshold else 1.0
    request = SlotRequest(
        start=start,
        end=end,
        now=now,
        duration=booking_type.duration,
        window=_window(booking_type, settings, audience),
        interval=timedelta(minutes=booking_type.slot_interval_minutes)
        if booking_type.slot_interval_minutes
        else None,
        buffer_before=before,
        buffer_after=after,
        max_per_day=booking_type.max_per_day,
        threshold=threshold,
    )

    busy: dict[int, list[Pair]] = defaultdict(list)
    load: Counter[int] = Counter()
    per_day: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    # Without a daily maximum nobody's day count matters: the holds alone, without their
    # bookings (the join costs a lookup per hold).
    holds = driver_rows(
        sql.holds if booking_type.max_per_day is None else sql.holds_counted,
        {**bounds, "kind": booking_type.id, "ignore": ignore_booking.id if ignore_booking else -1},
    )
    if holds:
        person_ids, starts, ends, counted = zip(*holds, strict=True)
        _add_pairs(busy, person_ids, starts, ends, in_runs=True)
        load.update(person_ids)
        if booking_type.max_per_day is not None:
            for person_id, b_start in zip(person_ids, counted, strict=True):
                if b_start is not None:
                    day = read.one_instant(b_start).astimezone(zones[person_id]).date()
                    per_day[person_id][day] += 1
    # "Compute availability from calendars" off: linked calendars are still synced and shown
    # on the calendar, but neither their busy time nor their staleness decides any slot.
    use_calendars = bool(settings["compute_availability"])
    if use_calendars:
        spans = _relevant_spans(working.values(), request)
        blocks = driver_rows(
            _busy_statement(dialect),
            {"ids": bounds["ids"], "pieces": _busy_pieces(spans, dialect)},
        )
        if blocks:
            _add_pairs(busy, *zip(*blocks, strict=True), in_runs=dialect == "sqlite")

    interval = timedelta(minutes=int(settings["cache_update_interval_minutes"]))
    problems = stale_people(ids, now, interval) if use_calendars else {}
    engine_people = [
        Person(
            id=p.id,
            hours=working[p.id],
            busy_pairs=tuple(busy[p.id]),
            load=load[p.id],
            bookings_per_day=dict(per_day[p.id]),
            available=p.active and p.id not in problems,  # deactivated people offer nothing
        )
        for p in people
    ]
    return Context(engine_people, request, problems)


def _add_pairs(
    busy: dict[int, list[Pair]],
    person_ids: Sequence[int],
    starts: Sequence,
    ends: Sequence,
    *,
    in_runs: bool,
) -> None:
    """Add each row's ``(start, end)`` to its person's list in ``busy`` (a defaultdict).

    ``in_runs``: the rows come in runs of one person's (the holds, by their index on person;
    SQLite's busy blocks, person by person: :func:`_busy_statement`). Each run is then added
    as one slice of a list built in C, so Python works per run, not per row (~0.1 us a row:
    6 ms at 200 agents x 8 weeks). Otherwise (PostgreSQL's busy blocks, a piece of time at a
    time: runs of ~3 rows, where a slice per run costs more) a row at a time. Either way
    every row is added, whatever the order."""
    pairs = zip(BulkReader.instants(starts), BulkReader.instants(ends), strict=True)
    if not in_runs:
        for person_id, pair in zip(person_ids, pairs, strict=True):
            busy[person_id].append(pair)
        return
    ordered = list(pairs)
    at = 0
    for person_id, run in groupby(person_ids):
        following = at + len(tuple(run))
        busy[person_id] += ordered[at:following]
        at = following


# Above this many separate spans the busy-block query keeps one range instead (a long range
# of a team in many zones): the statement stays small, and the engine ignores the extra rows.
MAX_SPANS = 200


def _relevant_spans(hours: Iterable[WorkingHours], request: SlotRequest) -> list[Pair]:
    """Where a calendar busy block can change an answer: anybody's working time inside the
    booking window, widened by the new booking's buffers (a block [bs, be) matters exactly
    when [bs - after, be + before) meets someone's free time). People sharing a zone and a
    week are expanded once. Time off is not subtracted: a superset is always safe."""
    window = request.open_pairs
    if not window:
        return []
    patterns = {}
    for h in {id(h): h for h in hours}.values():  # the loader shares one object per pattern
        key = (h.zone.key, tuple(sorted(h.weekly.items())), tuple(sorted(h.overrides.items())))
        patterns.setdefault(key, h)
    lo, hi = window[0][0], window[-1][1]
    # Each pattern's shifts without its time off, merged; the window then clips them.
    worked = merge_pairs(pair for h in patterns.values() for pair in shift_ranges(h, lo, hi))
    spans = intersect_pairs(worked, window)
    before, after = request.buffer_before, request.buffer_after
    spans = merge_widened(spans, before, after)
    if len(spans) > MAX_SPANS:
        spans = [(spans[0][0], spans[-1][1])]
    return spans


@dataclass(frozen=True)
class _Statements:
    """The loader's SELECTs, built once per dialect: a statement object keeps its cache key,
    so a request only binds values instead of rebuilding and re-hashing each expression."""

    weeks: Select
    overrides: Select
    time_off: Select
    holds: Select
    holds_counted: Select


def _weeks(dialect: str) -> Select:
    """Each person's weekly rules as one text, ``"weekday start end"`` joined by commas.

    A team mostly shares one week: the loader parses each distinct text once and shares the
    ``WorkingHours`` of the same text and zone, instead of a row, two clocks and a dict
    entry per rule and person (~0.3 ms at 100 agents, on every request). PostgreSQL orders
    the rules by weekday and start; SQLite joins them as it reads them (a person's by their
    index, as stored: ordering them first cost more in SQL, 0.52 against 0.34 ms at 100
    agents, than the parsing it saves). Weeks stored in another order are only shared less;
    the people screens write a week in weekday order."""
    rule = WorkingHoursRule
    # SQLite stores times as text already (its CAST changes nothing); PostgreSQL writes them.
    one = (
        cast(rule.weekday, Text)
        + " "
        + cast(rule.start_time, Text)
        + " "
        + cast(rule.end_time, Text)
    )
    if dialect == "sqlite":
        joined = func.group_concat(one, ",")
    else:
        joined = func.string_agg(
            one, aggregate_order_by(literal(","), rule.weekday, rule.start_time)
        )
    return select(rule.user_id, joined).where(member(rule.user_id, dialect)).group_by(rule.user_id)


def _parsed_week(text: str) -> dict[int, tuple[tuple[time, time], ...]]:
    """A week as :func:`_weeks` writes it, as ``WorkingHours.weekly``."""
    days: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for rule in text.split(","):
        weekday, start, end = rule.split(" ")
        days[int(weekday)].append((time.fromisoformat(start), time.fromisoformat(end)))
    return {day: tuple(ranges) for day, ranges in days.items()}


@cache
def _statements(dialect: str) -> _Statements:
    read = _Reader(dialect)
    lo, hi = stored_param("lo", dialect), stored_param("hi", dialect)
    held = (
        member(Hold.person_id, dialect),
        Hold.active.is_(True),
        Hold.starts_at < hi,
        Hold.ends_at > lo,
        Hold.booking_id != bindparam("ignore"),
    )
    return _Statements(
        weeks=_weeks(dialect),
        overrides=select(
            DateOverride.user_id,
            read.day(DateOverride.day),
            read.clock(DateOverride.start_time),
            read.clock(DateOverride.end_time),
        ).where(
            member(DateOverride.user_id, dialect),
            DateOverride.day >= stored_param("first", dialect),
            DateOverride.day <= stored_param("last", dialect),
        ),
        time_off=select(
            TimeOff.user_id, read.instant(TimeOff.starts_at), read.instant(TimeOff.ends_at)
        ).where(
            member(TimeOff.user_id, dialect),
            TimeOff.starts_at < hi,
            TimeOff.ends_at > lo,
        ),
        holds=select(
            Hold.person_id, read.instant(Hold.starts_at), read.instant(Hold.ends_at), null()
        ).where(*held),
        # With a daily maximum, the start of each booking of this type counts for its day.
        holds_counted=select(
            Hold.person_id,
            read.instant(Hold.starts_at),
            read.instant(Hold.ends_at),
            case(
                (Booking.booking_type_id == bindparam("kind"), read.instant(Booking.starts_at)),
                else_=null(),
            ),
        )
        .join(Booking, Booking.id == Hold.booking_id)
        .where(*held),
    )


# Before any stored instant: the lower bound of the first piece of the busy-block query.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)


def _busy_pieces(spans: Sequence[Pair], dialect: str) -> str:
    """The ``pieces`` value of :func:`_busy_statement` for sorted, disjoint ``spans``: one
    JSON array of ``[g, s, e]`` triples of instants as their database compares them.

    The pieces ``[e(n-1), e(n))`` (the first from :data:`_EARLIEST`) tile time up to the last
    span's end, so each busy block starts inside exactly one piece; it meets a span exactly
    when it ends after the start of its own piece's span (a block starting in piece n cannot
    meet an earlier span, and one meeting a later span also meets span n). Each block is
    found once, by an index range scan on its start, instead of testing every block of a
    person against every span. No spans: ``[]``, and the statement finds nothing."""
    texts = instant_texts(chain([_EARLIEST], *spans), dialect == "sqlite")
    triples = []
    previous = texts[0]
    for k in range(1, len(texts), 2):
        start, end = texts[k], texts[k + 1]
        triples.append(f'["{previous}","{start}","{end}"]')
        previous = end
    return "[" + ",".join(triples) + "]"


# What the blocks are joined to: the pieces as a table (JSON read by SQLite's json_each, or
# PostgreSQL's json_array_elements), and on SQLite the people as a table too (their one
# value as app.sql_values binds it; PostgreSQL tests the blocks against its array). SQLite reads
# them with json_extract rather than ``->>`` (3.38+), so the SQLite of older distributions
# still runs it, through a MATERIALIZED common table (3.35+): a plain subquery is flattened
# into the join and each ``json_extract`` evaluated again for every block tested (~50 %
# slower at 100 agents x 8 weeks than bound pieces; materialised, as fast). The table sits
# inside the FROM so that the statement still starts with SELECT.
_BUSY_PARTS = {
    "sqlite": {
        "tables": "json_each(:ids) AS who CROSS JOIN "
        "(WITH p AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS g, "
        "json_extract(value, '$[1]') AS s, json_extract(value, '$[2]') AS e "
        "FROM json_each(:pieces)) SELECT g, s, e FROM p) AS pieces",
        "people": "b.person_id = who.value",
        "instant": "b.{0} || '+00:00'",
    },
    "postgresql": {
        "tables": "(SELECT CAST(p ->> 0 AS timestamptz) AS g, CAST(p ->> 1 AS timestamptz) AS s, "
        "CAST(p ->> 2 AS timestamptz) AS e "
        "FROM json_array_elements(CAST(:pieces AS json)) AS p) AS pieces",
        "people": "b.person_id = ANY(CAST(:ids AS integer[]))",
        "instant": "CAST(timezone('UTC', b.{0}) AS TEXT) || '+00:00'",
    },
}


@cache
def _busy_statement(dialect: str) -> TextClause:
    """Blocking busy blocks of ``ids`` meeting one of the spans given as ``pieces`` (see
    :func:`_busy_pieces`), instants as text (as :class:`BulkReader` reads them). Its text
    is fixed: two bound values, whatever the number of people and spans.

    The pieces are a small derived table joined to the blocks on ``person_id IN ids AND
    g <= starts_at < e AND ends_at > s``: one range of the partial index of blocking blocks
    (``ix_busy_blocks_blocking_period``) per person and piece. Its condition is repeated with
    literal values, which SQLite needs to use a partial index at all. On SQLite ``CROSS JOIN``
    fixes the loops: the people outside, so each person's blocks come together (one run each
    for :func:`_add_pairs`), then the pieces, whose planner otherwise puts a table-valued
    function's rows inside (a scan of every piece for each of a person's blocks). PostgreSQL
    plans the join itself (a lateral join per person to keep their rows together cost it 60 %
    more at 30 and 200 agents)."""
    parts = _BUSY_PARTS.get(dialect, _BUSY_PARTS["postgresql"])
    instant = parts["instant"]
    columns = f"b.person_id, {instant.format('starts_at')}, {instant.format('ends_at')}"
    return text(
        f"SELECT {columns} FROM {parts['tables']} "  # noqa: S608 (constants only)
        f"CROSS JOIN busy_blocks AS b WHERE {parts['people']} AND b.starts_at >= pieces.g "
        f"AND b.starts_at < pieces.e AND b.ends_at > pieces.s AND b.{BLOCKING_SQL}"
    ).bindparams(bindparam("pieces", type_=String), bindparam("ids"))


_Reader = BulkReader


# --- answers ------------------------------------------------------------------------


def slots_for(
    booking_type: BookingRules,
    start: datetime,
    end: datetime,
    *,
    audience: Audience = "staff",
    learner: User | None = None,
    people: Sequence[User] | None = None,
    now: datetime | None = None,
) -> list[Slot]:
    """Slots of ``booking_type`` in [start, end). ``people`` overrides the type's source and
    then every one of them must be free (a multi-person booking)."""
    chosen = list(people) if people is not None else candidates(booking_type, learner)
    if not chosen:
        return []
    with collector_paused():
        return _found_slots(
            load_context(
                booking_type,
                chosen,
                start,
                end,
                audience=audience,
                now=now,
                group_threshold=people is None,
            )
        )


def _found_slots(context: Context) -> list[Slot]:
    """The engine's answer for ``context``, which is freed on return, while the collector is
    still paused: the containers allocated while it was off (people, busy pairs: thousands
    at 30 agents) are deallocated before it runs again, so resuming it does not set off a
    collection that walks them (0.3 ms at 30 agents x 8 weeks, 1 ms at 100 x 8, on every
    request)."""
    return find_slots(context.people, context.request)


def unavailable_people(
    booking_type: BookingType,
    people: Sequence[User],
    starts_at: datetime,
    *,
    audience: Audience = "staff",
    now: datetime | None = None,
    ignore_booking: Booking | None = None,
) -> list[User]:
    """Who of ``people`` cannot take a booking of this type at ``starts_at`` (working hours,
    window, busy time with buffers, max per day). Used inside the booking transaction."""
    slot = Interval(starts_at, starts_at + booking_type.duration)
    context = load_context(
        booking_type,
        people,
        slot.start,
        slot.end,
        audience=audience,
        now=now,
        group_threshold=False,
        ignore_booking=ignore_booking,
    )
    day_counts_ok = {
        person.id: booking_type.max_per_day is None
        or person.bookings_per_day.get(starts_at.astimezone(person.hours.zone).date(), 0)
        < booking_type.max_per_day
        for person in context.people
    }
    blocked = []
    for user, person in zip(people, context.people, strict=True):
        if not (day_counts_ok[person.id] and covers(free_intervals(person, context.request), slot)):
            blocked.append(user)
    return blocked


# --- why a hand-picked time is not an offered one (staff "book anyway") ---------------


@dataclass(frozen=True)
class OutsideReason:
    """One reason a time is outside the usual: whose (None: the organisation's window), the
    engine's code, and the sentence staff read in the preview, the form and the audit."""

    person: User | None
    code: str
    text: str


def outside_reasons(
    booking_type: BookingType,
    people: Sequence[User],
    starts_at: datetime,
    zone: ZoneInfo,
    *,
    now: datetime | None = None,
) -> list[OutsideReason]:
    """Why ``starts_at`` would not be offered for ``people`` (staff among them), busy time
    apart: in the past, outside the booking window, on a closed day, outside someone's
    working hours or in their time off. Empty when it is an ordinary time. ``zone`` is the
    reader's, for the times named in the sentences."""
    from app.scheduling import outside

    now = now or utcnow()
    slot = Interval(starts_at, starts_at + booking_type.duration)
    staff = [p for p in dict.fromkeys(people) if p.is_staff]
    context = load_context(
        booking_type, staff, slot.start, slot.end, now=now, group_threshold=False
    )
    window = context.request.window
    reasons = [
        OutsideReason(None, r.code, _window_sentence(r.code, starts_at, window, zone))
        for r in outside.window_reasons(window, now, slot)
    ]
    if any(r.code in (outside.PAST, outside.HORIZON) for r in reasons):
        return reasons
    for user, person in zip(staff, context.people, strict=True):
        for r in outside.hours_reasons(person.hours, slot):
            reasons.append(OutsideReason(user, r.code, _person_sentence(user, r, slot, zone)))
    return reasons


def _hm(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%H:%M")


def _window_sentence(code: str, starts_at: datetime, window, zone: ZoneInfo) -> str:
    local = starts_at.astimezone(zone)
    return {
        "past": f"{local:%d %B %Y, %H:%M} has already passed.",
        "horizon": f"It is beyond the booking horizon ({window.horizon.days} days ahead).",
        "closed_day": f"{local:%A} is a closed day: weekends are not bookable.",
        "notice": "It is too soon: inside the booking window's minimum notice or before "
        "its earliest bookable day.",
    }.get(code, code)


def _person_sentence(user: User, reason, slot: Interval, zone: ZoneInfo) -> str:
    local = slot.start.astimezone(zone)
    span = f"{_hm(slot.start, zone)}–{_hm(slot.end, zone)}"
    if reason.code == "day_off":
        return f"{user.name} does not work on {local:%A %d %B}."
    if reason.code == "time_off":
        return f"{user.name} has time off then."
    hours = ", ".join(f"{_hm(a, zone)}–{_hm(b, zone)}" for a, b in reason.ranges)
    worked = f" (they work {hours})" if hours else ""
    return f"{span} is outside {user.name}'s working hours{worked}."
