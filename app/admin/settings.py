"""Every organisation setting, its type and its default, in one place (SPEC "Settings").

A missing row means "use the default"; an unknown key or a value of the wrong type is a
``SettingError``, so nothing else in the code needs to know a default or validate a value.

The settings screens (``settings_routes.py``) and ``flask settings set`` share the rules
here: per-value checks (``CHECKS``: zones, clock times, addresses, colours), rules that tie
values together (``combined_errors``: readable slot colours, a day that ends after it
starts) and the seed-style help text (``HELP``). ``SECTIONS`` is the one list of screens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.admin.models import OrgSetting
from app.database import driver_rows
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
        check = CHECKS.get(self.key)
        if check is not None:
            check(self, value)
        return value

    @property
    def help(self) -> str:
        """What the setting does, in the words of seed 002 (shown under its field)."""
        return HELP.get(self.key, "")


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
            ["microsoft", "caldav", "ics", "google"],
            "Personal calendars users may link",
            "calendars",
            choices=("microsoft", "caldav", "ics", "google"),
        ),
        # Issue [12] (seed 002 "Primary Calendar Provider"): which organisation link covers
        # people; "both" for mixed tenants, each person by the one whose domain matches.
        Setting(
            "primary_calendar_provider",
            str,
            "microsoft",
            "Primary calendar provider",
            "calendars",
            choices=("microsoft", "google", "both"),
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
        Setting("mailer_from_address", str, "", "Mailer from address", "mailer"),
        Setting("mailer_reply_to", str, "", "Reply-to address", "mailer"),
        # UX preferences (seed 002: text black, available green, selected blue)
        Setting("slot_text_colour", str, "#1d2330", "Time slot text colour", "ux"),
        Setting("slot_available_colour", str, "#d7f0dc", "Available time slot background", "ux"),
        Setting("slot_selected_colour", str, "#b9d3f7", "Selected time slot background", "ux"),
        Setting("brand_primary_colour", str, "#2457a7", "Primary colour", "branding"),
    ]
}


# --- checks of one value -------------------------------------------------------------

_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# One address, no display name: something@domain.tld, no spaces, no header-breaking characters.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_ADDRESS = 254


def _check_zone(setting: Setting, value: str) -> None:
    _zone(value)


def _check_clock(setting: Setting, value: str) -> None:
    if not _CLOCK.match(value):
        raise SettingError(f"{setting.label}: expected a time as HH:MM, such as 08:30")


def _check_colour(setting: Setting, value: str) -> None:
    if not _COLOUR.match(value):
        raise SettingError(f"{setting.label}: expected a colour as #rrggbb, such as #1d2330")


def _check_address(setting: Setting, value: str, *, optional: bool) -> None:
    if not value and optional:
        return
    if not value:
        raise SettingError(f"{setting.label}: enter an email address")
    if len(value) > MAX_ADDRESS or not _ADDRESS.match(value):
        raise SettingError(
            f"{setting.label}: {value[:60]!r} is not an email address (name@example.org)"
        )


def _check_name(setting: Setting, value: str) -> None:
    if not value.strip():
        raise SettingError(f"{setting.label}: enter a name")
    if len(value) > 120:
        raise SettingError(f"{setting.label}: at most 120 characters")


CHECKS: dict[str, Callable[[Setting, object], None]] = {
    "organisation_timezone": _check_zone,
    "organisation_name": _check_name,
    "day_start": _check_clock,
    "day_end": _check_clock,
    "mailer_from_name": _check_name,
    # An empty from address means "the server's MAIL_DEFAULT_SENDER".
    "mailer_from_address": lambda s, v: _check_address(s, v, optional=True),
    "mailer_reply_to": lambda s, v: _check_address(s, v, optional=True),
    "slot_text_colour": _check_colour,
    "slot_available_colour": _check_colour,
    "slot_selected_colour": _check_colour,
    "brand_primary_colour": lambda s, v: _check_readable_under_white(s, v),
}


def _check_readable_under_white(setting: Setting, value: str) -> None:
    """The primary colour is the background of the public header, buttons and the email
    header, always under white text (issue [09] branding)."""
    _check_colour(setting, value)
    ratio = contrast_ratio(value, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise SettingError(
            f"{setting.label}: {value} is too light for white text: its contrast ratio is "
            f"{ratio:.2f}:1 and at least {MIN_CONTRAST}:1 is needed (WCAG AA). "
            "Choose a darker colour."
        )


# --- rules between values -------------------------------------------------------------

MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text


def _luminance(colour: str) -> float:
    """Relative luminance of ``#rrggbb`` (WCAG 2)."""

    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours, from 1 (same) to 21 (black on white)."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def combined_errors(values: dict[str, object]) -> dict[str, str]:
    """Rules no single value can check, over a full set of values: key -> message. The
    slot colours must stay readable (a visitor who cannot read the times cannot book) and
    the offered day must end after it starts."""
    errors: dict[str, str] = {}
    text = values.get("slot_text_colour")
    for key in ("slot_available_colour", "slot_selected_colour"):
        background = values.get(key)
        if not (isinstance(text, str) and isinstance(background, str)):
            continue
        if not (_COLOUR.match(text) and _COLOUR.match(background)):
            continue
        ratio = contrast_ratio(text, background)
        if ratio < MIN_CONTRAST:
            errors[key] = (
                f"{SETTINGS[key].label}: text {text} on {background} has a contrast of "
                f"{ratio:.2f}:1; readable text needs at least {MIN_CONTRAST}:1 (WCAG AA). "
                "Choose a lighter background or a darker text colour."
            )
    start, end = values.get("day_start"), values.get("day_end")
    clocks = isinstance(start, str) and isinstance(end, str)
    if clocks and _CLOCK.match(start) and _CLOCK.match(end) and end <= start:
        errors["day_end"] = (
            f"{SETTINGS['day_end'].label}: {end} must be later than the earliest hour, {start}"
        )
    return errors


