"""People: add, edit, deactivate and import the organisation's users (issue [07], SPEC P1).

The one place for the rules every edge (screens, CLI, API) shares:

- nobody gives a role whose permissions they do not all hold, and nobody edits a person whose
  permissions exceed theirs (so ``people.manage`` is never a way to gain rights);
- the last active owner can be neither demoted nor deactivated;
- time zones are IANA names; emails are unique (case-insensitive);
- learner links (assigned agent, mentor, assessor, employer) exist only for learners and point
  at people who can hold that part;
- deactivating ends the person's sessions; their bookings and history stay.

``actor=None`` is the system (CLI). Functions flush, never commit: the edge commits once.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import ColumnElement, func, insert, or_, select

from app.accounts.models import Group, LearnerProfile, Role, User, group_members
from app.accounts.permissions import Perm
from app.accounts.service import (
    AccountError,
    AccountForbidden,
    DuplicateEmail,
    ensure_roles,
    find_user,
    normalise_email,
)
from app.database import MAX_ID, utcnow
from app.extensions import db

DEFAULT_TIMEZONE = "Europe/London"
OWNER = "owner"
LEARNER = "learner"
EMPLOYER = "employer"
CSV_COLUMNS = ("email", "name", "role", "timezone", "groups")
MAX_IMPORT_ROWS = 20_000
LINKS = ("assigned_agent_id", "mentor_id", "assessor_id", "employer_id")
LINK_LABELS = {
    "assigned_agent_id": "assigned agent",
    "mentor_id": "workplace mentor",
    "assessor_id": "assessor",
    "employer_id": "employer",
}
UPDATABLE = {"name", "email", "role", "timezone", "active", "group_ids", *LINKS}
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+\.[^@\s,;<>\"']+$")


@cache
def time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_choices() -> list[str]:
    return sorted(time_zones())


# --- who may do what -----------------------------------------------------------------


def _check_actor(actor: User | None) -> None:
    if actor is not None and not (actor.active and actor.can(Perm.PEOPLE_MANAGE)):
        raise AccountForbidden("You may not manage people.")


def may_give(actor: User | None, role: Role) -> bool:
    """Whether ``actor`` may give ``role``: only with every one of its permissions."""
    return actor is None or role.permission_codes <= actor.role.permission_codes


def may_edit(actor: User | None, person: User) -> bool:
    """Whether ``actor`` may edit ``person``: never someone with rights the actor lacks."""
    return actor is None or person.role.permission_codes <= actor.role.permission_codes


def givable_roles(actor: User | None) -> list[Role]:
    """The roles ``actor`` may give, in the order of the roles screen."""
    ensure_roles()
    roles = db.session.scalars(select(Role).order_by(Role.id)).all()
    return [r for r in roles if may_give(actor, r)]


def _forbid_give(actor: User | None, role: Role) -> None:
    if not may_give(actor, role):
        raise AccountForbidden(
            f"You cannot give the role {role.name}: it has permissions you do not hold."
        )


def _forbid_edit(actor: User | None, person: User) -> None:
    if not may_edit(actor, person):
        raise AccountForbidden(
            f"You cannot change {person.name}: their role ({person.role.name}) has "
            "permissions you do not hold."
        )


def active_owner_count(excluding: User | None = None) -> int:
    query = (
        select(func.count())
        .select_from(User)
        .join(Role, Role.id == User.role_id)
        .where(Role.slug == OWNER, User.active.is_(True))
    )
    if excluding is not None and excluding.id is not None:
        query = query.where(User.id != excluding.id)
    return db.session.scalar(query) or 0


def is_last_active_owner(person: User) -> bool:
    return person.active and person.role.slug == OWNER and active_owner_count(person) == 0


# --- field checks --------------------------------------------------------------------


def check_email(email: str) -> str:
    email = normalise_email(email)
    if not email:
        raise AccountError("Give an email address.")
    if len(email) > 254 or not _EMAIL.match(email):
        raise AccountError(f"{email} is not a valid email address.")
    return email


def check_timezone(zone: str | None) -> str:
    zone = (zone or "").strip()
    if zone not in time_zones():
        raise AccountError(
            f"Unknown time zone {zone!r}: use a name like Europe/London or America/New_York."
        )
    return zone


def _check_name(name: str | None, email: str) -> str:
    name = (name or "").strip()
    if len(name) > 200:
        raise AccountError("Keep the name under 200 characters.")
    return name or email.split("@")[0]


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    roles = ensure_roles()
    key = (role or "").strip()
    found = roles.get(key) or next(
        (r for r in roles.values() if key.lower() in (r.slug.lower(), r.name.lower())), None
    )
    if found is None:
        known = ", ".join(sorted(roles))
        raise AccountError(f"Unknown role {key!r}: use one of {known}.")
    return found


def _id(value, label: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AccountError(f"The {label} must be a person's id.")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise AccountError(f"The {label} must be a person's id.") from exc
    return number


def get_person(person_id) -> User | None:
    """The user with this id, or None (also for ids no row can have)."""
    try:
        number = int(person_id)
    except (TypeError, ValueError):
        return None
    if not 0 < number <= MAX_ID:
        return None
    return db.session.get(User, number)


def _groups(group_ids: Iterable) -> list[Group]:
    try:
        ids = {int(g) for g in group_ids}
    except (TypeError, ValueError) as exc:
        raise AccountError("Groups must be given by their ids.") from exc
    if not ids:
        return []
    if any(not 0 < g <= MAX_ID for g in ids):
        raise AccountError("Unknown group.")
    found = db.session.scalars(select(Group).where(Group.id.in_(ids))).all()
    if len(found) != len(ids):
        raise AccountError("Unknown group: it may have been deleted.")
    return list(found)


def groups_of(person: User) -> list[Group]:
    return list(
        db.session.scalars(
            select(Group)
            .join(group_members, group_members.c.group_id == Group.id)
            .where(group_members.c.user_id == person.id)
            .order_by(Group.name)
        )
    )


def _set_groups(person: User, groups: list[Group]) -> None:
    wanted = {g.id: g for g in groups}
    current = {g.id: g for g in groups_of(person)}
    for gid, group in current.items():
        if gid not in wanted and person in group.members:
            group.members.remove(person)
    for gid, group in wanted.items():
        if gid not in current and person not in group.members:
            group.members.append(person)


def _link_target(key: str, value) -> User | None:
    """The person a learner link points at, checked for the part they play."""
    label = LINK_LABELS[key]
    number = _id(value, label)
    if number is None:
        return None
    target = get_person(number)
    if target is None:
        raise AccountError(f"Unknown {label}: no such person.")
    if not target.active:
        raise AccountError(f"{target.name} is deactivated and cannot be the {label}.")
    if key in ("assigned_agent_id", "assessor_id") and not target.is_staff:
        raise AccountError(f"The {label} must be a member of staff; {target.name} is not.")
    if key in ("mentor_id", "employer_id") and not (
        target.is_staff or target.role.slug == EMPLOYER
    ):
        raise AccountError(f"The {label} must be an employer or a member of staff.")
    return target


_PROFILE_COLUMN = {
    "assigned_agent_id": "assigned_agent_id",
    "mentor_id": "workplace_mentor_id",
    "assessor_id": "assessor_id",
    "employer_id": "employer_id",
}


def learner_links(person: User) -> dict[str, int | None]:
    profile = db.session.get(LearnerProfile, person.id) if person.id else None
    return {
        key: (getattr(profile, column) if profile else None)
        for key, column in _PROFILE_COLUMN.items()
    }


def _set_links(person: User, links: dict) -> None:
    """Store the learner links given (keys of LINKS); unchanged values are not re-checked, so
    a mentor deactivated since still lets the rest of the profile be saved."""
    if not links:
        return
    current = learner_links(person)
    changed = {k: v for k, v in links.items() if _id(v, LINK_LABELS[k]) != current[k]}
    if not changed:
        return
    if person.role.slug != LEARNER:
        if any(_id(v, LINK_LABELS[k]) is not None for k, v in changed.items()):
            raise AccountError(
                "Only learners have an assigned agent, mentor, assessor or employer."
            )
        return
    targets = {k: _link_target(k, v) for k, v in changed.items()}
    if any(t is not None and t.id == person.id for t in targets.values()):
        raise AccountError("A learner cannot be linked to themself.")
    profile = db.session.get(LearnerProfile, person.id)
    if profile is None:
        profile = LearnerProfile(user_id=person.id)
        db.session.add(profile)
    for key, target in targets.items():
        setattr(profile, _PROFILE_COLUMN[key], target.id if target else None)


def _invite(person: User, actor: User | None) -> None:
    from app.accounts.passwords import send_invitation  # built alongside; imported when used

    send_invitation(person, actor)


# --- one person ----------------------------------------------------------------------


def create_person(
    actor: User | None,
    *,
    email: str,
    name: str,
    role: Role | str,
    timezone: str = DEFAULT_TIMEZONE,
    active: bool = True,
    group_ids: Iterable = (),
    invite: bool = False,
    assigned_agent_id=None,
    mentor_id=None,
    assessor_id=None,
    employer_id=None,
) -> User:
    """Add one person (no password: they set it from the invitation link)."""
    _check_actor(actor)
    email = check_email(email)
    name = _check_name(name, email)
    zone = check_timezone(timezone)
    chosen = _role(role)
    _forbid_give(actor, chosen)
    groups = _groups(group_ids)
    if find_user(email) is not None:
        raise DuplicateEmail(f"Someone already uses the email {email}.")
    person = User(email=email, name=name, role=chosen, timezone=zone, active=bool(active))
    db.session.add(person)
    db.session.flush()
    _set_groups(person, groups)
    links = dict(
        assigned_agent_id=assigned_agent_id,
        mentor_id=mentor_id,
        assessor_id=assessor_id,
        employer_id=employer_id,
    )
    _set_links(person, {k: v for k, v in links.items() if v not in (None, "")})
    db.session.flush()
    if invite:
        if not person.active:
            raise AccountError("Invite only active people: tick Active or untick the invitation.")
        _invite(person, actor)
    return person


def update_person(actor: User | None, person: User, **changes) -> User:
    """Change the given fields (keys of ``UPDATABLE``); nothing else is touched."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise AccountError(f"Unknown field {sorted(unknown)[0]!r}.")
    _check_actor(actor)
    _forbid_edit(actor, person)
    if "email" in changes:
        email = check_email(changes["email"])
        other = find_user(email)
        if other is not None and other.id != person.id:
            raise DuplicateEmail(f"Someone else already uses the email {email}.")
        person.email = email
    if "name" in changes:
        if not (changes["name"] or "").strip():
            raise AccountError("Give a name.")
        person.name = _check_name(changes["name"], person.email)
    if "timezone" in changes:
        person.timezone = check_timezone(changes["timezone"])
    new_role = _role(changes["role"]) if changes.get("role") is not None else person.role
    active = bool(changes["active"]) if changes.get("active") is not None else person.active
    if new_role.id != person.role.id:
        _forbid_give(actor, new_role)
    demoted = new_role.slug != OWNER or not active
    if demoted and is_last_active_owner(person):
        what = "deactivated" if not active else "given another role"
        raise AccountError(
            f"{person.name} is the last active owner and cannot be {what}: "
            "make someone else an owner first."
        )
    if not active and person.active and actor is not None and actor.id == person.id:
        raise AccountError("You cannot deactivate yourself; ask another administrator.")
    if new_role.id != person.role.id:
        person.role = new_role
    if active != person.active:
        person.active = active
        person.end_sessions()  # deactivated: signed out; reactivated: old cookies stay dead
    if "group_ids" in changes:
        _set_groups(person, _groups(changes["group_ids"] or ()))
    _set_links(person, {k: changes[k] for k in LINKS if k in changes})
    db.session.flush()
    return person


