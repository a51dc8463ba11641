"""Export the whole organisation to one JSON document and import it into an empty database.

Why a table-driven design: the document is the database's own rows (ids kept), section by
section in foreign-key order, so an import rebuilds exactly what was exported and a second
export of the imported database is the same document. Each section names the columns it
leaves out; those are the secrets and the per-installation state that must never travel:

- password hashes and session tokens (people set a password through "Forgot your password?"
  or a new invitation; a fresh session token is made for each person on import);
- API tokens, feed tokens, public link tokens, password-reset tokens (hashes of secrets; not
  exported at all: people create new ones);
- poll invitees' link-token hashes (a new random one is stored, so old poll links stop working);
- calendar connections, linked calendars and their busy cache (encryption-sealed credentials;
  people link their calendars again), and the outbox (payloads may hold sealed links).

Every table in the metadata is either a section here or listed in ``NOT_EXPORTED`` with the
reason, and a test keeps it that way, so a new table cannot silently be left behind.

The service reads and writes through the session and never commits (the CLI does).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from app.database import MAX_ID, UTCDateTime, begin_write, utcnow
from app.extensions import db

FORMAT = "slotbook-export"
VERSION = 1


@dataclass(frozen=True)
class Section:
    """One table in the document: ``omit`` columns never leave the database; ``regenerate``
    fills those of them that are required with fresh values on import."""

    name: str
    table: str
    omit: frozenset[str] = frozenset()
    regenerate: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # A feature's table that a build may not have (it is then not in the document either).
    optional: bool = False


def sections() -> list[Section]:
    """The sections of this build, in foreign-key order."""
    return [s for s in SECTIONS if not s.optional or s.table in db.metadata.tables]


def _new_session_token() -> str:
    return secrets.token_urlsafe(32)


def _unguessable_hash() -> str:
    """A hash of a random token nobody holds: the poll link it stood for no longer opens."""
    return hashlib.sha256(secrets.token_bytes(32)).hexdigest()


# Foreign-key order: every section refers only to sections before it (or to itself).
SECTIONS: tuple[Section, ...] = (
    Section("settings", "org_settings"),
    Section("permissions", "permissions"),
    Section("roles", "roles"),
    Section("role_permissions", "role_permissions"),
    Section(
        "people",
        "users",
        omit=frozenset({"password_hash", "session_token"}),
        regenerate={"session_token": _new_session_token},
    ),
    Section("groups", "groups"),
    Section("group_members", "group_members"),
    Section("learner_profiles", "learner_profiles"),
    Section("working_hours", "working_hours"),
    Section("date_overrides", "date_overrides"),
    Section("time_off", "time_off"),
    Section("notification_rule_channels", "notification_rule_channels"),
    Section("booking_types", "booking_types"),
    Section("bookings", "bookings"),
    Section("attendees", "attendees"),
    Section("holds", "holds"),
    Section("audit_entries", "audit_entries"),
    # Teams meetings: join links and Graph ids, so imported bookings keep their meetings.
    Section("online_meetings", "online_meetings"),
    Section("public_bookings", "public_bookings"),
    # Teams attendance → off-the-job minutes (T3): what an auditor is shown, so it travels.
    Section("meeting_attendance", "meeting_attendance"),
    Section("polls", "polls"),
    Section("poll_options", "poll_options"),
    Section(
        "poll_invitees",
        "poll_invitees",
        omit=frozenset({"token_hash"}),
        regenerate={"token_hash": _unguessable_hash},
    ),
    Section("poll_answers", "poll_answers"),
    # The outbox row behind a notification is not exported, so its id is not either.
    Section("notifications", "notifications", omit=frozenset({"source_message_id"})),
    Section("branding_assets", "branding_assets", optional=True),  # the logo's bytes, base64
)

NOT_EXPORTED: dict[str, str] = {
    "api_tokens": "hashes of secrets; create new tokens with `flask tokens create`",
    "password_tokens": "hashes of secrets; people use Forgot your password? or an invitation",
    "feed_tokens": "hashes of secrets; people get a new feed link",
    "public_link_tokens": "hashes of secrets; visitors' old manage links stop working",
    "calendar_connections": "encryption-sealed credentials; people link their calendars again",
    "linked_calendars": "belong to calendar connections",
    "busy_blocks": "a cache of linked calendars, refilled by the next sync",
    "remote_events": "a cache of linked calendars, refilled by the next sync",
    "outbox_messages": "pending deliveries whose payloads may hold sealed links",
    "webhooks": "each holds a sealed signing secret; register the receivers again",
    "webhook_deliveries": "the delivery log of webhooks that are not exported",
    "alembic_version": "the schema revision, recorded as the document's `schema`",
}

# Tables a freshly set-up database may already fill (built-in roles and their permissions,
# settings, channel choices): the import replaces them. Any row in another section's table
# means the database is in use, and the import refuses.
REPLACEABLE = frozenset({"org_settings", "permissions", "roles", "role_permissions"}) | {
    "notification_rule_channels"
}


class TransferError(Exception):
    """The file or the database is not fit for this import; nothing was changed."""


@dataclass
class ImportSummary:
    """Rows imported per section, in document order."""

    counts: dict[str, int]


# --- values -----------------------------------------------------------------------------


def _iso_utc(value: datetime) -> str:
    text_value = value.astimezone(UTC).isoformat()
    return text_value.removesuffix("+00:00") + "Z"


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _kind(column) -> str:
    """The value kind of a column, as the document spells it in error messages."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "datetime"
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Integer | SmallInteger):
        return "integer"
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Time):
        return "time"
    if isinstance(kind, JSON):
        return "json"
    if isinstance(kind, LargeBinary):
        return "base64"
    if isinstance(kind, String | Text):
        return "text"
    raise TypeError(f"no export rule for {column.table.name}.{column.name} ({kind!r})")


