"""Busy time read from people's linked calendars (the busy cache, K4).

Issue 5 fills this table from Microsoft 365, CalDAV and ICS feeds; availability reads it.
Only what availability needs is kept: start, end, status, person, source, and a title only
where C2 allows one to be shown.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import UTCDateTime, utcnow
from app.extensions import db


class BusyStatus(StrEnum):
    BUSY = "busy"
    TENTATIVE = "tentative"  # counts as busy (A2)
    OUT_OF_OFFICE = "oof"
    FREE = "free"  # kept only so a sync can record it; never blocks a slot


BLOCKING_STATUSES = (BusyStatus.BUSY, BusyStatus.TENTATIVE, BusyStatus.OUT_OF_OFFICE)


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

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="busy_ends_after_start"),
        Index("ix_busy_blocks_person_period", "person_id", "starts_at", "ends_at"),
    )
