"""The first-run checklist (issue [09] "First run"): what an owner still has to set up.

An organisation with no active booking type, or nobody active on the staff besides the
person looking, has nothing to show on a calendar. People who can set it up (``settings.manage``
or ``people.manage``) land on this checklist instead; each step's state is read from the
database, so it ticks itself as the work gets done elsewhere and needs no state of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select

from app.accounts.models import Role, User, WorkingHoursRule
from app.accounts.permissions import Perm
from app.admin.models import OrgSetting
from app.admin.settings import get_setting
from app.bookings.models import BookingType
from app.connections.models import Connection
from app.extensions import db


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    why: str
    done: bool
    url: str
    action: str


def _has(query) -> bool:
    return bool(db.session.scalar(select(exists(query))))


def can_set_up(user: User) -> bool:
    """Who is shown the checklist: the people who can do its steps."""
    return user.can(Perm.SETTINGS_MANAGE) or user.can(Perm.PEOPLE_MANAGE)


def has_other_staff(user: User) -> bool:
    return _has(
        select(User.id)
        .join(Role, Role.id == User.role_id)
        .where(User.active.is_(True), Role.is_staff.is_(True), User.id != user.id)
    )


def has_booking_type() -> bool:
    return _has(select(BookingType.id).where(BookingType.active.is_(True)))


def organisation_is_empty(user: User) -> bool:
    """No active booking type, or no active staff member besides ``user``."""
    return not has_booking_type() or not has_other_staff(user)


def checklist(user: User, urls: dict[str, str]) -> list[Step]:
    """The six steps for ``user`` in the order a new organisation does them. ``urls`` maps
    step keys to links (routes build them; this module stays free of Flask)."""
    named = _has(select(OrgSetting.key).where(OrgSetting.key == "organisation_name"))
    return [
        Step(
            "organisation",
            "Name your organisation and choose its time zone",
            "Visitors and emails show the name; the zone decides what “today” means for "
            "booking windows.",
            named,
            urls["organisation"],
            "Open general settings",
        ),
        Step(
            "hours",
            "Set your working day",
            "Slots are offered only inside working hours.",
            _has(select(WorkingHoursRule.id).where(WorkingHoursRule.user_id == user.id)),
            urls["hours"],
            "Set my hours",
        ),
        Step(
            "staff",
            "Invite your staff",
            "Agents and booking managers get an email with a link to set their password.",
            has_other_staff(user),
            urls["staff"],
            "Add a person",
        ),
        Step(
            "booking_type",
            "Create your first booking type",
            "A booking type says how long a meeting is, who may book it and who takes it.",
            has_booking_type(),
            urls["booking_type"],
            "New booking type",
        ),
        Step(
            "calendars",
            "Link calendars",
            "Busy time in Outlook, CalDAV or ICS calendars then keeps slots from clashing.",
            _has(select(Connection.id)),
            urls["calendars"],
            "Link a calendar",
        ),
        Step(
            "public",
            "Open public booking",
            "Lets visitors book public booking types at /book without an account.",
            bool(get_setting("public_scheduling_enabled")),
            urls["public"],
            "Open general settings",
        ),
    ]