def _from_json(where: str, column, value: Any) -> Any:
    """Check one value against its column and turn it into what the column stores."""
    if value is None:
        if not column.nullable:
            raise TransferError(f"{where}: a value is required.")
        return None
    kind = _kind(column)
    if kind == "json":
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise TransferError(f"{where}: expected true or false, got {json.dumps(value)[:40]}.")
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TransferError(f"{where}: expected a whole number, got {json.dumps(value)[:40]}.")
        if not -MAX_ID - 1 <= value <= MAX_ID:
            raise TransferError(f"{where}: {value} is out of range.")
        return value
    if not isinstance(value, str):
        raise TransferError(f"{where}: expected {kind} text, got {json.dumps(value)[:40]}.")
    if "\x00" in value:
        raise TransferError(f"{where}: text may not contain NUL characters.")
    if kind == "text":
        length = getattr(column.type, "length", None)
        if length is not None and len(value) > length:
            raise TransferError(f"{where}: longer than {length} characters.")
        return value
    try:
        if kind == "datetime":
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None or parsed.utcoffset() is None:
                raise ValueError("no UTC offset")
            return parsed.astimezone(UTC)
        if kind == "base64":
            return base64.b64decode(value, validate=True)
        if kind == "date":
            return date.fromisoformat(value)
        return time.fromisoformat(value)
    except ValueError as exc:  # binascii.Error is a ValueError too
        raise TransferError(f"{where}: {value[:40]!r} is not a valid {kind} ({exc}).") from exc


# --- export -----------------------------------------------------------------------------


def _table(section: Section) -> Table:
    return db.metadata.tables[section.table]


def _columns(section: Section) -> list:
    return [c for c in _table(section).columns if c.name not in section.omit]


def _order(table: Table) -> list:
    return list(table.primary_key.columns)


def schema_revision() -> str | None:
    """The Alembic revision of the connected database (None: not made by migrations)."""
    conn = db.session.connection()
    if not inspect(conn).has_table("alembic_version"):
        return None
    revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(revisions)) or None


