"""Booking types (B1): creating and editing them, with every field checked in one place.

The screens (``app/admin/booking_types_routes.py``) and the JSON API call the same two
functions with the API's field names; values arrive as JSON would carry them (the screens
turn their form text into those values with ``fields_from_form``). Anything wrong raises
``BookingTypeError`` naming the field, before a single attribute is changed. Services flush,
never commit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from app.accounts.models import Group, User
from app.accounts.permissions import Perm
from app.bookings import policy
from app.bookings.models import AvailabilitySource, BookingType, LocationMode
from app.database import MAX_ID
from app.extensions import db


class BookingTypeError(ValueError):
    """A booking type field the organisation cannot use; the message is for people."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


LOCATION_MODES = tuple(m.value for m in LocationMode)
AUDIENCES = ("public", "learner", "staff")
SOURCES = tuple(s.value for s in AvailabilitySource)
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
NAME_MAX = 200
SLUG_MAX = 80
DESCRIPTION_MAX = 5000
LOCATION_DETAIL_MAX = 500


@dataclass(frozen=True)
class Bound:
    low: int
    high: int
    label: str
    unit: str
    optional: bool = True  # None means "use the organisation default"


# Whole numbers and the range each may take.
NUMBERS: dict[str, Bound] = {
    "duration_minutes": Bound(5, 1440, "Duration", "minutes", optional=False),
    "buffer_before_minutes": Bound(0, 480, "Buffer before", "minutes", optional=False),
    "buffer_after_minutes": Bound(0, 480, "Buffer after", "minutes", optional=False),
    "minimum_notice_minutes": Bound(0, 525_600, "Minimum notice", "minutes"),
    "earliest_day_public": Bound(0, 365, "Earliest day for the public", "days"),
    "earliest_day_staff": Bound(0, 365, "Earliest day for staff", "days"),
    "disabled_window_minutes": Bound(0, 10_080, "Disabled window after now", "minutes"),
    "horizon_days": Bound(1, 730, "Booking horizon", "days"),
    "max_per_day": Bound(1, 1000, "Maximum per day", "bookings"),
    # None: no off-the-job plan, so Teams attendance is not turned into hours (seed 001).
    "planned_otj_minutes": Bound(1, 1440, "Planned off-the-job time", "minutes"),
}
FLAGS = {
    "requires_approval": "Needs approval",
    "active": "Active",
    "complete_on_verified": "Complete when off-the-job hours are verified",
}
FIELDS = (
    "slug",
    "name",
    "description",
    "duration_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "location_modes",
    "default_location_mode",
    "location_detail",
    "face_to_face_detail",
    "remote_detail",
    "requires_approval",
    "bookable_by",
    "availability_source",
    "group",
    "minimum_notice_minutes",
    "earliest_day_public",
    "earliest_day_staff",
    "disabled_window_minutes",
    "horizon_days",
    "weekends_enabled",
    "max_per_day",
    "colour",
    "active",
    "planned_otj_minutes",
    "complete_on_verified",
)
# The values a new type starts with when a field is not given.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "duration_minutes": 60,
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 0,
    "location_modes": ["face_to_face"],
    "default_location_mode": None,
    "location_detail": "",
    "face_to_face_detail": "",
    "remote_detail": "",
    "requires_approval": False,
    "bookable_by": ["staff"],
    "availability_source": AvailabilitySource.DEFAULT.value,
    "group": None,
    "minimum_notice_minutes": None,
    "earliest_day_public": None,
    "earliest_day_staff": None,
    "disabled_window_minutes": None,
    "horizon_days": None,
    "weekends_enabled": None,
    "max_per_day": None,
    "colour": "#2457a7",
    "active": True,
    "planned_otj_minutes": None,
    "complete_on_verified": False,
}
LOCATION_LABELS = {
    "face_to_face": "Face to face",
    "remote": "Remote (meeting link)",
    "teams": "Microsoft Teams",
}
# The per-mode details (fields) and how screens and errors name them.
MODE_DETAIL_LABELS = {
    "face_to_face_detail": "Address for face-to-face meetings",
    "remote_detail": "Meeting link or dial-in for remote meetings",
}
AUDIENCE_LABELS = {"public": "The public", "learner": "Learners", "staff": "Staff"}
SOURCE_LABELS = {
    "default": "Default: the Planning Meeting Bookings group, else the learner's assigned agent",
    "assigned_agent": "The learner's assigned agent",
    "group": "A group",
}


# --- checking one value at a time ------------------------------------------------------


