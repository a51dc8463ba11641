"""The visitor's contact form: plain validation (CSRF is checked app-wide by CSRFProtect)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.guard import parse_instant

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


MAX_LENGTHS = {"name": 200, "email": 254, "phone": 40}


def parse(form, required: str) -> ContactForm:
    data = ContactForm(
        name=(form.get("name") or "").strip(),
        email=(form.get("email") or "").strip(),
        phone=(form.get("phone") or "").strip(),
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
    start = parse_instant(form.get("start"))
    if start is None:
        data.errors["start"] = "Choose a time."
    else:
        data.start = start.astimezone(UTC)
    _refuse_long(data)
    return data


def _refuse_long(data: ContactForm) -> None:
    """Over-long values are refused, not cut short: a visitor sees what is kept, and nothing
    hostile is stored in part."""
    for name, limit in MAX_LENGTHS.items():
        value = getattr(data, name)
        if len(value) > limit:
            data.errors[name] = f"Use at most {limit} characters."
            setattr(data, name, value[:limit])  # shown back in the form, never stored


def is_bot(form) -> bool:
    return bool((form.get(HONEYPOT) or "").strip())
