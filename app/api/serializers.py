"""Rows as API JSON. Instants are ISO 8601 with the offset of the zone asked for."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from app.accounts.models import User
from app.bookings.models import Attendee, Booking, BookingType
from app.scheduling.slots import Slot


def iso(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat()


def booking_type_json(kind: BookingType) -> dict:
    return {
        "slug": kind.slug,
        "name": kind.name,
        "duration_minutes": kind.duration_minutes,
        "buffer_before_minutes": kind.buffer_before_minutes,
        "buffer_after_minutes": kind.buffer_after_minutes,
        "location_modes": list(kind.location_modes),
        "requires_approval": kind.requires_approval,
        "bookable_by": list(kind.bookable_by),
        "availability_source": str(kind.availability_source),
    }


def slot_json(slot: Slot, zone: ZoneInfo) -> dict:
    return {"start": iso(slot.start, zone), "end": iso(slot.end, zone), "people": list(slot.people)}


def person_json(user: User) -> dict:
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role.slug,
        "timezone": user.timezone,
    }


def attendee_json(attendee: Attendee) -> dict:
    return {
        "id": attendee.id,
        "user_id": attendee.user_id,
        "email": attendee.email,
        "name": attendee.display_name,
        "role": attendee.role,
    }


def booking_json(booking: Booking, zone: ZoneInfo) -> dict:
    return {
        "id": booking.id,
        "uid": booking.uid,
        "status": booking.status,
        "booking_type": booking.booking_type.slug,
        "title": booking.title,
        "description": booking.description,
        "start": iso(booking.starts_at, zone),
        "end": iso(booking.ends_at, zone),
        "location_mode": booking.location_mode,
        "location_detail": booking.location_detail,
        "owner": booking.owner_id,
        "learner": booking.learner_id,
        "attendees": [attendee_json(a) for a in booking.attendees],
        "rebook_of": booking.rebook_of_id,
        "created_at": iso(booking.created_at, zone),
        "updated_at": iso(booking.updated_at, zone),
        "sequence": booking.sequence,
    }