# --- help text (seed 002's words, adapted) -----------------------------------------------

HELP: dict[str, str] = {
    "organisation_name": "Shown on the public booking pages and in the emails visitors receive.",
    "organisation_timezone": (
        "The zone the organisation's day is counted in (an IANA name such as Europe/London): "
        "'today', 'the next day' and midnight jobs use it."
    ),
    "public_scheduling_enabled": (
        "Places a booking button on the public landing page so visitors can schedule a "
        "meeting themselves. Off: the public pages say booking is closed."
    ),
    "contact_required_fields": (
        "Which contact details a visitor must give to book: email, phone number, both or neither."
    ),
    "max_bookings_per_contact_per_day": (
        "How many meetings one visitor (the same email or phone) can book per day. On "
        "reaching it they are told so and can cancel an earlier booking instead. 0 = no limit."
    ),
    "purge_outdated_events": (
        "Lets the system remove the personal details of public visitors from past bookings "
        "at midnight; the booking and its history stay, anonymised."
    ),
    "purge_after_days": (
        "How long after a public booking ends its visitor's name, email and phone are kept "
        "before the midnight purge removes them."
    ),
    "show_unassigned_bookings": (
        "Bookings nobody is assigned to yet are shown on agents' dashboards in a 'To assign' "
        "lane, so any agent can take one."
    ),
    "join_early_minutes": (
        "How many minutes before the official start the meeting opens, so visitors can join."
    ),
    "reminder_minutes": "How many minutes before a meeting the reminder email is sent.",
    "max_waiting_minutes": (
        "How long to wait for a visitor. After this many minutes without them joining, the "
        "agent can mark them as a no-show."
    ),
    "weekends_enabled": "Offer Saturday and Sunday times. Off: nobody can book on weekends.",
    "confirmation_timeout_minutes": (
        "How long a visitor has to confirm their booking from the email before the system "
        "releases the time. 0 = no confirmation needed."
    ),
    "earliest_day_staff": (
        "The earliest day staff can book: 0 for today, 1 for the next day, and so on."
    ),
    "earliest_day_public": (
        "The earliest day the public can book: 0 for today, 1 for the next day, and so on."
    ),
    "disabled_window_minutes": (
        "A buffer between now and the earliest time that can be booked, in minutes."
    ),
    "minimum_notice_minutes": (
        "The least notice a booking needs, in minutes (a booking type may ask for more)."
    ),
    "booking_horizon_days": (
        "How many days ahead meetings can be booked (a booking type may set its own)."
    ),
    "day_start": "The earliest hour of the day times are offered, as HH:MM.",
    "day_end": "The latest hour of the day times are offered, as HH:MM.",
    "slot_availability_percentage": (
        "The share of a booking type's agents who must be free for a time to be offered. "
        "With fewer free agents than this, the time is blocked."
    ),
    "two_way_sync": (
        "Write bookings into people's linked calendars as well as reading their busy times."
    ),
    "compute_availability": (
        "Use the busy times of linked calendars to compute who is free. Off: busy times are "
        "still shown on the calendar but do not block slots."
    ),
    "cache_update_interval_minutes": (
        "How often linked calendars are read again to refresh busy times, in minutes."
    ),
    "personal_providers": "Which kinds of personal calendar people may link to their account.",
    "primary_calendar_provider": (
        "Which organisation link gives people busy time and bookings without linking "
        "anything: microsoft (Microsoft 365), google (Google Workspace) or both, for mixed "
        "tenants: each person by the one whose domain matches (Google's domains first)."
    ),
    "show_event_details": (
        "Show the titles of events from the organisation's Microsoft calendars, not only "
        "'busy', to people who may see the team calendar."
    ),
    "allow_private_calendar_urls": (
        "Allow calendar and webhook addresses on the local network (127.0.0.1, 10.x, "
        "192.168.x). Leave off unless the calendar server really is inside your network."
    ),
    "mailer_from_name": (
        "The sender name on every email, so messages come from your organisation, not from "
        "Slotbook."
    ),
    "mailer_from_address": (
        "The sender address on every email. Leave empty to use the server's "
        "MAIL_DEFAULT_SENDER. Your mail server must be allowed to send for this address."
    ),
    "mailer_reply_to": (
        "Where replies to the emails go (optional), for example the booking desk's inbox."
    ),
    "slot_text_colour": "The text colour of time slots in the public picker (default: black).",
    "slot_available_colour": (
        "The background of times and days that can be booked (default: green). It must keep "
        "a contrast of at least 4.5:1 with the text colour."
    ),
    "slot_selected_colour": (
        "The background of the time or day a visitor chose (default: blue). It must keep a "
        "contrast of at least 4.5:1 with the text colour."
    ),
    "brand_primary_colour": "The organisation's main colour on the public pages.",
}


