"""Permission-table builders for the groups screens (/admin/groups).

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there). Every request
that changes a group acts on a fresh group (and fresh agents) made for it, so the groups the
rest of the sweep books from are never disturbed.
"""

from __future__ import annotations

from app.accounts.permissions import Perm

NEED = Perm.PEOPLE_MANAGE
Req = None  # set by register(): the shared request type of tests/accounts/conftest.py


def _fresh_group(world, members=()) -> int:
    from app.accounts import groups
    from app.accounts.models import User
    from app.database import begin_write
    from app.extensions import db

    with world.app.app_context():
        begin_write()
        group = groups.create_group(f"Perm group {next(world._days)}")
        group.members = [db.session.get(User, m.id) for m in members]
        db.session.commit()
        return group.id


def _index(world, holder, actor):
    return [Req("groups:index", "GET", "/admin/groups", permission=NEED)]


def _create(world, holder, actor):
    data = {"name": f"New group {next(world._days)}"}
    return [Req("groups:create", "POST", "/admin/groups", data, 303, NEED)]


def _create_planning(world, holder, actor):
    return [Req("groups:create-planning", "POST", "/admin/groups/planning", {}, 303, NEED)]


def _detail(world, holder, actor):
    url = f"/admin/groups/{_fresh_group(world)}"
    return [Req("groups:detail", "GET", url, permission=NEED)]


def _rename(world, holder, actor):
    url = f"/admin/groups/{_fresh_group(world)}/rename"
    data = {"name": f"Renamed group {next(world._days)}"}
    return [Req("groups:rename", "POST", url, data, 303, NEED)]


def _add_member(world, holder, actor):
    agent = world.factory.user("agent")
    url = f"/admin/groups/{_fresh_group(world)}/members"
    return [Req("groups:add-member", "POST", url, {"user_id": str(agent.id)}, 303, NEED)]


def _remove_member(world, holder, actor):
    agent = world.factory.user("agent")
    url = f"/admin/groups/{_fresh_group(world, [agent])}/members/{agent.id}/remove"
    return [Req("groups:remove-member", "POST", url, {}, 303, NEED)]


def _delete(world, holder, actor):
    url = f"/admin/groups/{_fresh_group(world)}/delete"
    return [Req("groups:delete", "POST", url, {}, 303, NEED)]


BUILDERS = {
    "groups.index": _index,
    "groups.create": _create,
    "groups.create_planning": _create_planning,
    "groups.detail": _detail,
    "groups.rename": _rename,
    "groups.add_member": _add_member,
    "groups.remove_member": _remove_member,
    "groups.delete": _delete,
}


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    global Req
    Req = tables["Req"]
    tables["GUARDED_PERMISSIONS"].update(dict.fromkeys(BUILDERS, NEED))
    tables["GUARDED_BUILDERS"].update(BUILDERS)
