"""What the public pages add to a booking: the visitor's contact, the confirmation state (S4)
and the tokens of the private links (S5).

Kept in their own tables so ``bookings/`` stays unaware of the public flow: a booking made by a
visitor has exactly one ``PublicBooking`` row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.bookings.models import Booking
from app.database import UTCDateTime, utcnow
from app.extensions import db


class PublicBooking(db.Model):
    """The visitor's contact and confirmation state for one publicly made booking."""

    __tablename__ = "public_bookings"

    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True
    )
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str | None] = mapped_column(String(254), index=True)
    contact_phone: Mapped[str | None] = mapped_column(String(40), index=True)
    visitor_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    pending_confirmation: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    confirm_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    booking: Mapped[Booking] = relationship(lazy="joined")


class LinkToken(db.Model):
    """One private link: only the SHA-256 of the token is stored (S5)."""

    __tablename__ = "public_link_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    booking: Mapped[Booking] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("purpose IN ('manage','confirm')", name="link_purpose_known"),
    )
