"""API v1 for running the organisation: people, their working hours, groups, booking types.

Thin like ``app.api.routes``: check the permission (before reading the body, so a caller
without the right learns nothing from validation), parse with the request model, call the
service, commit once, render with the response model. Writing requests run in the one write
transaction ``authenticate`` opened; the services flush and raise, the error handlers roll
back (``app.api.errors``), so a refused request writes nothing.
"""

from __future__ import annotations

from datetime import time

from flask import jsonify, url_for
from sqlalchemy import func, select

from app.accounts import groups as group_service
from app.accounts import hours
from app.accounts import people as people_service
from app.accounts.models import Group, Role, User
from app.accounts.permissions import Perm
from app.api import params, schemas
from app.api.auth import api_user
from app.api.errors import ApiError
from app.api.routes import bp
from app.api.serializers import (
    booking_type_json,
    group_json,
    people_json,
    person_json,
    working_hours_json,
)
from app.bookings import policy
from app.bookings import types as type_service
from app.bookings.models import BookingType
from app.database import begin_write
from app.extensions import db

DEFAULT_PER_PAGE = 50
# Request field -> keyword of people.create_person / update_person.
PERSON_KEYWORDS = {
    "groups": "group_ids",
    "assigned_agent": "assigned_agent_id",
    "mentor": "mentor_id",
    "assessor": "assessor_id",
    "employer": "employer_id",
}


def _created(body: dict, location: str | None = None):
    response = jsonify(body)
    response.status_code = 201
    if location:
        response.headers["Location"] = location
    return response


def _require(permission: Perm) -> User:
    actor = api_user()
    policy.require(actor, permission)
    return actor


# --- people -----------------------------------------------------------------------------


def _group_by_slug_or_id(value: str) -> Group:
    group = db.session.scalars(select(Group).where(Group.slug == value)).one_or_none()
    if group is None and value.isascii() and value.isdigit() and 0 < int(value) <= params.MAX_ID:
        group = db.session.get(Group, int(value))
    if group is None:
        raise ApiError(404, "not_found", f"No group {value!r}.")
    return group


def _may_see_everyone(actor: User) -> bool:
    return actor.can(Perm.PEOPLE_MANAGE)


def _person(person_id: int, actor: User) -> User:
    """The person by id if the caller may see them; 404 alike for missing and hidden."""
    person = people_service.get_person(person_id)
    hidden = person is not None and not (
        _may_see_everyone(actor) or (person.active and person.is_staff)
    )
    if person is None or hidden:
        raise ApiError(404, "not_found", f"No person {person_id}.")
    return person


@bp.get("/people")
def people():
    actor = api_user()
    if not (_may_see_everyone(actor) or actor.can(Perm.CALENDAR_VIEW_TEAM)):
        policy.require(actor, Perm.CALENDAR_VIEW_TEAM)  # the usual 403 and its message
    query_args = schemas.PeopleQuery.parse()
    if query_args.role is not None:
        known = db.session.scalar(select(Role.id).where(Role.slug == query_args.role))
        if known is None:
            raise params.bad("validation_error", f"Unknown role {query_args.role!r}.")
    group = _group_by_slug_or_id(query_args.group) if query_args.group is not None else None
    active = {"true": True, "false": False, "all": None}[query_args.active]
    if not _may_see_everyone(actor):
        active = True  # colleagues see active staff, as they always have
    query = people_service.people_query(
        search=query_args.q,
        role=query_args.role,
        group_id=group.id if group else None,
        active=active,
    )
    if query_args.role is None or not _may_see_everyone(actor):
        query = query.where(Role.is_staff.is_(True))
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    paged = query_args.page is not None or query_args.per_page is not None
    page = query_args.page or 1
    per_page = (query_args.per_page or DEFAULT_PER_PAGE) if paged else None
    if per_page is not None:
        query = query.limit(per_page).offset((page - 1) * per_page)
    users = db.session.scalars(query).all()
    return jsonify(
        schemas.PersonList.dump(
            people=people_json(users), total=total, page=page, per_page=per_page
        )
    )


@bp.get("/people/<int:person_id>")
def get_person(person_id: int):
    actor = api_user()
    if not (_may_see_everyone(actor) or actor.can(Perm.CALENDAR_VIEW_TEAM)):
        policy.require(actor, Perm.CALENDAR_VIEW_TEAM)
    return jsonify(person_json(_person(person_id, actor)))