def deactivate(actor: User | None, person: User) -> User:
    return update_person(actor, person, active=False)


def reactivate(actor: User | None, person: User) -> User:
    return update_person(actor, person, active=True)


def resend_invitation(actor: User | None, person: User) -> None:
    _check_actor(actor)
    _forbid_edit(actor, person)
    if not person.active:
        raise AccountError(f"{person.name} is deactivated: reactivate them first.")
    if person.password_hash:
        raise AccountError(f"{person.name} has already set a password.")
    _invite(person, actor)


def name_or_email_contains(text: str) -> ColumnElement[bool]:
    """A WHERE clause: ``text`` (case-insensitive, taken literally, wildcards too) is a part
    of the person's name or email. Shared by the people list and the person pickers."""
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    pattern = f"%{escaped}%"
    return or_(
        func.lower(User.name).like(pattern, escape="\\"),
        func.lower(User.email).like(pattern, escape="\\"),
    )


def people_query(
    search: str | None = None,
    role: str | None = None,
    group_id: int | None = None,
    *,
    active: bool | None = None,
):
    """A SELECT of users matching the filters, by name: search is a part of name or email,
    ``role`` a role slug, ``group_id`` a group the person belongs to."""
    query = select(User).join(Role, Role.id == User.role_id)
    if (search or "").strip():
        query = query.where(name_or_email_contains(search))
    if role:
        query = query.where(Role.slug == role)
    if group_id is not None:
        query = query.where(
            User.id.in_(select(group_members.c.user_id).where(group_members.c.group_id == group_id))
        )
    if active is not None:
        query = query.where(User.active.is_(active))
    return query.order_by(func.lower(User.name), User.id)


