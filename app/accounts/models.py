"""Users, roles and permissions as rows, groups of agents, learner links, API tokens."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Table,
    Time,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.database import UTCDateTime, utcnow
from app.extensions import db

role_permissions = Table(
    "role_permissions",
    db.metadata,
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    Column("permission_id", ForeignKey("permissions.id", ondelete="CASCADE"), primary_key=True),
)

group_members = Table(
    "group_members",
    db.metadata,
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

PLANNING_GROUP_SLUG = "planning-meeting-bookings"


class Permission(db.Model):
    __tablename__ = "permissions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200))


class Role(db.Model):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    permissions: Mapped[list[Permission]] = relationship(
        secondary=role_permissions, lazy="selectin", order_by=Permission.code
    )

    @property
    def permission_codes(self) -> frozenset[str]:
        """The role's permission codes, built once per loaded role: ``User.can`` runs in
        loops (every booking on a calendar page). Changing ``permissions`` clears it."""
        codes = self.__dict__.get("_permission_codes")
        if codes is None:
            codes = frozenset(p.code for p in self.permissions)
            self.__dict__["_permission_codes"] = codes
        return codes


def _forget_permission_codes(role: Role, *_args) -> None:
    role.__dict__.pop("_permission_codes", None)


for _change in ("append", "remove", "set"):
    event.listen(Role.permissions, _change, _forget_permission_codes)
event.listen(Role, "refresh", _forget_permission_codes)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    # Changes at every logout and password reset, so old session cookies stop working.
    session_token: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    role: Mapped[Role] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    # Flask-Login: the session stores the rotating token, not the primary key.
    def get_id(self) -> str:
        return self.session_token

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def set_password(self, password: str) -> None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
        self.password_hash = generate_password_hash(password, method=method)
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def end_sessions(self) -> None:
        self.session_token = secrets.token_urlsafe(32)

    def can(self, permission: str) -> bool:
        return permission in self.role.permission_codes

    @property
    def is_staff(self) -> bool:
        return self.role.is_staff

    @property
    def is_learner(self) -> bool:
        """A learner (apprentice): books the types bookable by learners for themself (S7)."""
        return self.role.slug == "learner"

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


class Group(db.Model):
    """A named set of agents; the system group feeds planning-meeting availability (B6)."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    members: Mapped[list[User]] = relationship(secondary=group_members, order_by=User.name)


class LearnerProfile(db.Model):
    """A learner's people: assigned agent (EPA), workplace mentor, on-programme assessor."""

    __tablename__ = "learner_profiles"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    employer_name: Mapped[str | None] = mapped_column(String(200))
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assigned_agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    workplace_mentor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    assessor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], backref="learner_profile")
    assigned_agent: Mapped[User | None] = relationship(foreign_keys=[assigned_agent_id])
    workplace_mentor: Mapped[User | None] = relationship(foreign_keys=[workplace_mentor_id])
    assessor: Mapped[User | None] = relationship(foreign_keys=[assessor_id])
    employer: Mapped[User | None] = relationship(foreign_keys=[employer_id])


class PasswordToken(db.Model):
    """A single-use, expiring link to set a password: an invitation or a forgotten-password
    reset. Only the SHA-256 of the token is kept, so a database dump cannot be used to sign in."""

    __tablename__ = "password_tokens"
    __table_args__ = (
        UniqueConstraint("token_hash"),
        CheckConstraint("purpose IN ('invite','reset')", name="password_token_purpose"),
        Index("ix_password_tokens_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 is kept (the plaintext is shown once)."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120), default="CLI")
    token_hash: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class WorkingHoursRule(db.Model):
    """One weekly range of working time, in the person's own zone (A1)."""

    __tablename__ = "working_hours"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_valid"),
        CheckConstraint("end_time > start_time", name="hours_end_after_start"),
        Index("ix_working_hours_user", "user_id"),
    )


class DateOverride(db.Model):
    """Working time for one local date replacing the weekly rule; no times = a day off."""

    __tablename__ = "date_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    start_time: Mapped[time | None] = mapped_column(Time)
    end_time: Mapped[time | None] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint(
            "(start_time IS NULL AND end_time IS NULL) OR (end_time > start_time)",
            name="override_range_valid",
        ),
        Index("ix_date_overrides_user_day", "user_id", "day"),
    )


class TimeOff(db.Model):
    """A stretch of leave or absence, in UTC instants."""

    __tablename__ = "time_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="time_off_ends_after_start"),
        Index("ix_time_off_user_period", "user_id", "starts_at"),
    )
