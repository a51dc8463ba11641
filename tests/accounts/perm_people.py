"""Permission-table builders for the people screens (/admin/people), learner profiles and
others' hours.

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there). Every
request that changes someone acts on a fresh agent made for it, so the sweep's other routes
(bookings held by ``world.other``) are never disturbed; an administrator may edit an agent.
"""

from __future__ import annotations

from app.accounts.permissions import Perm

NEED = Perm.PEOPLE_MANAGE


def _fresh_agent(world, active: bool = True):
    person = world.factory.user("agent")
    if not active:
        from app.accounts.models import User
        from app.database import begin_write
        from app.extensions import db

        with world.app.app_context():
            begin_write()
            db.session.get(User, person.id).active = False
            db.session.commit()
    return person


def _own_rows(world, person) -> tuple[str, int]:
    """An override and a time-off row of ``person``, so deleting them can succeed."""
    from app.accounts import hours
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    day = world.future().date()
    with world.app.app_context():
        begin_write()
        user = db.session.get(User, person.id)
        hours.set_override(user, day, [])
        off = hours.add_time_off(user, world.future(), world.future().replace(hour=12))
        db.session.commit()
        return day.isoformat(), off.id


def _index(world, holder, actor):
    return [
        Req("people:index", "GET", "/admin/people", permission=NEED),
        Req("people:index-filtered", "GET", "/admin/people?q=other&role=agent", permission=NEED),
    ]


def _search(world, holder, actor):
    url = "/admin/people/search?q=ot&role=staff&name=mentor_id"
    return [Req("people:search", "GET", url, permission=NEED)]


def _new(world, holder, actor):
    n = next(world._days)
    data = {
        "name": f"New Person {n}",
        "email": f"new-person-{n}@example.test",
        "role": "agent",
        "timezone": "Europe/London",
        "active": "y",
    }
    return [
        Req("people:new-get", "GET", "/admin/people/new", permission=NEED),
        Req("people:new-post", "POST", "/admin/people/new", data, 303, NEED),
    ]


def _import(world, holder, actor):
    # The preview step (a POST without ``confirm``) writes nothing, so the CSRF sweep, which
    # wants every accepted POST to change something, gets the confirming one.
    n = next(world._days)
    text = f"email,name,role,timezone,groups\nimported-{n}@example.test,Imported {n},agent,,\n"
    return [
        Req("people:import-get", "GET", "/admin/people/import", permission=NEED),
        Req(
            "people:import-confirm",
            "POST",
            "/admin/people/import",
            {"csv_text": text, "confirm": "1"},
            303,
            NEED,
        ),
    ]


def _edit(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}"
    data = {
        "name": "Renamed Agent",
        "email": person.email,
        "role": "agent",
        "timezone": "America/New_York",
    }
    return [
        Req("people:edit-get", "GET", url, permission=NEED),
        Req("people:edit-post", "POST", url, data, 303, NEED),
    ]


def _deactivate(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}/deactivate"
    return [
        Req("people:deactivate-get", "GET", url, permission=NEED),
        Req("people:deactivate-post", "POST", url, {}, 303, NEED),
    ]


def _reactivate(world, holder, actor):
    person = _fresh_agent(world, active=False)
    url = f"/admin/people/{person.id}/reactivate"
    return [Req("people:reactivate", "POST", url, {}, 303, NEED)]


def _invite(world, holder, actor):
    # Made by the factory, so they have a password: a fresh person without one is needed.
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    person = _fresh_agent(world)
    with world.app.app_context():
        begin_write()
        db.session.get(User, person.id).password_hash = None
        db.session.commit()
    url = f"/admin/people/{person.id}/invite"
    return [Req("people:invite", "POST", url, {}, 303, NEED)]


def _hours_page(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}/availability"
    return [Req("people-hours:get", "GET", url, permission=NEED)]


def _hours_week(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}/availability/week"
    data = {"d0_start1": "09:00", "d0_end1": "17:00"}
    return [Req("people-hours:week", "POST", url, data, 303, NEED)]


def _hours_override(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}/availability/overrides"
    data = {"day": world.future().date().isoformat(), "start": "10:00", "end": "12:00"}
    return [Req("people-hours:override", "POST", url, data, 303, NEED)]


def _hours_override_delete(world, holder, actor):
    person = _fresh_agent(world)
    day, _ = _own_rows(world, person)
    url = f"/admin/people/{person.id}/availability/overrides/{day}/delete"
    return [Req("people-hours:override-delete", "POST", url, {}, 303, NEED)]


def _hours_time_off(world, holder, actor):
    person = _fresh_agent(world)
    url = f"/admin/people/{person.id}/availability/time-off"
    data = {"start_day": world.future().date().isoformat(), "reason": "Leave"}
    return [Req("people-hours:time-off", "POST", url, data, 303, NEED)]


def _hours_time_off_delete(world, holder, actor):
    person = _fresh_agent(world)
    _, off_id = _own_rows(world, person)
    url = f"/admin/people/{person.id}/availability/time-off/{off_id}/delete"
    return [Req("people-hours:time-off-delete", "POST", url, {}, 303, NEED)]


BUILDERS = {
    "people.index": _index,
    "people.search": _search,
    "people.new": _new,
    "people.import_people": _import,
    "people.edit": _edit,
    "people.deactivate": _deactivate,
    "people.reactivate": _reactivate,
    "people.invite": _invite,
    "people.hours.page": _hours_page,
    "people.hours.save_week": _hours_week,
    "people.hours.add_override": _hours_override,
    "people.hours.delete_override": _hours_override_delete,
    "people.hours.add_time_off": _hours_time_off,
    "people.hours.delete_time_off": _hours_time_off_delete,
}

Req = None  # set by register(): the shared request type of tests/accounts/conftest.py


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    global Req
    Req = tables["Req"]
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(BUILDERS, NEED))
    tables["GUARDED_BUILDERS"].update(BUILDERS)