def _person_changes(given: dict) -> dict:
    return {PERSON_KEYWORDS.get(name, name): value for name, value in given.items()}


@bp.post("/people")
def create_person():
    begin_write()
    actor = _require(Perm.PEOPLE_MANAGE)
    body = schemas.PersonCreate.parse()
    fields = _person_changes(body.model_dump())
    person = people_service.create_person(actor, **fields)
    db.session.commit()
    return _created(person_json(person), url_for("api.get_person", person_id=person.id))


@bp.patch("/people/<int:person_id>")
def update_person(person_id: int):
    begin_write()
    actor = _require(Perm.PEOPLE_MANAGE)
    person = _person(person_id, actor)
    changes = schemas.PersonPatch.parse().given()
    if not changes:
        raise params.bad("validation_error", "Send at least one field to change.")
    people_service.update_person(actor, person, **_person_changes(changes))
    db.session.commit()
    return jsonify(person_json(person))


@bp.put("/people/<int:person_id>/working-hours")
def set_working_hours(person_id: int):
    """One's own hours with hours.edit_own; anyone's with people.manage, as on the screens
    (never someone whose role has rights the caller lacks)."""
    begin_write()
    actor = api_user()
    own = actor.id == person_id
    if own and actor.can(Perm.HOURS_EDIT_OWN):
        person = actor
    else:
        policy.require(actor, Perm.PEOPLE_MANAGE)
        person = _person(person_id, actor)
        if not people_service.may_edit(actor, person):
            raise ApiError(
                403,
                "forbidden",
                f"You cannot change {person.name}: their role has permissions you do not hold.",
            )
    body = schemas.WorkingHoursPut.parse()
    week = {
        schemas.WEEKDAYS.index(day): [
            (time.fromisoformat(start), time.fromisoformat(end)) for start, end in ranges
        ]
        for day, ranges in body.week.items()
    }
    if body.timezone is not None and body.timezone != person.timezone:
        if own and not actor.can(Perm.PEOPLE_MANAGE):
            person.timezone = people_service.check_timezone(body.timezone)  # as on /me/profile
        else:
            people_service.update_person(actor, person, timezone=body.timezone)
    hours.set_weekly_hours(person, week)
    db.session.commit()
    return jsonify(working_hours_json(person, hours.weekly_hours(person)))


# --- groups -----------------------------------------------------------------------------


@bp.get("/groups")
def list_groups():
    actor = api_user()
    if not actor.can(Perm.BOOKING_TYPES_MANAGE):
        policy.require(actor, Perm.PEOPLE_MANAGE)
    groups = db.session.scalars(select(Group).order_by(Group.name, Group.id)).all()
    return jsonify(schemas.GroupList.dump(groups=[group_json(g) for g in groups]))


@bp.post("/groups")
def create_group():
    begin_write()
    _require(Perm.PEOPLE_MANAGE)
    body = schemas.GroupCreate.parse()
    group = group_service.create_group(body.name)
    db.session.commit()
    return _created(group_json(group))


@bp.put("/groups/<int:group_id>/members")
def set_group_members(group_id: int):
    begin_write()
    _require(Perm.PEOPLE_MANAGE)
    group = db.session.get(Group, group_id) if group_id <= params.MAX_ID else None
    if group is None:
        raise ApiError(404, "not_found", f"No group {group_id}.")
    body = schemas.GroupMembers.parse()
    group_service.set_members(group, body.members)
    db.session.commit()
    return jsonify(group_json(group))


# --- booking types ----------------------------------------------------------------------


@bp.post("/booking-types")
def create_booking_type():
    begin_write()
    actor = _require(Perm.BOOKING_TYPES_MANAGE)
    body = schemas.BookingTypeCreate.parse()
    kind = type_service.create_booking_type(actor, body.given())
    db.session.commit()
    return _created(booking_type_json(kind))


@bp.patch("/booking-types/<slug>")
def update_booking_type(slug: str):
    begin_write()
    actor = _require(Perm.BOOKING_TYPES_MANAGE)
    kind = db.session.scalars(select(BookingType).where(BookingType.slug == slug)).one_or_none()
    if kind is None:
        raise ApiError(404, "not_found", f"No booking type {slug!r}.")
    changes = schemas.BookingTypePatch.parse().given()
    if not changes:
        raise params.bad("validation_error", "Send at least one field to change.")
    type_service.update_booking_type(actor, kind, changes)
    db.session.commit()
    return jsonify(booking_type_json(kind))
