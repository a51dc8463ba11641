"""Groups of agents (B6): create, rename, members, delete.

The system group "Planning Meeting Bookings" (``PLANNING_GROUP_SLUG``) feeds the default
availability source and can never be deleted. ``accounts`` knows nothing of bookings, so the
caller says which booking types use a group (``bookings.types.group_in_use``) when deleting;
any other row still pointing at the group refuses the delete too. Services flush, never commit.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select

from app.accounts.models import PLANNING_GROUP_SLUG, Group, Role, User, group_members
from app.accounts.service import AccountError
from app.extensions import db

PLANNING_GROUP_NAME = "Planning Meeting Bookings"
NAME_MAX = 200
SLUG_MAX = 80


class GroupError(AccountError):
    """A group change that cannot be made; the message is for people."""


class DuplicateGroup(GroupError):
    """Another group already has that name (the API answers 409)."""


class SystemGroupError(GroupError):
    """The system group cannot be deleted."""


class GroupInUse(GroupError):
    """Something still draws availability from the group."""


def _name(name: object) -> str:
    if not isinstance(name, str):
        raise GroupError("The group name must be text.")
    name = " ".join(name.split())
    if not name:
        raise GroupError("Enter a name for the group.")
    if len(name) > NAME_MAX:
        raise GroupError(f"A group name can be at most {NAME_MAX} characters.")
    return name


def _name_taken(name: str, group: Group | None = None) -> bool:
    query = select(Group.id).where(func.lower(Group.name) == name.lower())
    if group is not None and group.id is not None:
        query = query.where(Group.id != group.id)
    return db.session.scalar(query) is not None


def _slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-") or "group"


def _free_slug(base: str) -> str:
    slug, n = base, 1
    while db.session.scalar(select(Group.id).where(Group.slug == slug)) is not None:
        n += 1
        suffix = f"-{n}"
        slug = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return slug


def is_system(group: Group) -> bool:
    return bool(group.system) or group.slug == PLANNING_GROUP_SLUG


def create_group(name: str) -> Group:
    """A new, empty group; its slug comes from the name. Naming it "Planning Meeting Bookings"
    on an install that lacks that group creates the system group."""
    name = _name(name)
    if _name_taken(name):
        raise DuplicateGroup(f"A group called {name!r} already exists.")
    base = _slugify(name)
    system = base == PLANNING_GROUP_SLUG and planning_group() is None
    group = Group(name=name, slug=base if system else _free_slug(base), system=system)
    db.session.add(group)
    db.session.flush()
    return group


def planning_group() -> Group | None:
    return db.session.scalars(select(Group).where(Group.slug == PLANNING_GROUP_SLUG)).one_or_none()


def ensure_planning_group() -> Group:
    """The system group, created empty when missing."""
    group = planning_group()
    if group is None:
        name = PLANNING_GROUP_NAME if not _name_taken(PLANNING_GROUP_NAME) else "Planning meetings"
        group = Group(name=name, slug=PLANNING_GROUP_SLUG, system=True)
        db.session.add(group)
        db.session.flush()
    return group


def rename_group(group: Group, name: str) -> Group:
    """A new name; the slug stays, so links and the system group's role do not move."""
    name = _name(name)
    if _name_taken(name, group):
        raise DuplicateGroup(f"A group called {name!r} already exists.")
    group.name = name
    db.session.flush()
    return group


def eligible_members() -> list[User]:
    """Who can be in a group: active staff, by name."""
    return list(
        db.session.scalars(
            select(User)
            .join(Role)
            .where(Role.is_staff.is_(True), User.active.is_(True))
            .order_by(User.name, User.id)
        )
    )


def _ids(user_ids: Iterable[object]) -> list[int]:
    if isinstance(user_ids, str | bytes) or not isinstance(user_ids, Iterable):
        raise GroupError("Members must be a list of user ids.")
    ids = []
    for value in user_ids:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GroupError(f"{value!r} is not a user id (a whole number).")
        ids.append(value)
    return list(dict.fromkeys(ids))


def set_members(group: Group, user_ids: Sequence[int]) -> Group:
    """Make the group's members exactly these users: active staff only, every id known."""
    ids = _ids(user_ids)
    users = (
        {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    )
    unknown = [i for i in ids if i not in users]
    if unknown:
        raise GroupError(f"There is no user with id {unknown[0]}.")
    for user in users.values():
        if not user.active:
            raise GroupError(f"{user.name}'s account is deactivated: only active staff can join.")
        if not user.is_staff:
            raise GroupError(f"{user.name} is not staff: only staff can be members of a group.")
    group.members = [users[i] for i in ids]
    db.session.flush()
    return group


def add_member(group: Group, user_id: int) -> Group:
    return set_members(group, [*(m.id for m in group.members), user_id])


def remove_member(group: Group, user_id: int) -> Group:
    current = [m.id for m in group.members]
    if user_id not in current:
        raise GroupError("That person is not a member of this group.")
    return set_members(group, [i for i in current if i != user_id])


def _other_references(group: Group) -> bool:
    """Whether any table other than the membership list still points at the group."""
    groups_table = Group.__table__
    for table in db.metadata.sorted_tables:
        if table is group_members:
            continue
        for fk in table.foreign_keys:
            if fk.column.table is groups_table:
                found = db.session.execute(
                    select(fk.parent).where(fk.parent == group.id).limit(1)
                ).first()
                if found is not None:
                    return True
    return False


def delete_group(group: Group, *, used_by: Sequence[str] = ()) -> None:
    """Delete a group and its membership list. Refused for the system group and for a group
    something still uses (``used_by``: the names of the booking types that draw from it)."""
    if is_system(group):
        raise SystemGroupError(
            f"{group.name} is the system group for planning meetings and cannot be deleted."
        )
    if used_by:
        raise GroupInUse(
            f"{group.name} cannot be deleted: {', '.join(used_by)} "
            f"{'uses' if len(used_by) == 1 else 'use'} it for availability. "
            "Change their availability source first."
        )
    if _other_references(group):
        raise GroupInUse(f"{group.name} cannot be deleted: it is still in use.")
    group.members = []
    db.session.flush()
    db.session.delete(group)
    db.session.flush()
