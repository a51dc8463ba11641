"""Permissions as data (SPEC P1): the catalogue, the built-in roles and their defaults.

Routes and services ask ``user.can(Perm.X)``; nothing compares role names. The owner edits
the matrix on the roles screen; this module only says what a new installation starts with.
"""

from __future__ import annotations

from enum import StrEnum


class Perm(StrEnum):
    BOOKINGS_CREATE = "bookings.create"
    BOOKINGS_EDIT = "bookings.edit"
    BOOKINGS_DELETE = "bookings.delete"
    BOOKINGS_ASSIGN = "bookings.assign"
    BOOKINGS_APPROVE = "bookings.approve"
    BOOKINGS_VIEW_ALL = "bookings.view_all"
    CAPACITY_MANAGE = "capacity.manage"
    CALENDAR_VIEW_TEAM = "calendar.view_team"
    SETTINGS_MANAGE = "settings.manage"
    INTEGRATIONS_MANAGE = "integrations.manage"
    USERS_MANAGE = "users.manage"
    ROLES_MANAGE = "roles.manage"
    HOURS_EDIT_OWN = "hours.edit_own"
    PEOPLE_MANAGE = "people.manage"
    BOOKING_TYPES_MANAGE = "booking_types.manage"


PERMISSION_LABELS: dict[Perm, str] = {
    Perm.BOOKINGS_CREATE: "Create bookings",
    Perm.BOOKINGS_EDIT: "Edit and reschedule bookings",
    Perm.BOOKINGS_DELETE: "Cancel bookings",
    Perm.BOOKINGS_ASSIGN: "Assign bookings to other people",
    Perm.BOOKINGS_APPROVE: "Approve or reject provisional bookings",
    Perm.BOOKINGS_VIEW_ALL: "See every booking, not only one's own",
    Perm.CAPACITY_MANAGE: "Manage planning capacity",
    Perm.CALENDAR_VIEW_TEAM: "View the team calendar",
    Perm.SETTINGS_MANAGE: "Manage settings",
    Perm.INTEGRATIONS_MANAGE: "Manage integrations",
    Perm.USERS_MANAGE: "Manage users and reset passwords",
    Perm.ROLES_MANAGE: "Edit the role permission matrix",
    Perm.HOURS_EDIT_OWN: "Edit one's own working hours and time off",
    Perm.PEOPLE_MANAGE: "Manage people, groups, learner profiles and everyone's hours",
    Perm.BOOKING_TYPES_MANAGE: "Create and edit booking types",
}

STAFF = (
    Perm.BOOKINGS_CREATE,
    Perm.BOOKINGS_EDIT,
    Perm.BOOKINGS_DELETE,
    Perm.BOOKINGS_ASSIGN,
    Perm.BOOKINGS_APPROVE,
    Perm.BOOKINGS_VIEW_ALL,
    Perm.CAPACITY_MANAGE,
    Perm.CALENDAR_VIEW_TEAM,
    Perm.HOURS_EDIT_OWN,
)

# slug -> (display name, default permissions, is staff)
BUILTIN_ROLES: dict[str, tuple[str, tuple[Perm, ...], bool]] = {
    "owner": ("Owner", tuple(Perm), True),
    "administrator": (
        "Administrator",
        tuple(p for p in Perm if p is not Perm.ROLES_MANAGE),
        True,
    ),
    "manager": ("Manager", STAFF, True),
    "booking-manager": ("Booking manager", STAFF, True),
    "agent": (
        "Agent",
        (
            Perm.BOOKINGS_CREATE,
            Perm.BOOKINGS_EDIT,
            Perm.BOOKINGS_DELETE,
            Perm.CALENDAR_VIEW_TEAM,
            Perm.HOURS_EDIT_OWN,
        ),
        True,
    ),
    "learner": ("Learner (apprentice)", (), False),
    "employer": ("Employer (workplace mentor)", (), False),
}

# The owner can never lock themself out of the matrix.
OWNER_LOCKED = {Perm.ROLES_MANAGE, Perm.USERS_MANAGE, Perm.PEOPLE_MANAGE}
