"""The visitor's contact form: plain validation (CSRF is checked app-wide by CSRFProtect)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

HONEYPOT = "website"  # the field bots fill in; labelled "Leave this empty" and hidden
PHONE_RE = re.compile(r"^\+?[0-9 ()\-]{6,25}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class ContactForm:
    name: str = ""
    email: str = ""
    phone: str = ""
    start: datetime | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def needs(required: str) -> tuple[bool, bool]:
    """(email required, phone required) for the setting's value."""
    return required in {"email", "both"}, required in {"phone", "both"}


def parse(form, required: str) -> ContactForm:
    data = ContactForm(
        name=(form.get("name") or "").strip()[:200],
        email=(form.get("email") or "").strip()[:254],
        phone=(form.get("phone") or "").strip()[:40],
    )
    need_email, need_phone = needs(required)
    if not data.name:
        data.errors["name"] = "Enter your name."
    if data.email and not EMAIL_RE.match(data.email):
        data.errors["email"] = "Enter a valid email address."
    elif need_email and not data.email:
        data.errors["email"] = "Enter your email address."
    if data.phone and not PHONE_RE.match(data.phone):
        data.errors["phone"] = "Enter a valid phone number."
    elif need_phone and not data.phone:
        data.errors["phone"] = "Enter your phone number."
    try:
        start = datetime.fromisoformat(form.get("start") or "")
        if start.tzinfo is None:
            raise ValueError
        data.start = start.astimezone(UTC)
    except ValueError:
        data.errors["start"] = "Choose a time."
    return data


def is_bot(form) -> bool:
    return bool((form.get(HONEYPOT) or "").strip())
