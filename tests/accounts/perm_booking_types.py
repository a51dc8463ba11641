"""Permission-table builders for the booking type screens (/admin/booking-types).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there). Requests that
change a type act on a fresh one made for them, so the world's own types stay as they are.
"""

from __future__ import annotations

from app.accounts.permissions import Perm

NEED = Perm.BOOKING_TYPES_MANAGE
Req = None  # set by register(): the shared request type of tests/accounts/conftest.py


def form_data(name: str, **changes) -> dict:
    """The booking type form as a browser posts it (every field)."""
    data = {
        "name": name,
        "slug": "",
        "description": "Checks a learner's progress.",
        "duration_minutes": "45",
        "buffer_before_minutes": "5",
        "buffer_after_minutes": "10",
        "location_modes": ["face_to_face", "remote"],
        "default_location_mode": "face_to_face",
        "location_detail": "1 High Street, Leeds",
        "bookable_by": ["staff"],
        "availability_source": "default",
        "group": "",
        "minimum_notice_minutes": "",
        "earliest_day_public": "",
        "earliest_day_staff": "",
        "disabled_window_minutes": "",
        "horizon_days": "",
        "weekends_enabled": "",
        "max_per_day": "",
        "colour": "#2457a7",
    }
    data.update(changes)
    return data


def _fresh_type(world, active: bool = True):
    n = next(world._days)
    return world.factory.booking_type(slug=f"perm-type-{n}", name=f"Perm type {n}", active=active)


def _index(world, holder, actor):
    return [Req("booking-types:index", "GET", "/admin/booking-types", permission=NEED)]


def _new(world, holder, actor):
    data = form_data(f"New type {next(world._days)}")
    return [
        Req("booking-types:new-get", "GET", "/admin/booking-types/new", permission=NEED),
        Req("booking-types:new-post", "POST", "/admin/booking-types/new", data, 303, NEED),
    ]


def _edit(world, holder, actor):
    kind = _fresh_type(world)
    url = f"/admin/booking-types/{kind.id}"
    data = form_data(f"Renamed {kind.name}", slug=kind.slug)
    return [
        Req("booking-types:edit-get", "GET", url, permission=NEED),
        Req("booking-types:edit-post", "POST", url, data, 303, NEED),
    ]


def _deactivate(world, holder, actor):
    url = f"/admin/booking-types/{_fresh_type(world).id}/deactivate"
    return [Req("booking-types:deactivate", "POST", url, {}, 303, NEED)]


def _reactivate(world, holder, actor):
    url = f"/admin/booking-types/{_fresh_type(world, active=False).id}/reactivate"
    return [Req("booking-types:reactivate", "POST", url, {}, 303, NEED)]


PREVIEW_QUERY = (
    "duration_minutes=30&buffer_before_minutes=0&buffer_after_minutes=0"
    "&location_modes=face_to_face&bookable_by=staff&availability_source=default&colour=%232457a7"
)


def _preview_new(world, holder, actor):
    url = f"/admin/booking-types/preview?{PREVIEW_QUERY}"
    return [Req("booking-types:preview-new", "GET", url, permission=NEED)]


def _preview(world, holder, actor):
    url = f"/admin/booking-types/{_fresh_type(world).id}/preview?{PREVIEW_QUERY}"
    return [Req("booking-types:preview", "GET", url, permission=NEED)]


BUILDERS = {
    "booking_types.index": _index,
    "booking_types.new": _new,
    "booking_types.edit": _edit,
    "booking_types.deactivate": _deactivate,
    "booking_types.reactivate": _reactivate,
    "booking_types.preview_new": _preview_new,
    "booking_types.preview": _preview,
}


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    global Req
    Req = tables["Req"]
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(BUILDERS, NEED))
    tables["GUARDED_BUILDERS"].update(BUILDERS)
