"""Query strings and JSON bodies turned into plain values and rows, or ``ApiError``.

Datetimes: ISO 8601 (``datetime.fromisoformat``: ``2025-03-03T09:00:00+00:00``, ``...Z``,
``2025-03-03 09:00+05:30``). An offset is required. A naive value (no offset) is accepted only
when the request names a zone with ``tz``: it is then read as wall-clock time in that zone (a
time skipped by a clock change is refused; a time that occurs twice means its first
occurrence). Without ``tz`` a naive value is ``malformed_datetime``, because guessing a zone is
how bookings land an hour off across DST. Years outside 1900–2999 are refused too.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import request
from sqlalchemy import bindparam, select

from app.accounts.models import Group, Role, User
from app.api.errors import ApiError
from app.bookings import availability
from app.bookings.models import BookingType
from app.database import MAX_ID
from app.extensions import db
from app.guard import MAX_YEAR, MIN_YEAR
from app.scheduling.localtime import NonexistentTimeError, local_to_utc

MAX_RANGE = timedelta(days=62)
MAX_PEOPLE = 50
UTC_ZONE = ZoneInfo("UTC")


def bad(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, code, message)


# --- scalars ------------------------------------------------------------------------


def zone(name: str | None, *, default: ZoneInfo | None = None) -> ZoneInfo | None:
    """The IANA zone called ``name``; ``default`` when absent; ``unknown_zone`` when bad."""
    if name is None:
        return default
    if not isinstance(name, str) or not name or len(name) > 64:
        raise bad("unknown_zone", "tz must be an IANA time zone name such as Europe/London.")
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise bad("unknown_zone", f"Unknown time zone {name!r}.") from None


def instant(value: object, field: str, tz: ZoneInfo | None) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (see the module docstring)."""
    example = "2025-03-03T09:00:00+00:00"
    if not isinstance(value, str) or not value.strip():
        raise bad("malformed_datetime", f"{field} must be an ISO 8601 date-time like {example}.")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise bad(
            "malformed_datetime", f"{field} is not an ISO 8601 date-time (like {example})."
        ) from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise bad("malformed_datetime", f"{field} is out of range.")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if tz is None:
            raise bad(
                "malformed_datetime",
                f"{field} needs a UTC offset (like {example} or ...Z), "
                "or pass tz to read it as local time in that zone.",
            )
        try:
            return local_to_utc(parsed.date(), parsed.time(), tz)
        except NonexistentTimeError as exc:
            raise bad("malformed_datetime", f"{field}: {exc}") from None
    return parsed.astimezone(UTC)


def time_range(args: Mapping[str, str], tz: ZoneInfo | None) -> tuple[datetime, datetime]:
    """``start`` and ``end`` from the query: both required, end after start, at most 62 days."""
    start = instant(required(args, "start"), "start", tz)
    end = instant(required(args, "end"), "end", tz)
    if end <= start:
        raise bad("end_before_start", "end must be after start.")
    if end - start > MAX_RANGE:
        raise bad("range_too_long", f"A range may span at most {MAX_RANGE.days} days.")
    return start, end


def required(args: Mapping[str, object], name: str) -> object:
    value = args.get(name)
    if value is None or value == "":
        raise bad("missing_parameter", f"{name} is required.")
    return value


def identifier(value: object, field: str) -> int:
    """A positive integer id, from JSON (a number) or a query string (digits)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise bad("validation_error", f"{field} must be a positive whole number (an id).")
    return value


def id_list(items: object, field: str) -> list[int]:
    """A non-empty list of ids (JSON numbers, or query-string pieces); repeats dropped."""
    if not isinstance(items, list) or not items:
        raise bad("validation_error", f"{field} must be a non-empty list of ids.")
    if len(items) > MAX_PEOPLE:
        raise bad("validation_error", f"{field} may name at most {MAX_PEOPLE} people.")
    return list(dict.fromkeys(identifier(item, field) for item in items))


def text(data: Mapping[str, object], name: str, max_length: int) -> str | None:
    if name not in data or data[name] is None:
        return None
    value = data[name]
    if not isinstance(value, str):
        raise bad("validation_error", f"{name} must be a string.")
    if len(value) > max_length:
        raise bad("validation_error", f"{name} may be at most {max_length} characters.")
    return value


# --- bodies -------------------------------------------------------------------------


def json_object(allowed: Collection[str]) -> dict:
    """The request body as a JSON object with no fields beyond ``allowed``."""
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise bad("invalid_json", "The request body must be a JSON object.")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise bad(
            "validation_error",
            f"Unknown field {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}.",
        )
    return data


# --- rows ---------------------------------------------------------------------------


# Built once: a statement object keeps its cache key, so a request only binds the slug.
_ACTIVE_TYPE = select(BookingType).where(
    BookingType.slug == bindparam("slug"), BookingType.active.is_(True)
)


def booking_type(slug: object) -> BookingType:
    """An active booking type by slug; inactive ones are as unknown as missing ones."""
    if not isinstance(slug, str):
        raise bad("unknown_booking_type", "booking_type must be a booking type's slug.")
    kind = db.session.scalars(_ACTIVE_TYPE, {"slug": slug}).one_or_none()
    if kind is None:
        raise bad("unknown_booking_type", f"No bookable booking type {slug!r}.")
    return kind


def offer_rules(slug: object) -> availability.OfferRules:
    """:func:`booking_type` as the rules finding slots reads (one row, no ORM object)."""
    if not isinstance(slug, str):
        raise bad("unknown_booking_type", "booking_type must be a booking type's slug.")
    rules = availability.offer_rules(slug)
    if rules is None:
        raise bad("unknown_booking_type", f"No bookable booking type {slug!r}.")
    return rules


def staff_people(ids: list[int], field: str = "people") -> list[User]:
    """Active staff users, in the order asked; any other id is a ``validation_error``."""
    rows = db.session.scalars(
        select(User).join(Role).where(User.id.in_(ids), Role.is_staff.is_(True))
    ).all()
    found = {u.id: u for u in rows if u.active}
    missing = [i for i in ids if i not in found]
    if missing:
        raise bad("validation_error", f"{field}: {missing[0]} is not an active staff member.")
    return [found[i] for i in ids]


def learner(value: object) -> User | None:
    """The learner named by id, or None when not given; a non-learner is refused."""
    if value is None or value == "":
        return None
    learner_id = identifier(value, "learner")
    user = db.session.get(User, learner_id)
    if user is None or not user.active or user.role.slug != "learner":
        raise bad("validation_error", f"learner: {learner_id} is not an active learner.")
    return user


def group(slug: str) -> Group:
    row = db.session.scalars(select(Group).where(Group.slug == slug)).one_or_none()
    if row is None:
        raise bad("not_found", f"No group {slug!r}.", 404)
    return row