# --- sections (one screen each) ----------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One settings screen. ``endpoint`` names a screen of its own (Notifications,
    Branding); without it the generic screen edits the settings whose ``section`` is
    ``slug``."""

    slug: str
    title: str
    intro: str
    endpoint: str | None = None


# The settings navigation in order; another screen is added by appending here.
SECTIONS: list[Section] = [
    Section("general", "General", "Public booking, contact details and daily limits."),
    Section("time", "Time", "When meetings can be booked, joined and confirmed."),
    Section("calendars", "Calendars", "How linked calendars feed availability."),
    Section(
        "notifications",
        "Notifications",
        "Which channels each message uses.",
        endpoint="notifications.admin",
    ),
    Section("ux", "UX preferences", "Colours of the public time picker."),
    Section("mailer", "Mailer", "Who the emails come from and where replies go."),
    Section(
        "branding",
        "Branding",
        "Name, colour and logo on public pages, emails and this header.",
        endpoint="branding.settings_page",
    ),
]


# --- Microsoft Teams meetings (T2, seed 001): their own screen ----------------------------

_TEAMS_SETTINGS = (
    Setting(
        "teams_scheduling_window_days",
        int,
        5,
        "Teams scheduling window (days)",
        "teams",
        minimum=0,
        maximum=60,
    ),
    Setting(
        "teams_min_lead_hours",
        int,
        3,
        "Minimum notice for a Teams meeting (hours)",
        "teams",
        minimum=0,
        maximum=168,
    ),
    Setting(
        "teams_schedule_interval_hours",
        int,
        3,
        "Teams scheduling job interval (hours)",
        "teams",
        minimum=1,
        maximum=24,
    ),
)
for _teams_setting in _TEAMS_SETTINGS:
    SETTINGS[_teams_setting.key] = _teams_setting
HELP.update(
    {
        "teams_scheduling_window_days": (
            "Teams meetings are created in Microsoft Teams only once they start within this "
            "many days; until then the booking says when its link will be created."
        ),
        "teams_min_lead_hours": (
            "A Teams meeting must start at least this many hours from now; sooner bookings "
            "are refused so the invitations arrive in time."
        ),
        "teams_schedule_interval_hours": (
            "How often the job runs that creates the Teams meetings that entered the window."
        ),
    }
)
SECTIONS.insert(
    3, Section("teams", "Microsoft Teams", "When Teams meetings are created for bookings.")
)


def section(slug: str) -> Section | None:
    """The generic-screen section called ``slug`` (None for unknown or own-screen ones)."""
    found = next((s for s in SECTIONS if s.slug == slug), None)
    return found if found is not None and found.endpoint is None else None


def section_settings(slug: str) -> list[Setting]:
    return [s for s in SETTINGS.values() if s.section == slug]


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


# Built once (a statement object keeps its cache key); plain rows, no ORM objects: every
# availability request reads the settings.
_STORED = db.select(OrgSetting.key, OrgSetting.value)
_STORED_VALUE = OrgSetting.__table__.c.value


def all_settings() -> dict[str, object]:
    """Every setting's current value in one query.

    Read as the driver's rows (:func:`driver_rows`; every availability request reads the
    settings: 30-38 us less per request than SQLAlchemy's ``execute`` with its compiled-cache
    lookup, parameter set-up and ``Row`` objects, measured inside the request), each stored
    value then decoded as the column's JSON type decodes it for this database."""
    db.session.flush()  # settings changed in this transaction count (as the ORM's autoflush)
    dialect = db.session.connection().dialect
    decode = _STORED_VALUE.type.dialect_impl(dialect).result_processor(dialect, None)
    rows = driver_rows(_STORED)
    stored = {key: decode(value) for key, value in rows} if decode else dict(rows)
    values = {}
    for key, definition in SETTINGS.items():
        try:
            values[key] = definition.validate(stored[key]) if key in stored else definition.default
        except SettingError:
            values[key] = definition.default
    return values


