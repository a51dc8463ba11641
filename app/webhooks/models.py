"""Webhook endpoints and the log of every delivery attempt to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import UTCDateTime, utcnow
from app.extensions import db
from app.security import keyring

# The events an endpoint can subscribe to, in the order the screens list them.
EVENTS: dict[str, str] = {
    "booking.created": "A booking is made",
    "booking.confirmed": "A booking is confirmed (approved)",
    "booking.rescheduled": "A booking moves to another time",
    "booking.cancelled": "A booking is cancelled",
    "booking.rejected": "A booking request is declined",
    "attendee.added": "Someone is added to a booking",
    "attendee.removed": "Someone is removed from a booking",
}


class Webhook(db.Model):
    """One receiving URL and the events it wants. The signing secret is sealed with the
    app's keys: the admin sees it once, when the endpoint is made, and never again."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_sealed: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", name="fk_webhooks_created_by")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by = relationship("User")
    deliveries = relationship(
        "WebhookDelivery",
        back_populates="webhook",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="WebhookDelivery.id.desc()",
    )

    def store_secret(self, plaintext: str) -> None:
        self.secret_sealed = keyring().encrypt(plaintext)

    def reveal_secret(self) -> str:
        """The signing secret, for the delivery that signs with it and nothing else."""
        return keyring().decrypt(self.secret_sealed)

    def wants(self, event: str) -> bool:
        return self.active and event in (self.events or [])

    def __repr__(self) -> str:  # never the secret
        return f"<Webhook {self.id} active={self.active}>"


class WebhookDelivery(db.Model):
    """One attempt to deliver one event to one endpoint: what came back, or what went wrong
    in words. ``outbox_id`` is the delivery id the receiver sees (``Slotbook-Delivery``),
    the same for every attempt of one event."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE", name="fk_webhook_deliveries_webhook"),
        index=True,
    )
    event: Mapped[str] = mapped_column(String(40))
    outbox_id: Mapped[int] = mapped_column(Integer, index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook = relationship("Webhook", back_populates="deliveries")

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