# --- CSV import ----------------------------------------------------------------------


@dataclass
class ImportRow:
    line: int
    email: str
    name: str
    role: str
    timezone: str
    groups: list[str]
    problems: list[str] = field(default_factory=list)
    role_id: int | None = None
    group_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class ImportPreview:
    rows: list[ImportRow] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)

    @property
    def bad_rows(self) -> list[ImportRow]:
        return [r for r in self.rows if r.problems]

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.file_problems and not self.bad_rows

    @property
    def problems(self) -> list[tuple[int | None, str]]:
        """Every problem as (line number or None for the whole file, message)."""
        return [(None, p) for p in self.file_problems] + [
            (r.line, p) for r in self.rows for p in r.problems
        ]


def _lookup_tables(actor: User | None):
    ensure_roles()
    roles = db.session.scalars(select(Role)).all()
    by_role = {}
    for r in roles:
        by_role[r.slug.lower()] = r
        by_role.setdefault(r.name.lower(), r)
    by_group = {}
    for g in db.session.scalars(select(Group)):
        by_group[g.slug.lower()] = g
        by_group.setdefault(g.name.strip().lower(), g)
    return by_role, by_group


def _existing_emails(emails: set[str]) -> set[str]:
    found: set[str] = set()
    chunk = list(emails)
    for start in range(0, len(chunk), 500):
        part = chunk[start : start + 500]
        found.update(
            db.session.scalars(
                select(func.lower(User.email)).where(func.lower(User.email).in_(part))
            )
        )
    return found


