"""Small helpers for templates: times in the viewer's zone, with the zone named."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask_login import current_user


def local_time(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    """Format a UTC datetime in the viewer's time zone, naming the zone (e.g. "BST")."""
    if value is None:
        return ""
    zone = (
        current_user.zone if getattr(current_user, "is_authenticated", False) else ZoneInfo("UTC")
    )
    local = value.astimezone(zone)
    return f"{local.strftime(fmt)} {local.tzname()}"


def audit_value(value: object) -> str:
    """Audit values as people read them: ISO instants in the viewer's zone, lists joined."""
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(audit_value(v) for v in value)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        try:
            return local_time(datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)