def export_document(progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Read the organisation into one JSON-ready dict: sections of rows ordered by primary key.

    Everything is read in one transaction (PostgreSQL: repeatable read), so a booking made
    while exporting is either wholly in the document or not at all.
    """
    session = db.session()
    if not session.in_transaction() and db.engine.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    document: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _iso_utc(utcnow()),
        "schema": schema_revision(),
    }
    for section in sections():
        table = _table(section)
        columns = _columns(section)
        result = session.execute(select(*columns).order_by(*_order(table)))
        rows = [{c.name: _to_json(v) for c, v in zip(columns, row, strict=True)} for row in result]
        document[section.name] = rows
        if progress:
            progress(section.name, len(rows))
    return document


def dump(document: dict[str, Any]) -> str:
    """The document as text: sorted keys and fixed indentation, so equal data is equal text."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


# --- import -----------------------------------------------------------------------------


def parse(raw: str | bytes) -> dict[str, Any]:
    """Decode a file's text and check its envelope (format and version)."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TransferError(f"The file is not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TransferError(f"The file is not a Slotbook export (its format is not {FORMAT!r}).")
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):
        raise TransferError(
            f"The file is export version {json.dumps(version)}; this Slotbook reads version "
            f"{VERSION} only. Export again with the same Slotbook release as this one."
        )
    return document


def _validate(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Check every section, row, column and reference; return rows ready to insert.

    All of it before the first write, so a bad file is refused with the first problem named
    and the database is not touched.
    """
    expected = {"format", "version", "exported_at", "schema"} | {s.name for s in sections()}
    for section in sections():  # a build without the feature wrote none of its rows
        if section.optional:
            document.setdefault(section.name, [])
    missing = sorted(expected - document.keys())
    if missing:
        noun = "section" if len(missing) == 1 else "sections"
        raise TransferError(f"The file has no {', '.join(missing)} {noun}.")
    unknown = sorted(document.keys() - expected)
    if unknown:
        raise TransferError(f"The file has unknown section(s): {', '.join(unknown)}.")
    ours = schema_revision()
    theirs = document["schema"]
    if ours and theirs and ours != theirs:
        raise TransferError(
            f"The file was exported from database schema {theirs}; this database is at "
            f"{ours}. Run `flask db upgrade` on both to the same Slotbook release first."
        )

    rows_by_table: dict[str, list[dict[str, Any]]] = {}
    keys_by_table: dict[str, set] = {}
    for section in sections():
        table = _table(section)
        columns = {c.name: c for c in _columns(section)}
        rows = document[section.name]
        if not isinstance(rows, list):
            raise TransferError(f"{section.name}: expected a list of rows.")
        pk = [c.name for c in table.primary_key.columns]
        seen: set = set()
        prepared = []
        for index, row in enumerate(rows):
            where = f"{section.name}[{index}]"
            if not isinstance(row, dict):
                raise TransferError(f"{where}: expected an object.")
            absent = sorted(columns.keys() - row.keys())
            if absent:
                raise TransferError(f"{where}: missing {', '.join(absent)}.")
            extra = sorted(row.keys() - columns.keys())
            if extra:
                raise TransferError(f"{where}: unknown field(s) {', '.join(extra)}.")
            values = {
                name: _from_json(f"{where}.{name}", column, row[name])
                for name, column in columns.items()
            }
            key = tuple(values[name] for name in pk)
            if key in seen:
                shown = ", ".join(f"{n}={v}" for n, v in zip(pk, key, strict=True))
                raise TransferError(f"{where}: duplicate {shown}.")
            seen.add(key)
            for name, make in section.regenerate.items():
                values[name] = make()
            prepared.append(values)
        rows_by_table[section.table] = prepared
        keys_by_table[section.table] = seen

    _check_settings(rows_by_table["org_settings"])

    # References: every id a row points at is in the file (clearer than a database error).
    for section in sections():
        for column in _columns(section):
            for fk in column.foreign_keys:
                target = fk.column.table.name
                if target not in keys_by_table or len(fk.column.table.primary_key.columns) != 1:
                    continue
                known = keys_by_table[target]
                for index, values in enumerate(rows_by_table[section.table]):
                    value = values[column.name]
                    if value is not None and (value,) not in known:
                        raise TransferError(
                            f"{section.name}[{index}].{column.name}: refers to {target} "
                            f"{value}, which is not in the file."
                        )
    return rows_by_table


def _check_settings(rows: list[dict[str, Any]]) -> None:
    """Settings get the same typed checks as the settings screens, so a file cannot store a
    value the product would choke on. A key this release does not define is kept as it was
    (the source database had it too), never interpreted."""
    from app.admin.settings import SETTINGS, SettingError

    for index, row in enumerate(rows):
        definition = SETTINGS.get(row["key"])
        if definition is None:
            continue
        try:
            row["value"] = definition.validate(row["value"])
        except SettingError as exc:
            raise TransferError(f"settings[{index}] ({row['key']}): {exc}") from exc


def _occupied_tables() -> dict[str, int]:
    counts: dict[str, int] = {}
    for section in sections():
        if section.table in REPLACEABLE:
            continue
        table = _table(section)
        count = db.session.scalar(select(func.count()).select_from(table))
        if count:
            counts[section.name] = count
    return counts


def _self_references(table: Table) -> list[str]:
    return [c.name for c in table.columns if any(fk.column.table is table for fk in c.foreign_keys)]


def _reset_sequences() -> None:
    """PostgreSQL: move each id sequence past the imported ids so new rows don't collide."""
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        return  # SQLite hands out max(rowid) + 1 by itself
    for section in sections():
        table = _table(section)
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or pk[0].name != "id" or not isinstance(pk[0].type, Integer):
            continue
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
            )
        )