def _validate(rows: list[ImportRow], actor: User | None) -> None:
    """Fill each row's problems (and resolved ids) against the database as it is now."""
    by_role, by_group = _lookup_tables(actor)
    zones = time_zones()
    seen: dict[str, int] = {}
    for row in rows:
        row.problems, row.group_ids, row.role_id = [], [], None
        if not row.email:
            row.problems.append("no email address")
        elif len(row.email) > 254 or not _EMAIL.match(row.email):
            row.problems.append(f"{row.email!r} is not a valid email address")
        elif row.email in seen:
            row.problems.append(f"{row.email} is already on line {seen[row.email]}")
        else:
            seen[row.email] = row.line
        if len(row.name) > 200:
            row.problems.append("the name is longer than 200 characters")
        role = by_role.get(row.role.lower())
        if not row.role:
            row.problems.append("no role")
        elif role is None:
            row.problems.append(f"unknown role {row.role!r}")
        elif not may_give(actor, role):
            row.problems.append(f"you cannot give the role {role.name}")
        else:
            row.role_id = role.id
        if row.timezone not in zones:
            row.problems.append(f"unknown time zone {row.timezone!r}")
        for name in row.groups:
            group = by_group.get(name.lower())
            if group is None:
                row.problems.append(f"unknown group {name!r}")
            elif group.id not in row.group_ids:
                row.group_ids.append(group.id)
    taken = _existing_emails(set(seen))
    for row in rows:
        if row.email in taken and seen.get(row.email) == row.line:
            row.problems.append(f"{row.email} already has an account")


