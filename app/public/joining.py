"""When a visitor may join a remote or Teams meeting from their manage page (setting
"Join early"): the button appears that many minutes before the start, never earlier, so a
link shared too soon does not open an empty meeting room."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from app.admin.settings import get_setting
from app.bookings.models import Booking, LocationMode, Status
from app.database import utcnow

ONLINE_MODES = {LocationMode.REMOTE, LocationMode.TEAMS}


@dataclass(frozen=True)
class Joining:
    link: str  # the meeting link, shown only while ``open``
    opens_at: datetime  # UTC
    open: bool


def joining(booking: Booking, now: datetime | None = None) -> Joining | None:
    """The join state of an online booking with a meeting link; None when there is nothing to
    join (face to face, no link, not confirmed, or already over)."""
    now = now or utcnow()
    link = (booking.location_detail or "").strip()
    if booking.location_mode == LocationMode.TEAMS:  # a Teams meeting's own join link
        meeting = getattr(booking, "online_meeting", None)
        if meeting is not None:
            scheduled = meeting.state == "scheduled"
            link = (meeting.join_url or "").strip() if scheduled else ""
    if (
        booking.location_mode not in ONLINE_MODES
        or not link.startswith("https://")
        or booking.status != Status.CONFIRMED
        or booking.ends_at <= now
    ):
        return None
    opens_at = booking.starts_at - timedelta(minutes=int(get_setting("join_early_minutes")))
    return Joining(link=link, opens_at=opens_at, open=now >= opens_at)
