"""Polls of proposed meeting slots (A5): options, invitees (tokenised links) and answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.accounts.models import User
from app.bookings.models import Booking, BookingType
from app.database import UTCDateTime, utcnow
from app.extensions import db


class PollStatus(StrEnum):
    OPEN = "open"
    BOOKED = "booked"
    CLOSED = "closed"


class Answer(StrEnum):
    YES = "yes"
    MAYBE = "maybe"
    NO = "no"


class Poll(db.Model):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    organiser_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    booking_type_id: Mapped[int] = mapped_column(ForeignKey("booking_types.id"))
    status: Mapped[str] = mapped_column(String(20), default=PollStatus.OPEN)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organiser: Mapped[User] = relationship(foreign_keys=[organiser_id])
    booking_type: Mapped[BookingType] = relationship()
    booking: Mapped[Booking | None] = relationship()
    options: Mapped[list[PollOption]] = relationship(
        back_populates="poll", cascade="all, delete-orphan", order_by="PollOption.starts_at"
    )
    invitees: Mapped[list[PollInvitee]] = relationship(
        back_populates="poll", cascade="all, delete-orphan", order_by="PollInvitee.id"
    )

    def is_open(self, now: datetime) -> bool:
        return self.status == PollStatus.OPEN and now < self.expires_at


class PollOption(db.Model):
    __tablename__ = "poll_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)

    poll: Mapped[Poll] = relationship(back_populates="options")


class PollInvitee(db.Model):
    """Someone asked to answer: an internal user (held by the booking) or an outside email
    (a guest). Only the hash of their link's token is stored."""

    __tablename__ = "poll_invitees"

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    poll: Mapped[Poll] = relationship(back_populates="invitees")
    user: Mapped[User | None] = relationship()
    answers: Mapped[list[PollAnswer]] = relationship(
        back_populates="invitee", cascade="all, delete-orphan"
    )

    @property
    def label(self) -> str:
        return self.name or self.email


class PollAnswer(db.Model):
    __tablename__ = "poll_answers"
    __table_args__ = (UniqueConstraint("invitee_id", "option_id", name="uq_poll_answers_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invitee_id: Mapped[int] = mapped_column(ForeignKey("poll_invitees.id"), index=True)
    option_id: Mapped[int] = mapped_column(ForeignKey("poll_options.id"))
    answer: Mapped[str] = mapped_column(String(10))

    invitee: Mapped[PollInvitee] = relationship(back_populates="answers")
    option: Mapped[PollOption] = relationship()
