"""Group screens (B6): list with member counts, create, rename, members, delete. Permission
``people.manage``.

Thin: load (unknown ids are a 404), call ``accounts.groups``, commit, redirect; a refused change
is shown again with its message, HTTP 400, nothing written. Member changes posted with HTMX
answer with the members panel; without JavaScript the same forms POST and redirect.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from sqlalchemy import func, select

from app import htmx
from app.accounts import groups as service
from app.accounts.access import permission_required
from app.accounts.models import Group, User, group_members
from app.accounts.permissions import Perm
from app.bookings.types import group_in_use
from app.database import MAX_ID
from app.extensions import db

bp = Blueprint("groups", __name__, url_prefix="/admin/groups")


def _load(group_id: int) -> Group:
    group = db.session.get(Group, group_id) if 0 < group_id <= MAX_ID else None
    return group or abort(404)


def _list(error: str | None = None, status: int = 200, name: str = ""):
    counts = dict(
        db.session.execute(
            select(group_members.c.group_id, func.count(group_members.c.user_id)).group_by(
                group_members.c.group_id
            )
        ).all()
    )
    rows = db.session.scalars(select(Group).order_by(Group.system.desc(), Group.name)).all()
    used = {g.id: group_in_use(g.id) for g in rows}
    return htmx.render(
        "admin/groups.html",
        "admin/_groups_table.html",
        status,
        groups=rows,
        counts=counts,
        used=used,
        planning=service.planning_group(),
        error=error,
        name=name,
        is_system=service.is_system,
    )


@bp.get("")
@permission_required(Perm.PEOPLE_MANAGE)
def index():
    return _list()


@bp.post("")
@permission_required(Perm.PEOPLE_MANAGE)
def create():
    name = request.form.get("name", "")
    try:
        group = service.create_group(name)
        db.session.commit()
    except service.GroupError as exc:
        db.session.rollback()
        return _list(str(exc), 400, name)
    flash(f"Group {group.name} created. Add its members below.", "success")
    return redirect(url_for("groups.detail", group_id=group.id), 303)


@bp.post("/planning")
@permission_required(Perm.PEOPLE_MANAGE)
def create_planning():
    """Create the system group "Planning Meeting Bookings" on an install that lacks it."""
    group = service.ensure_planning_group()
    db.session.commit()
    flash(f"{group.name} is ready: add the agents who take planning meetings.", "success")
    return redirect(url_for("groups.detail", group_id=group.id), 303)


def _detail(group: Group, error: str | None = None, status: int = 200, notice: str | None = None):
    member_ids = {m.id for m in group.members}
    candidates = [u for u in service.eligible_members() if u.id not in member_ids]
    return htmx.render(
        "admin/group.html",
        "admin/_group_members.html",
        status,
        group=group,
        candidates=candidates,
        used_by=group_in_use(group.id),
        system=service.is_system(group),
        error=error,
        notice=notice,
    )


@bp.get("/<int:group_id>")
@permission_required(Perm.PEOPLE_MANAGE)
def detail(group_id: int):
    return _detail(_load(group_id))


def _done(group: Group, message: str):
    if htmx.wants_fragment():
        return _detail(group, notice=message)
    flash(message, "success")
    return redirect(url_for("groups.detail", group_id=group.id), 303)


def _change(group_id: int, change, success: str):
    """Run a change of one group; commit and go back to its page, or show why not (400)."""
    group = _load(group_id)
    try:
        change(group)
        db.session.commit()
    except service.GroupError as exc:
        db.session.rollback()
        return _detail(_load(group_id), str(exc), 400)
    return _done(group, success)


@bp.post("/<int:group_id>/rename")
@permission_required(Perm.PEOPLE_MANAGE)
def rename(group_id: int):
    name = request.form.get("name", "")
    return _change(group_id, lambda g: service.rename_group(g, name), "Group renamed.")


def _user_id(raw: str | None) -> int:
    raw = (raw or "").strip()
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise service.GroupError("Choose a person to add.")
    return int(raw)


@bp.post("/<int:group_id>/members")
@permission_required(Perm.PEOPLE_MANAGE)
def add_member(group_id: int):
    group = _load(group_id)
    try:
        user_id = _user_id(request.form.get("user_id"))
        service.add_member(group, user_id)
        db.session.commit()
    except service.GroupError as exc:
        db.session.rollback()
        return _detail(_load(group_id), str(exc), 400)
    return _done(group, f"{db.session.get(User, user_id).name} added to {group.name}.")


@bp.post("/<int:group_id>/members/<int:user_id>/remove")
@permission_required(Perm.PEOPLE_MANAGE)
def remove_member(group_id: int, user_id: int):
    group = _load(group_id)
    if user_id not in {m.id for m in group.members}:
        abort(404)
    name = db.session.get(User, user_id).name
    return _change(
        group_id,
        lambda g: service.remove_member(g, user_id),
        f"{name} removed from {group.name}.",
    )


@bp.post("/<int:group_id>/delete")
@permission_required(Perm.PEOPLE_MANAGE)
def delete(group_id: int):
    group = _load(group_id)
    name = group.name
    try:
        service.delete_group(group, used_by=group_in_use(group.id))
        db.session.commit()
    except service.GroupError as exc:
        db.session.rollback()
        return _detail(_load(group_id), str(exc), 400)
    flash(f"Group {name} deleted.", "success")
    return redirect(url_for("groups.index"), 303)
