"""Linked calendars (K1-K2), the busy cache read from them (K4) and events we wrote (K5).

A ``Connection`` is one account at one provider: a user's CalDAV login, ICS URL or personal
Microsoft account, or the organisation's Microsoft 365 tenant (no owner). Its secret (CalDAV
password, OAuth refresh token, client secret) is stored sealed with the key ring (K3).

A ``LinkedCalendar`` is one calendar of a connection, for one person: the person chooses
whether it counts for availability and whether it receives bookings. For the organisation
connection the sync creates one row per tenant user it covers.

``BusyBlock`` keeps only what availability needs: start, end, status, person, source, and a
title only where C2 allows one to be shown. ``RemoteEvent`` records each event written to a
person's calendar for a booking, so a retried delivery updates instead of duplicating.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import UTCDateTime, utcnow
from app.extensions import db
from app.security import keyring


class BusyStatus(StrEnum):
    BUSY = "busy"
    TENTATIVE = "tentative"  # counts as busy (A2)
    OUT_OF_OFFICE = "oof"
    FREE = "free"  # kept only so a sync can record it; never blocks a slot


BLOCKING_STATUSES = (BusyStatus.BUSY, BusyStatus.TENTATIVE, BusyStatus.OUT_OF_OFFICE)
# The same as SQL with literal values: the condition of the partial index of blocking blocks.
# SQLite uses a partial index only for a query that repeats its condition (availability does).
BLOCKING_SQL = "status IN (" + ", ".join(f"'{s.value}'" for s in BLOCKING_STATUSES) + ")"


class BusyBlock(db.Model):
    __tablename__ = "busy_blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=BusyStatus.BUSY)
    source: Mapped[str] = mapped_column(String(80))  # e.g. "caldav:3", "graph-org", "demo"
    title: Mapped[str | None] = mapped_column(String(300))  # only where C2 allows
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The calendar it came from (None for demo data) and the remote event's identity there
    # (CalDAV href, Graph event id, ICS UID): an incremental sync replaces by these two.
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("linked_calendars.id", ondelete="CASCADE"), index=True
    )
    event_key: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="busy_ends_after_start"),
        Index("ix_busy_blocks_person_period", "person_id", "starts_at", "ends_at"),
        Index(
            "ix_busy_blocks_blocking_period",
            "person_id",
            "starts_at",
            "ends_at",
            sqlite_where=text(BLOCKING_SQL),
            postgresql_where=text(BLOCKING_SQL),
        ),
    )


class ConnectionKind(StrEnum):
    CALDAV = "caldav"
    ICS = "ics"
    MICROSOFT = "microsoft"  # a person's own Microsoft account (delegated, K2)
    MICROSOFT_ORG = "microsoft-org"  # the organisation's tenant (client credentials, K1)
    GOOGLE = "google"  # a person's own Google account (OAuth refresh token, K2)
    GOOGLE_ORG = "google-org"  # Google Workspace (service account, domain-wide delegation, K1)


# The organisation-wide kinds, and the personal kind that outranks each for one person.
ORGANISATION_KINDS = (ConnectionKind.MICROSOFT_ORG, ConnectionKind.GOOGLE_ORG)
PERSONAL_KIND_OF = {
    ConnectionKind.MICROSOFT_ORG: ConnectionKind.MICROSOFT,
    ConnectionKind.GOOGLE_ORG: ConnectionKind.GOOGLE,
}


KIND_LABELS = {
    ConnectionKind.CALDAV: "CalDAV",
    ConnectionKind.ICS: "ICS subscription",
    ConnectionKind.MICROSOFT: "Microsoft account",
    ConnectionKind.MICROSOFT_ORG: "Microsoft 365 (organisation)",
    ConnectionKind.GOOGLE: "Google account",
    ConnectionKind.GOOGLE_ORG: "Google Workspace (organisation)",
}


class Connection(db.Model):
    __tablename__ = "calendar_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # The person who linked it; None for the organisation's Microsoft 365 connection.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str | None] = mapped_column(String(2000))  # CalDAV server or ICS feed
    username: Mapped[str | None] = mapped_column(String(300))  # CalDAV login / account email
    tenant_id: Mapped[str | None] = mapped_column(String(100))
    client_id: Mapped[str | None] = mapped_column(String(200))
    # Sealed with the key ring (app.security); never read this column directly.
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    # Google Workspace: the lower-case domains whose people the organisation link covers.
    domains: Mapped[list[str] | None] = mapped_column(JSON)

    # Health (K4/K6)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    needs_relink: Mapped[bool] = mapped_column(Boolean, default=False)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    calendars: Mapped[list[LinkedCalendar]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", order_by="LinkedCalendar.id"
    )

    def reveal_secret(self) -> str | None:
        """The plaintext secret, for handing to a provider and nothing else. Reading changes
        nothing, so it is safe outside a writing transaction."""
        if not self.secret_sealed:
            return None
        return keyring().decrypt(self.secret_sealed)

    def reseal_if_old(self) -> bool:
        """Re-seal a secret that an older key sealed with the newest key (lazy rotation, K3);
        the sync calls this in its writing transaction. True when it changed."""
        ring = keyring()
        if not self.secret_sealed or not ring.needs_rotation(self.secret_sealed):
            return False
        self.secret_sealed = ring.encrypt(ring.decrypt(self.secret_sealed))
        return True

    def store_secret(self, plaintext: str | None) -> None:
        self.secret_sealed = keyring().encrypt(plaintext) if plaintext else None

    def __repr__(self) -> str:  # never the secret, even in a debugger or a log line
        return f"<Connection {self.id} {self.kind} user={self.user_id}>"

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def is_organisation(self) -> bool:
        return self.kind in ORGANISATION_KINDS

    @property
    def source(self) -> str:
        """The ``BusyBlock.source`` of its data; C2 titles depend on the "graph-org" prefix."""
        if self.kind == ConnectionKind.MICROSOFT_ORG:
            return f"graph-org:{self.id}"
        if self.kind == ConnectionKind.MICROSOFT:
            return f"graph:{self.id}"
        if self.kind == ConnectionKind.GOOGLE_ORG:
            return f"google-org:{self.id}"
        return f"{self.kind}:{self.id}"


class LinkedCalendar(db.Model):
    __tablename__ = "linked_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("calendar_connections.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    remote_id: Mapped[str] = mapped_column(String(1000))  # href, Graph id, feed URL, email
    name: Mapped[str] = mapped_column(String(300), default="")
    use_for_availability: Mapped[bool] = mapped_column(Boolean, default=True)
    receives_bookings: Mapped[bool] = mapped_column(Boolean, default=False)
    writable: Mapped[bool] = mapped_column(Boolean, default=True)
    # Provider cursor for incremental reads: CalDAV sync-token, Graph delta link, ICS validators.
    sync_cursor: Mapped[str | None] = mapped_column(Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The end of the window the last full read covered. Incremental reads report changed
    # events only, so recurring events are expanded no further than this: once the sync
    # window moves past it, the next read is a full one.
    covered_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why this one calendar could not be read at the last sync (None: it could). The
    # organisation's link shows it to the person it belongs to (e.g. no delegation for them).
    last_error: Mapped[str | None] = mapped_column(Text)

    connection: Mapped[Connection] = relationship(back_populates="calendars")

    __table_args__ = (
        UniqueConstraint("connection_id", "person_id", "remote_id", name="uq_linked_calendar"),
    )


class RemoteEvent(db.Model):
    """An event Slotbook wrote into a person's calendar for a booking (K5)."""

    __tablename__ = "remote_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("linked_calendars.id", ondelete="SET NULL")
    )
    remote_id: Mapped[str] = mapped_column(String(1000))
    etag: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str] = mapped_column(String(300), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tentative: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    calendar: Mapped[LinkedCalendar | None] = relationship()

    __table_args__ = (UniqueConstraint("booking_id", "person_id", name="uq_remote_event"),)
