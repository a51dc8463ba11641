"""iCalendar for people's calendar clients: invitations attached to emails (F2) and personal
feeds (F1). (Being written.)"""

from __future__ import annotations


def invitation(booking, *, method: str, sequence: int, recipient_email: str | None = None) -> str:
    """A VCALENDAR with METHOD ``method`` (REQUEST or CANCEL) and one VEVENT for ``booking``."""
    raise NotImplementedError


def feed(user, bookings) -> str:
    """A VCALENDAR listing ``bookings`` for ``user``'s subscription feed."""
    raise NotImplementedError