def set_setting(key: str, value: object) -> None:
    """Set one setting (``flask settings set``): the same checks as the screens, including
    the rules that tie it to the others."""
    definition = _definition(key)
    value = definition.validate(value)
    errors = combined_errors({**all_settings(), key: value})
    if errors:
        raise SettingError(next(iter(errors.values())))
    _write(key, value)


def _write(key: str, value: object) -> None:
    row = db.session.get(OrgSetting, key)
    if row is None:
        db.session.add(OrgSetting(key=key, value=value))
    else:
        row.value = value
    db.session.flush()


# --- the screens' service: parse a form, save all or nothing, audit each change ----------

AUDIT_ACTION = "setting_changed"
_TRUE = {"y", "yes", "on", "true", "1"}
_WHOLE = re.compile(r"^-?[0-9]{1,9}$")
_FALSE = {"", "n", "no", "off", "false", "0"}


class SettingsInvalid(SettingError):
    """One or more values of a form are wrong; nothing was saved. ``errors``: key -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def parse_form(slug: str, form) -> tuple[dict[str, object], dict[str, str]]:
    """Typed values for the settings of section ``slug`` found in ``form`` (a MultiDict;
    field names are setting keys) and a message for each field that is not valid. A field
    absent from the form is left as it is, so a post may change one setting. A checkbox
    sends a hidden "n" before its "y", so unticked still arrives; lists do the same with an
    empty value."""
    values: dict[str, object] = {}
    errors: dict[str, str] = {}
    for setting in section_settings(slug):
        key = setting.key
        if key not in form:
            continue
        raw = [v.strip() for v in form.getlist(key)]
        try:
            if setting.kind is bool:
                last = raw[-1].lower()
                if last not in _TRUE | _FALSE:
                    raise SettingError(f"{setting.label}: expected yes or no")
                value: object = last in _TRUE
            elif setting.kind is int:
                if not _WHOLE.match(raw[-1]):  # int() would take "٣" or "1_000"
                    raise SettingError(f"{setting.label}: enter a whole number")
                value = int(raw[-1])
            elif setting.kind is list:
                value = [v for v in raw if v]
            else:
                value = raw[-1]
            values[key] = setting.validate(value)
        except SettingError as exc:
            errors[key] = str(exc)
    return values, errors


def save_settings(values: dict[str, object], actor_id: int | None) -> list[tuple[str, object]]:
    """Save every value or none: each is validated again, then the rules between values are
    checked against the result; each setting that really changes gets an audit entry (who,
    old -> new). Returns the changed keys with their new values. Raises ``SettingsInvalid``."""
    from app.bookings.models import AuditEntry  # the shared audit trail; bookings sit beside

    errors: dict[str, str] = {}
    clean: dict[str, object] = {}
    for key, value in values.items():
        try:
            clean[key] = _definition(key).validate(value)
        except SettingError as exc:
            errors[key] = str(exc)
    current = all_settings()
    errors.update(
        {k: m for k, m in combined_errors({**current, **clean}).items() if k not in errors}
    )
    if errors:
        raise SettingsInvalid(errors)
    changed = []
    for key, value in clean.items():
        if current[key] == value:
            continue
        _write(key, value)
        db.session.add(
            AuditEntry(
                booking_id=None,
                actor_id=actor_id,
                action=AUDIT_ACTION,
                changes={key: [current[key], value]},
            )
        )
        changed.append((key, value))
    db.session.flush()
    return changed


def recent_changes(keys: list[str] | None = None, limit: int = 10) -> list:
    """The latest audit entries of settings (of ``keys`` when given), newest first."""
    from app.bookings.models import AuditEntry

    query = (
        db.select(AuditEntry)
        .where(AuditEntry.booking_id.is_(None), AuditEntry.action == AUDIT_ACTION)
        .order_by(AuditEntry.id.desc())
        .limit(200)
    )
    wanted = set(keys) if keys is not None else None
    found = []
    for entry in db.session.scalars(query):
        if wanted is None or wanted & set(entry.changes or {}):
            found.append(entry)
        if len(found) >= limit:
            break
    return found