def parse_people_csv(text: str, actor: User | None = None) -> ImportPreview:
    """Read a CSV of people (columns email,name,role,timezone,groups; groups separated by
    ``;`` and named by name or slug) and say what is wrong with each row. Writes nothing.
    Line numbers are the file's (the header is line 1)."""
    preview = ImportPreview()
    text = (text or "").lstrip("\ufeff")
    if not text.strip():
        preview.file_problems.append("The file is empty.")
        return preview
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        preview.file_problems.append(f"This is not a readable CSV file ({exc}).")
        return preview
    missing = [c for c in ("email", "role") if c not in header]
    unknown = [h for h in header if h and h not in CSV_COLUMNS]
    if missing or unknown:
        detail = []
        if missing:
            detail.append("missing " + ", ".join(missing))
        if unknown:
            detail.append("unknown " + ", ".join(unknown))
        preview.file_problems.append(
            "Line 1 must name the columns email,name,role,timezone,groups ("
            + "; ".join(detail)
            + ")."
        )
        return preview
    index = {name: header.index(name) for name in CSV_COLUMNS if name in header}

    def cell(values: list[str], name: str) -> str:
        at = index.get(name)
        return values[at].strip() if at is not None and at < len(values) else ""

    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(preview.rows) >= MAX_IMPORT_ROWS:
                preview.file_problems.append(
                    f"The file has more than {MAX_IMPORT_ROWS} people; split it."
                )
                break
            row = ImportRow(
                line=line,
                email=normalise_email(cell(values, "email")),
                name=cell(values, "name"),
                role=cell(values, "role"),
                timezone=cell(values, "timezone") or DEFAULT_TIMEZONE,
                groups=[g.strip() for g in cell(values, "groups").split(";") if g.strip()],
            )
            if len(values) > len(header):
                row.problems.append(f"{len(values)} columns where the header has {len(header)}")
            preview.rows.append(row)
    except csv.Error as exc:
        preview.file_problems.append(f"Line {reader.line_num} cannot be read ({exc}).")
        return preview
    if not preview.rows and not preview.file_problems:
        preview.file_problems.append("The file names its columns but lists nobody.")
    extra = {r.line: list(r.problems) for r in preview.rows}
    _validate(preview.rows, actor)
    for row in preview.rows:
        row.problems = extra[row.line] + row.problems
    return preview


def import_people(actor: User | None, preview: ImportPreview) -> list[User]:
    """Create every person of a clean preview, or nobody: checked again against the database
    as it is now, then written in a few batched statements (the caller commits once)."""
    _check_actor(actor)
    if preview.ok:  # clean when previewed: check again, the database may have changed since
        _validate(preview.rows, actor)
    if not preview.ok:
        count = len(preview.bad_rows)
        raise AccountError(
            f"Nothing was imported: {count} row{'s' if count != 1 else ''} "
            "or the file itself need fixing first."
            if count
            else "Nothing was imported: " + " ".join(preview.file_problems)
        )
    # Core executemany: the ORM would insert one row at a time on SQLite (it must match each
    # generated id to its object); the people are read back by email afterwards.
    now = utcnow()
    db.session.execute(
        insert(User),
        [
            {
                "email": row.email,
                "name": _check_name(row.name, row.email),
                "role_id": row.role_id,
                "timezone": row.timezone,
                "active": True,
                "session_token": secrets.token_urlsafe(32),
                "created_at": now,
            }
            for row in preview.rows
        ],
    )
    by_email: dict[str, User] = {}
    emails = [row.email for row in preview.rows]
    for start in range(0, len(emails), 500):
        part = emails[start : start + 500]
        by_email.update(
            (u.email, u) for u in db.session.scalars(select(User).where(User.email.in_(part)))
        )
    people = [by_email[email] for email in emails]
    memberships = [
        {"group_id": gid, "user_id": by_email[row.email].id}
        for row in preview.rows
        for gid in row.group_ids
    ]
    if memberships:
        db.session.execute(insert(group_members), memberships)
        for group in db.session.scalars(select(Group)):
            db.session.expire(group, ["members"])
    return people
