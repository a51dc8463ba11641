"""The bookings list (``/bookings``): which bookings, in which order, one page at a time.

Upcoming first (the next booking at the top), past ones a click away (most recent first), a
date range, a search over the title and the people's names and emails, the status filter,
and pages of ``PAGE_SIZE``. A page costs a fixed number of queries whatever its length: the
count, the rows with their type, owner and learner, nothing per row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import exists, func, or_
from sqlalchemy.orm import aliased, joinedload

from app.accounts.models import User
from app.bookings import policy
from app.bookings.models import Attendee, Booking, Status
from app.extensions import db
from app.guard import parse_day
from app.scheduling.localtime import wall_to_utc

PAGE_SIZE = 25
MAX_PAGE = 10_000
SHOWS = ("upcoming", "past")
MAX_SEARCH = 100


@dataclass(frozen=True)
class ListParams:
    """What the viewer asked for, read from the query string; bad values are ignored."""

    status: str = ""
    show: str = "upcoming"
    q: str = ""
    start: date | None = None  # local dates, inclusive
    end: date | None = None
    page: int = 1

    def args(self, **changes) -> dict[str, str]:
        """Query-string arguments for a link to this list with ``changes`` applied."""
        p = replace(self, **changes)
        out = {"show": p.show}
        if p.status:
            out["status"] = p.status
        if p.q:
            out["q"] = p.q
        if p.start:
            out["from"] = p.start.isoformat()
        if p.end:
            out["to"] = p.end.isoformat()
        if p.page > 1:
            out["page"] = str(p.page)
        return out


def parse_params(args: Mapping[str, str]) -> ListParams:
    status = args.get("status", "")
    show = args.get("show", "upcoming")
    raw_page = args.get("page", "1")
    page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 6 else 1
    start = parse_day((args.get("from") or "")[:10])
    end = parse_day((args.get("to") or "")[:10])
    if start and end and end < start:
        start, end = end, start
    return ListParams(
        status=status if status in set(Status) else "",
        show=show if show in SHOWS else "upcoming",
        q=" ".join((args.get("q") or "").split())[:MAX_SEARCH],
        start=start,
        end=end,
        page=min(max(page, 1), MAX_PAGE),
    )


@dataclass
class Page:
    params: ListParams
    bookings: list[Booking]
    total: int
    size: int = PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.params.page > 1

    @property
    def has_next(self) -> bool:
        return self.params.page < self.pages

    @property
    def first_number(self) -> int:
        return (self.params.page - 1) * self.size + 1 if self.bookings else 0

    @property
    def last_number(self) -> int:
        return self.first_number + len(self.bookings) - 1 if self.bookings else 0


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _search(query, text: str):
    """Title, or the name or email of the owner, the learner or any attendee."""
    pattern = _like(text)
    owner, learner, person = aliased(User), aliased(User), aliased(User)

    def match(user):
        return or_(
            func.lower(user.name).like(pattern, escape="\\"),
            func.lower(user.email).like(pattern, escape="\\"),
        )

    attendee = exists().where(
        Attendee.booking_id == Booking.id,
        or_(
            func.lower(Attendee.name).like(pattern, escape="\\"),
            func.lower(Attendee.email).like(pattern, escape="\\"),
            exists().where(person.id == Attendee.user_id, match(person)),
        ),
    )
    return query.where(
        or_(
            func.lower(Booking.title).like(pattern, escape="\\"),
            exists().where(owner.id == Booking.owner_id, match(owner)),
            exists().where(learner.id == Booking.learner_id, match(learner)),
            attendee,
        )
    )


def list_bookings(viewer: User, params: ListParams, now: datetime) -> Page:
    """One page of the bookings ``viewer`` may see, filtered and ordered as ``params`` says.
    Upcoming: still to end, soonest first. Past: ended, most recent first."""
    query = policy.visible_bookings(viewer)
    if params.status:
        query = query.where(Booking.status == params.status)
    zone = viewer.zone
    if params.start:
        query = query.where(Booking.starts_at >= wall_to_utc(params.start, time(0), zone))
    if params.end:
        after = wall_to_utc(params.end + timedelta(days=1), time(0), zone)
        query = query.where(Booking.starts_at < after)
    if params.q:
        query = _search(query, params.q)
    if params.show == "past":
        query = query.where(Booking.ends_at <= now).order_by(
            Booking.starts_at.desc(), Booking.id.desc()
        )
    else:
        query = query.where(Booking.ends_at > now).order_by(Booking.starts_at, Booking.id)
    total = db.session.scalar(
        query.order_by(None).with_only_columns(func.count(Booking.id)).select_from(Booking)
    )
    rows = db.session.scalars(
        query.options(joinedload(Booking.owner), joinedload(Booking.learner))
        .limit(PAGE_SIZE)
        .offset((params.page - 1) * PAGE_SIZE)
    )
    return Page(params, list(rows.unique()), total or 0)
