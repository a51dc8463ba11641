"""What an external busy block is called on screen (SPEC C2, seed 000).

Events from the organisation's Microsoft 365 or Google Workspace link ("graph-org…",
"google-org…" sources) show as "Private
event", or with their real title when the owner turned on "Show event details". Every other
source (a personally linked Microsoft account, CalDAV, an ICS feed, demo data) shows as "Busy",
whatever the setting says: the person may have linked a private calendar.
"""

from __future__ import annotations

from app.connections.models import BusyStatus

ORGANISATION_SOURCE_PREFIX = "graph-org"
# Google Workspace's organisation link follows the same rule (issue [12]).
ORGANISATION_SOURCE_PREFIXES = (ORGANISATION_SOURCE_PREFIX, "google-org")
BUSY = "Busy"
PRIVATE = "Private event"
STATE_SUFFIX = {BusyStatus.TENTATIVE: "tentative", BusyStatus.OUT_OF_OFFICE: "out of office"}


def busy_title(source: str | None, title: str | None, show_details: bool) -> str:
    if not (source or "").startswith(ORGANISATION_SOURCE_PREFIXES):
        return BUSY
    if show_details and title and title.strip():
        return title.strip()
    return PRIVATE


def busy_label(status: str, source: str | None, title: str | None, show_details: bool) -> str:
    """The on-screen name of a busy block: the C2 title, with its state when that is not
    plain busy ("Busy (tentative)")."""
    label = busy_title(source, title, show_details)
    suffix = STATE_SUFFIX.get(status)
    return f"{label} ({suffix})" if suffix else label
