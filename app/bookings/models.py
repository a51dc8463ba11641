"""Booking types (B1), bookings (B2), attendees (B3), holds (B5) and the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import Group, User
from app.database import UTCDateTime, utcnow
from app.extensions import db


class Status(StrEnum):
    PROVISIONAL = "provisional"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"  # the visitor did not come within the maximum waiting time


# Bookings in these states keep their people's time held (the agent waited for a no-show).
HOLDING_STATUSES = frozenset(
    {Status.PROVISIONAL, Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW}
)


class LocationMode(StrEnum):
    FACE_TO_FACE = "face_to_face"
    REMOTE = "remote"
    TEAMS = "teams"


class AvailabilitySource(StrEnum):
    DEFAULT = "default"  # the planning group, else the learner's assigned agent
    ASSIGNED_AGENT = "assigned_agent"
    GROUP = "group"


class AttendeeRole(StrEnum):
    AGENT = "agent"
    LEARNER = "learner"
    EMPLOYER = "employer"
    MENTOR = "mentor"
    ASSESSOR = "assessor"
    GUEST = "guest"


class BookingType(db.Model):
    __tablename__ = "booking_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer, default=60)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    location_modes: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["face_to_face"])
    # The mode a new booking starts with (None: the first allowed one), and the address or
    # meeting details a face-to-face or remote booking of this type carries unless changed.
    default_location_mode: Mapped[str | None] = mapped_column(String(20))
    location_detail: Mapped[str] = mapped_column(String(500), default="")
    # Per-mode details, for a booking meeting in a mode other than the default (a visitor
    # choosing remote on a face-to-face type): the address, and the meeting link or dial-in.
    face_to_face_detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    remote_detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    bookable_by: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["staff"])
    availability_source: Mapped[str] = mapped_column(String(20), default=AvailabilitySource.DEFAULT)
    availability_group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"))
    # Booking window (A4); None means "use the organisation default".
    minimum_notice_minutes: Mapped[int | None] = mapped_column(Integer)
    earliest_day_public: Mapped[int | None] = mapped_column(Integer)
    earliest_day_staff: Mapped[int | None] = mapped_column(Integer)
    disabled_window_minutes: Mapped[int | None] = mapped_column(Integer)
    horizon_days: Mapped[int | None] = mapped_column(Integer)
    weekends_enabled: Mapped[bool | None] = mapped_column(Boolean)
    max_per_day: Mapped[int | None] = mapped_column(Integer)
    slot_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    colour: Mapped[str] = mapped_column(String(7), default="#2457a7")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Off-the-job training a booking of this type is planned to give (seed 001): the default
    # for new bookings; attendance is only turned into hours where a plan exists.
    planned_otj_minutes: Mapped[int | None] = mapped_column(Integer)
    # A booking whose hours were verified from Teams attendance is then marked completed.
    complete_on_verified: Mapped[bool] = mapped_column(Boolean, default=False)

    availability_group: Mapped[Group | None] = relationship()

    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint(
            "buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="buffers_not_negative"
        ),
    )

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


class Booking(db.Model):
    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable iCalendar UID: every version of this booking is the same calendar event.
    uid: Mapped[str] = mapped_column(String(64), unique=True, default=lambda: f"{uuid.uuid4()}")
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    booking_type_id: Mapped[int] = mapped_column(ForeignKey("booking_types.id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location_mode: Mapped[str] = mapped_column(String(20), default=LocationMode.FACE_TO_FACE)
    location_detail: Mapped[str] = mapped_column(String(500), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    learner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rebook_of_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    rebook_kind: Mapped[str | None] = mapped_column(String(10))
    planned_otj_minutes: Mapped[int | None] = mapped_column(Integer)  # the type's unless changed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    booking_type: Mapped[BookingType] = relationship(lazy="joined")
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    learner: Mapped[User | None] = relationship(foreign_keys=[learner_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    rebook_of: Mapped[Booking | None] = relationship(remote_side=[id])
    attendees: Mapped[list[Attendee]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", order_by="Attendee.id"
    )
    holds: Mapped[list[Hold]] = relationship(back_populates="booking", cascade="all, delete-orphan")
    audit_entries: Mapped[list[AuditEntry]] = relationship(
        back_populates="booking", order_by="AuditEntry.id"
    )

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(
            "status IN ('provisional','confirmed','rejected','cancelled','completed','no_show')",
            name="status_known",
        ),
    )

    @property
    def internal_people(self) -> list[User]:
        return [a.user for a in self.attendees if a.user is not None]

    def involves(self, user: User) -> bool:
        """Whether the user is part of this booking (own it, attend it, made it)."""
        if user.id in {self.owner_id, self.learner_id, self.created_by_id}:
            return True
        return any(a.user_id == user.id for a in self.attendees)


class Attendee(db.Model):
    """An internal user (``user_id``) or an external guest (``email``)."""

    __tablename__ = "attendees"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default=AttendeeRole.GUEST)

    booking: Mapped[Booking] = relationship(back_populates="attendees")
    user: Mapped[User | None] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("booking_id", "user_id", name="uq_attendees_booking_user"),
        UniqueConstraint("booking_id", "email", name="uq_attendees_booking_email"),
        CheckConstraint("(user_id IS NOT NULL) OR (email IS NOT NULL)", name="user_or_email"),
        # A booking's attendees in the order they were added (feeds name them so), and the
        # bookings a person attends (a feed lists them): see the migration b8d4f2a6c1e3.
        Index("ix_attendees_booking_order", "booking_id", "id"),
        Index("ix_attendees_user_id", "user_id"),
    )

    @property
    def display_name(self) -> str:
        if self.user is not None:
            return self.user.name
        return self.name or self.email or "Guest"


class Hold(db.Model):
    """One internal person's time taken by one booking, buffers included (B5).

    PostgreSQL forbids two active overlapping holds for a person with an exclusion constraint
    created in the migration (SQLAlchemy cannot express it portably); SQLite relies on the
    serialised re-check in ``bookings.service``.
    """

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    booking: Mapped[Booking] = relationship(back_populates="holds")

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="hold_ends_after_start"),
        UniqueConstraint("booking_id", "person_id", name="uq_holds_booking_person"),
        Index("ix_holds_person_period", "person_id", "starts_at", "ends_at"),
    )


class AuditEntry(db.Model):
    """Who did what to a booking and when; ``changes`` maps field -> [old, new]."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    booking: Mapped[Booking | None] = relationship(back_populates="audit_entries")
    actor: Mapped[User | None] = relationship(lazy="joined")
