"""Every organisation setting, its type and its default, in one place (SPEC "Settings").

A missing row means "use the default"; an unknown key or a value of the wrong type is a
``SettingError``, so nothing else in the code needs to know a default or validate a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.admin.models import OrgSetting
from app.extensions import db


class SettingError(ValueError):
    """An unknown setting or a value it cannot hold."""


@dataclass(frozen=True)
class Setting:
    key: str
    kind: type
    default: object
    label: str
    section: str
    choices: tuple = ()
    minimum: int | None = None
    maximum: int | None = None

    def validate(self, value: object) -> object:
        if self.kind is bool:
            if not isinstance(value, bool):
                raise SettingError(f"{self.label}: expected yes or no")
        elif self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingError(f"{self.label}: expected a whole number")
            if self.minimum is not None and value < self.minimum:
                raise SettingError(f"{self.label}: must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise SettingError(f"{self.label}: must be at most {self.maximum}")
        elif self.kind is str:
            if not isinstance(value, str):
                raise SettingError(f"{self.label}: expected text")
        elif self.kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SettingError(f"{self.label}: expected a list")
            bad = [v for v in value if self.choices and v not in self.choices]
            if bad:
                raise SettingError(f"{self.label}: unknown choice {bad[0]!r}")
            return value
        if self.choices and value not in self.choices:
            raise SettingError(f"{self.label}: must be one of {', '.join(self.choices)}")
        return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingError(f"unknown time zone {value!r}") from exc
    return value


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in [
        # General
        Setting("organisation_name", str, "Slotbook Training", "Organisation name", "general"),
        Setting("organisation_timezone", str, "Europe/London", "Organisation time zone", "general"),
        Setting(
            "public_scheduling_enabled", bool, False, "Allow public users to schedule", "general"
        ),
        Setting(
            "contact_required_fields",
            str,
            "email",
            "Required contact fields",
            "general",
            choices=("email", "phone", "both", "neither"),
        ),
        Setting(
            "max_bookings_per_contact_per_day",
            int,
            1,
            "Maximum bookings per contact per day",
            "general",
            minimum=0,
            maximum=100,
        ),
        Setting(
            "purge_outdated_events", bool, False, "Purge outdated events at midnight", "general"
        ),
        Setting(
            "purge_after_days",
            int,
            30,
            "Purge visitor details this many days after the booking",
            "general",
            minimum=1,
            maximum=3650,
        ),
        Setting(
            "show_unassigned_bookings",
            bool,
            True,
            "Show unassigned bookings on agent dashboards",
            "general",
        ),
        # Time
        Setting(
            "join_early_minutes", int, 5, "Join early (minutes)", "time", minimum=0, maximum=120
        ),
        Setting(
            "reminder_minutes",
            int,
            60,
            "Reminder before meetings (minutes)",
            "time",
            minimum=0,
            maximum=10080,
        ),
        Setting(
            "max_waiting_minutes",
            int,
            15,
            "Maximum waiting time (minutes)",
            "time",
            minimum=0,
            maximum=240,
        ),
        Setting("weekends_enabled", bool, False, "Offer weekends", "time"),
        Setting(
            "confirmation_timeout_minutes",
            int,
            0,
            "Schedule request confirmation timeout (minutes, 0 = off)",
            "time",
            minimum=0,
            maximum=10080,
        ),
        Setting(
            "earliest_day_staff",
            int,
            0,
            "Earliest available day for staff (days ahead)",
            "time",
            minimum=0,
            maximum=365,
        ),
        Setting(
            "earliest_day_public",
            int,
            1,
            "Earliest available day for the public (days ahead)",
            "time",
            minimum=0,
            maximum=365,
        ),
        Setting(
            "disabled_window_minutes",
            int,
            0,
            "Disabled time window after now (minutes)",
            "time",
            minimum=0,
            maximum=10080,
        ),
        Setting(
            "minimum_notice_minutes",
            int,
            0,
            "Minimum notice (minutes)",
            "time",
            minimum=0,
            maximum=525600,
        ),
        Setting(
            "booking_horizon_days",
            int,
            365,
            "Maximum horizon (days)",
            "time",
            minimum=1,
            maximum=730,
        ),
        Setting("day_start", str, "08:00", "Earliest hour offered", "time"),
        Setting("day_end", str, "18:00", "Latest hour offered", "time"),
        # Calendars
        Setting(
            "slot_availability_percentage",
            int,
            100,
            "Slot availability percentage",
            "calendars",
            minimum=1,
            maximum=100,
        ),
        Setting("two_way_sync", bool, True, "Two-way sync", "calendars"),
        Setting(
            "compute_availability", bool, True, "Compute availability from calendars", "calendars"
        ),
        Setting(
            "cache_update_interval_minutes",
            int,
            15,
            "Cache update interval (minutes)",
            "calendars",
            minimum=1,
            maximum=1440,
        ),
        Setting(
            "personal_providers",
            list,
            ["microsoft", "caldav", "ics"],
            "Personal calendars users may link",
            "calendars",
            choices=("microsoft", "caldav", "ics"),
        ),
        Setting(
            "show_event_details",
            bool,
            False,
            "Show event details (organisation Microsoft)",
            "calendars",
        ),
        Setting(
            "allow_private_calendar_urls",
            bool,
            False,
            "Allow calendar servers on the local network",
            "calendars",
        ),
        # Mailer and branding
        Setting("mailer_from_name", str, "Slotbook", "Mailer from name", "mailer"),
        Setting("brand_primary_colour", str, "#2457a7", "Primary colour", "branding"),
    ]
}


def _definition(key: str) -> Setting:
    try:
        return SETTINGS[key]
    except KeyError as exc:
        raise SettingError(f"unknown setting {key!r}") from exc


def get_setting(key: str) -> object:
    definition = _definition(key)
    row = db.session.get(OrgSetting, key)
    if row is None:
        return definition.default
    try:
        return definition.validate(row.value)
    except SettingError:
        return definition.default  # a stored value of the wrong type never breaks a page


def all_settings() -> dict[str, object]:
    """Every setting's current value in one query."""
    stored = {row.key: row.value for row in db.session.scalars(db.select(OrgSetting))}
    values = {}
    for key, definition in SETTINGS.items():
        try:
            values[key] = definition.validate(stored[key]) if key in stored else definition.default
        except SettingError:
            values[key] = definition.default
    return values


def set_setting(key: str, value: object) -> None:
    definition = _definition(key)
    value = definition.validate(value)
    if key == "organisation_timezone":
        _zone(value)  # type: ignore[arg-type]
    row = db.session.get(OrgSetting, key)
    if row is None:
        db.session.add(OrgSetting(key=key, value=value))
    else:
        row.value = value
    db.session.flush()
