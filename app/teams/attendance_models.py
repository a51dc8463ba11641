"""What the attendance job found for one Teams booking (T3, seed 001).

A separate row rather than columns on the booking: the nightly job owns it (tries, the people
Graph reported, why it needs review) and staff's review changes it, without either of them
taking part in the booking's own life (sequence, notifications, write-back).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from app.accounts.models import User
from app.bookings.models import Booking
from app.database import UTCDateTime, utcnow
from app.extensions import db


class AttendanceState(StrEnum):
    PENDING = "pending"  # the meeting has not ended, or its reports are not ready yet
    RECORDED = "recorded"  # off-the-job minutes were recorded (by the job or by staff)
    NEEDS_REVIEW = "needs_review"  # staff must confirm or correct (another day, no report…)
    NONE = "none"  # the learner did not join: nothing is recorded


class MeetingAttendance(db.Model):
    __tablename__ = "meeting_attendance"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(20), default=AttendanceState.PENDING, index=True)
    # Recorded off-the-job minutes (RECORDED), or what the rules would give (NEEDS_REVIEW).
    otj_minutes: Mapped[int | None] = mapped_column(Integer)
    # [{"email", "name", "minutes", "organiser"}] as the attendance records reported them.
    people: Mapped[list] = mapped_column(JSON, default=list)
    meeting_minutes: Mapped[int | None] = mapped_column(Integer)  # the whole meeting, per Graph
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it really started
    reason: Mapped[str] = mapped_column(Text, default="")  # for people: why this state
    tries: Mapped[int] = mapped_column(Integer, default=0)  # nights the reports were not ready
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    booking: Mapped[Booking] = relationship(
        backref=backref("attendance", uselist=False, passive_deletes=True)
    )
    reviewed_by: Mapped[User | None] = relationship()

    __table_args__ = (
        CheckConstraint(
            "state IN ('pending','recorded','needs_review','none')", name="state_known"
        ),
        CheckConstraint("otj_minutes IS NULL OR otj_minutes >= 0", name="minutes_not_negative"),
    )