def import_document(
    document: dict[str, Any], progress: Callable[[str, int], None] | None = None
) -> ImportSummary:
    """Load a parsed document into this empty database, keeping every id.

    Refuses a database that holds people, booking types or any other organisation data. Only
    flushes: the caller commits, or rolls back on any error, so the import is all or nothing.
    """
    begin_write()
    rows_by_table = _validate(document)
    occupied = _occupied_tables()
    if occupied:
        found = ", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in occupied.items())
        raise TransferError(
            f"This database is not empty ({found}). Import only into a new database that has "
            "had `flask db upgrade` and nothing else."
        )
    session = db.session()
    conn = session.connection()
    # Built-in roles, permissions and settings a setup step may have made are replaced by the
    # file's, in reverse dependency order.
    for section in reversed(sections()):
        if section.table in REPLACEABLE:
            conn.execute(_table(section).delete())
    counts: dict[str, int] = {}
    for section in sections():
        table = _table(section)
        rows = rows_by_table[section.table]
        selfrefs = _self_references(table)
        later = []
        if selfrefs:
            later = [r for r in rows if any(r[c] is not None for c in selfrefs)]
            rows = [{**r, **dict.fromkeys(selfrefs)} for r in rows]
        # Columns with an ``onupdate`` (updated_at) are given their file value, or the
        # second pass would stamp them with the import time.
        kept = [*selfrefs, *(c.name for c in table.columns if c.onupdate is not None)]
        try:
            if rows:
                conn.execute(table.insert(), rows)
            for row in later:
                conn.execute(
                    table.update().where(table.c.id == row["id"]).values({c: row[c] for c in kept})
                )
        except IntegrityError as exc:
            # The rules only the database states (an end before a start, a weekday of 9, two
            # overlapping holds, a repeated email): the file breaks one; name it.
            reason = str(exc.orig).strip().splitlines()[0]
            raise TransferError(f"{section.name}: the database refused a row ({reason}).") from exc
        counts[section.name] = len(rows)
        if progress:
            progress(section.name, len(rows))
    _reset_sequences()
    session.flush()
    return ImportSummary(counts)