def _text(value: Any, field: str, label: str, limit: int, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BookingTypeError(f"{label} must be text.", field)
    value = value.strip()
    if required and not value:
        raise BookingTypeError(f"Enter a {label.lower()}.", field)
    if len(value) > limit:
        raise BookingTypeError(f"{label} can be at most {limit} characters.", field)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise BookingTypeError(f"{label} contains control characters.", field)
    return value


def _number(value: Any, field: str) -> int | None:
    bound = NUMBERS[field]
    if value is None:
        if bound.optional:
            return None
        raise BookingTypeError(f"{bound.label} is required.", field)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BookingTypeError(f"{bound.label} must be a whole number of {bound.unit}.", field)
    if not bound.low <= value <= bound.high:
        raise BookingTypeError(
            f"{bound.label} must be between {bound.low} and {bound.high} {bound.unit}.", field
        )
    return value


def _flag(value: Any, field: str, label: str, *, optional: bool = False) -> bool | None:
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        allowed = "true, false or null" if optional else "true or false"
        raise BookingTypeError(f"{label} must be {allowed}.", field)
    return value


def _working_default(default_mode: str | None, modes: list[str], chosen: bool) -> str:
    """The type's default location, which must be one that works now (issue [10]: Teams
    needs the organisation's Microsoft 365 connection): a chosen default that cannot work is
    refused, an implied one becomes the first allowed mode that works."""
    from app.bookings.service import working_modes  # the filters the Teams package adds

    working = working_modes(modes)
    if default_mode is not None and default_mode in working:
        return default_mode
    if default_mode is not None and chosen:
        raise BookingTypeError(
            "Microsoft Teams cannot be the default location until the organisation's "
            "Microsoft 365 connection works (Calendars). Choose another default.",
            "default_location_mode",
        )
    if not working:
        raise BookingTypeError(
            "Microsoft Teams needs the organisation's Microsoft 365 connection (Calendars); "
            "allow another location mode as well.",
            "location_modes",
        )
    return working[0]


def _choices(value: Any, field: str, label: str, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BookingTypeError(f"{label} must be a list of: {', '.join(allowed)}.", field)
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise BookingTypeError(
            f"{label}: {unknown[0]!r} is not one of {', '.join(allowed)}.", field
        )
    if not value:
        raise BookingTypeError(f"{label}: choose at least one.", field)
    return [v for v in allowed if v in value]  # canonical order, no repeats


def _slug(value: Any) -> str:
    if not isinstance(value, str):
        raise BookingTypeError("The slug must be text.", "slug")
    value = value.strip()
    if not value:
        raise BookingTypeError("Enter a slug, or leave it out to make one from the name.", "slug")
    if len(value) > SLUG_MAX:
        raise BookingTypeError(f"The slug can be at most {SLUG_MAX} characters.", "slug")
    if not SLUG_RE.match(value):
        raise BookingTypeError(
            "The slug may hold only lowercase letters, digits and single hyphens between "
            "them (e.g. planning-meeting).",
            "slug",
        )
    return value


def slugify(name: str) -> str:
    """A URL-safe slug from a name: "Planning meeting (EPA)" → "planning-meeting-epa"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "booking-type"


def _slug_taken(slug: str, kind: BookingType | None) -> bool:
    query = select(BookingType.id).where(func.lower(BookingType.slug) == slug)
    if kind is not None and kind.id is not None:
        query = query.where(BookingType.id != kind.id)
    return db.session.scalar(query) is not None


def _free_slug(base: str, kind: BookingType | None) -> str:
    slug, n = base, 1
    while _slug_taken(slug, kind):
        n += 1
        suffix = f"-{n}"
        slug = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return slug


def _group(value: Any) -> Group | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BookingTypeError("The group must be a group id (a whole number) or null.", "group")
    group = db.session.get(Group, value) if 0 < value <= MAX_ID else None
    if group is None:
        raise BookingTypeError(f"There is no group with id {value}.", "group")
    return group


# --- the whole set ---------------------------------------------------------------------


def _current(kind: BookingType) -> dict[str, Any]:
    values = {name: getattr(kind, name) for name in FIELDS if name not in ("group",)}
    values["group"] = kind.availability_group_id
    values["location_modes"] = list(kind.location_modes or [])
    values["bookable_by"] = list(kind.bookable_by or [])
    return values


def check_fields(
    fields: Mapping[str, Any],
    kind: BookingType | None = None,
    *,
    identity: bool = True,
) -> dict[str, Any]:
    """The complete, checked values of a type: ``kind``'s (or the defaults) with ``fields``
    laid over them. ``identity=False`` skips name and slug (the live preview needs neither).
    Returns column-ready values (``availability_group`` is the Group row or None)."""
    if not isinstance(fields, Mapping):
        raise BookingTypeError("Send the booking type as an object of fields.")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise BookingTypeError(f"Unknown field {unknown[0]!r}.", unknown[0])
    given = dict(fields)
    merged = _current(kind) if kind is not None else {"slug": None, "name": None, **DEFAULTS}
    merged.update(given)
    out: dict[str, Any] = {}

    if identity:
        out["name"] = _text(merged["name"], "name", "Name", NAME_MAX, required=True)
        slug = merged.get("slug")
        if kind is None and slug in (None, ""):
            out["slug"] = _free_slug(slugify(out["name"]), kind)
        else:
            out["slug"] = _slug(slug)
            if _slug_taken(out["slug"], kind):
                raise BookingTypeError(
                    f"Another booking type already uses the slug {out['slug']!r}.", "slug"
                )
    out["description"] = _text(merged["description"], "description", "Description", DESCRIPTION_MAX)
    for name in NUMBERS:
        out[name] = _number(merged[name], name)

    modes = _choices(merged["location_modes"], "location_modes", "Location modes", LOCATION_MODES)
    out["location_modes"] = modes
    default_mode = merged["default_location_mode"]
    if default_mode is not None and not isinstance(default_mode, str):
        raise BookingTypeError(
            "The default location must be text or null.", "default_location_mode"
        )
    if default_mode in (None, ""):
        default_mode = None
    elif default_mode not in modes:
        if "default_location_mode" in given:
            raise BookingTypeError(
                f"The default location must be one of the allowed modes ({', '.join(modes)}).",
                "default_location_mode",
            )
        default_mode = None  # the allowed modes changed under an old default: first allowed
    out["default_location_mode"] = _working_default(
        default_mode, modes, "default_location_mode" in given
    )
    out["location_detail"] = _text(
        merged["location_detail"], "location_detail", "Location detail", LOCATION_DETAIL_MAX
    )
    if "\n" in out["location_detail"] or "\r" in out["location_detail"]:
        raise BookingTypeError("Location detail must be one line.", "location_detail")
    for name, label in MODE_DETAIL_LABELS.items():
        out[name] = _text(merged[name], name, label, LOCATION_DETAIL_MAX)
        if "\n" in out[name] or "\r" in out[name]:
            raise BookingTypeError(f"{label} must be one line.", name)

    for name, label in FLAGS.items():
        out[name] = _flag(merged[name], name, label)
    out["weekends_enabled"] = _flag(
        merged["weekends_enabled"], "weekends_enabled", "Weekends", optional=True
    )
    out["bookable_by"] = _choices(merged["bookable_by"], "bookable_by", "Who may book", AUDIENCES)

    source = merged["availability_source"]
    if not isinstance(source, str) or source not in SOURCES:
        raise BookingTypeError(
            f"Availability source must be one of {', '.join(SOURCES)}.", "availability_source"
        )
    out["availability_source"] = source
    group = _group(merged["group"])
    if source == AvailabilitySource.GROUP:
        if group is None:
            raise BookingTypeError(
                "Choose the group whose members offer this type's times.", "group"
            )
    elif group is not None:
        if "group" in given and given["group"] is not None:
            raise BookingTypeError(
                'A group is used only when the availability source is "group".', "group"
            )
        group = None  # the source moved away from a group: forget it
    out["availability_group"] = group

    colour = merged["colour"]
    if not isinstance(colour, str) or not COLOUR_RE.match(colour.strip()):
        raise BookingTypeError("The colour must look like #2457a7.", "colour")
    out["colour"] = colour.strip().lower()
    return out


def _require_manager(actor: User | None) -> None:
    if actor is not None and not actor.can(Perm.BOOKING_TYPES_MANAGE):
        raise policy.PermissionDenied("You do not have permission to manage booking types.")


def create_booking_type(actor: User | None, fields: Mapping[str, Any]) -> BookingType:
    """A new booking type from ``fields`` (API names; ``name`` required, the rest defaults).
    ``actor=None`` is the system. Raises ``BookingTypeError`` or ``PermissionDenied``."""
    _require_manager(actor)
    values = check_fields(fields)
    kind = BookingType(**values)
    db.session.add(kind)
    db.session.flush()
    return kind


def update_booking_type(
    actor: User | None, kind: BookingType, fields: Mapping[str, Any]
) -> BookingType:
    """Change the given fields of ``kind``; the others stay. Checked as a whole before any
    attribute changes, so a refused update leaves the row as it was."""
    _require_manager(actor)
    values = check_fields(fields, kind)
    for name, value in values.items():
        setattr(kind, name, value)
    db.session.flush()
    return kind


def preview_type(fields: Mapping[str, Any], kind: BookingType | None = None) -> BookingType:
    """A transient, never-saved type with ``fields`` laid over ``kind`` (the live preview).
    It is not added to the session, so nothing about it can be flushed."""
    values = check_fields(fields, kind, identity=False)
    transient = BookingType(
        id=kind.id if kind is not None else None,
        slug=kind.slug if kind is not None else "preview",
        name=kind.name if kind is not None else "Preview",
        slot_interval_minutes=kind.slot_interval_minutes if kind is not None else None,
        **values,
    )
    if transient in db.session:  # never, but a preview must not be written under any path
        db.session.expunge(transient)
    return transient


def default_location(kind: BookingType) -> tuple[str, str]:
    """The location mode and detail a new booking of ``kind`` starts with."""
    modes = list(kind.location_modes or [LocationMode.FACE_TO_FACE.value])
    mode = kind.default_location_mode if kind.default_location_mode in modes else modes[0]
    return mode, detail_for(kind, mode)


def detail_for(kind: BookingType, mode: str) -> str:
    """The address or meeting details a booking of ``kind`` meeting as ``mode`` carries: the
    mode's own detail (address, meeting link), else the type's detail when ``mode`` is its
    default; Teams makes its own link. A booking meeting another way than the default must
    not be handed the default mode's address as its meeting link."""
    if mode == LocationMode.TEAMS:
        return ""
    own = {
        LocationMode.FACE_TO_FACE: kind.face_to_face_detail,
        LocationMode.REMOTE: kind.remote_detail,
    }.get(mode)
    if (own or "").strip():
        return own.strip()
    modes = list(kind.location_modes or [LocationMode.FACE_TO_FACE.value])
    default = kind.default_location_mode if kind.default_location_mode in modes else modes[0]
    return (kind.location_detail or "") if mode == default else ""


def group_in_use(group_id: int) -> list[str]:
    """Names of the booking types that draw availability from this group (it cannot go)."""
    return list(
        db.session.scalars(
            select(BookingType.name)
            .where(BookingType.availability_group_id == group_id)
            .order_by(BookingType.name)
        )
    )


# --- form text → API values -------------------------------------------------------------


def _form_int(form, name: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if raw == "":
        return None
    try:
        return int(raw, 10)
    except ValueError:
        raise BookingTypeError(
            f"{NUMBERS[name].label} must be a whole number of {NUMBERS[name].unit}.", name
        ) from None


def fields_from_form(form) -> dict[str, Any]:
    """The screen's posted form (a MultiDict of text) as API field values. Blank numbers of
    the booking window mean "organisation default"; a blank slug keeps (or makes) one."""
    fields: dict[str, Any] = {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "location_modes": form.getlist("location_modes"),
        "default_location_mode": form.get("default_location_mode") or None,
        "location_detail": form.get("location_detail", ""),
        "face_to_face_detail": form.get("face_to_face_detail", ""),
        "remote_detail": form.get("remote_detail", ""),
        "requires_approval": form.get("requires_approval") in ("y", "on", "1", "true"),
        "complete_on_verified": form.get("complete_on_verified") in ("y", "on", "1", "true"),
        "bookable_by": form.getlist("bookable_by"),
        "availability_source": form.get("availability_source", ""),
        "colour": form.get("colour", ""),
    }
    slug = (form.get("slug") or "").strip()
    if slug:
        fields["slug"] = slug
    for name in NUMBERS:
        fields[name] = _form_int(form, name)
    weekends = form.get("weekends_enabled", "")
    fields["weekends_enabled"] = {"on": True, "off": False}.get(weekends)
    if weekends not in ("", "on", "off"):
        raise BookingTypeError("Weekends must be the default, on or off.", "weekends_enabled")
    if fields["availability_source"] == AvailabilitySource.GROUP:
        raw = (form.get("group") or "").strip()
        if not raw.isdigit():
            raise BookingTypeError(
                "Choose the group whose members offer this type's times.", "group"
            )
        fields["group"] = int(raw)
    else:
        fields["group"] = None
    return fields
