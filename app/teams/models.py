"""The online meeting of a Teams booking: one row per booking, kept while the booking lives.

Why a separate table: a booking's Teams meeting has its own life (waiting for the scheduling
window, scheduled in Graph, failed, cancelled) and its own Graph identifiers, which the
outbox handler and the attendance job both need without touching the booking row.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from app.accounts.models import User
from app.bookings.models import Booking
from app.database import UTCDateTime, utcnow
from app.extensions import db


class MeetingState(StrEnum):
    WAITING = "waiting"  # not yet inside the scheduling window (or its push is queued)
    SCHEDULED = "scheduled"  # the Graph event exists and its join URL is stored
    FAILED = "failed"  # Graph could not make it: the booking fell back to write-back + .ics
    CANCELLED = "cancelled"  # the booking was cancelled or moved away from Teams


class OnlineMeeting(db.Model):
    __tablename__ = "online_meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), unique=True
    )
    provider: Mapped[str] = mapped_column(String(20), default="teams")
    state: Mapped[str] = mapped_column(String(20), default=MeetingState.WAITING, index=True)
    # The mailbox the event lives in: the owner's email, or the one entered on the booking.
    organiser_email: Mapped[str] = mapped_column(String(320), default="")
    organiser_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    graph_event_id: Mapped[str | None] = mapped_column(String(500))
    # Found with onlineMeetings?$filter=JoinWebUrl eq '…' (the attendance reports hang off it).
    graph_online_meeting_id: Mapped[str | None] = mapped_column(String(500))
    join_url: Mapped[str | None] = mapped_column(Text)
    # When the meeting enters the scheduling window (the periodic job pushes it then).
    push_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(String(200))
    # Graph's transactionId: a retried create finds the first event instead of making another.
    transaction_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    booking: Mapped[Booking] = relationship(
        backref=backref("online_meeting", uselist=False, passive_deletes=True)
    )
    organiser_user: Mapped[User | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "state IN ('waiting','scheduled','failed','cancelled')", name="state_known"
        ),
    )
