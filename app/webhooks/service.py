"""Webhook rules: which URLs may receive events, the signing secret, the signature, and the
booking summary a receiver gets. Routes and the outbox handler call these; nothing here
commits (one commit per request or outbox step, at the edge)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from app.accounts.models import User
from app.connections import http
from app.connections.providers.base import ProviderError, UnsafeURL
from app.extensions import db
from app.webhooks.models import EVENTS, Webhook

MAX_URL_LENGTH = 2000
SIGNATURE_VERSION = "v1"


class WebhookError(ValueError):
    """A change an admin asked for that cannot be made; the message says why, in words."""


def private_urls_allowed() -> bool:
    """The same switch that lets calendar URLs reach the local network
    (``SLOTBOOK_ALLOW_PRIVATE_URLS``): off, webhooks go only to public HTTPS servers."""
    return bool(current_app.config.get("SLOTBOOK_ALLOW_PRIVATE_URLS"))


def check_url(url: str) -> str:
    """The URL, trimmed, if webhooks may be sent to it; ``WebhookError`` saying why not.

    HTTPS only, so the body and signature cannot be read or replayed on the way, unless
    private URLs are allowed (a test or LAN receiver). Every address the name resolves to
    must be public, as for calendar URLs; delivery checks again where it connects, so a name
    that later resolves to a private address is refused then too."""
    url = (url or "").strip()
    if not url:
        raise WebhookError("Enter the address that should receive the events.")
    if len(url) > MAX_URL_LENGTH:
        raise WebhookError(f"The address is too long (at most {MAX_URL_LENGTH} characters).")
    allow_private = private_urls_allowed()
    try:
        scheme, _host, _port = http.parse_target(url)
        if scheme != "https" and not allow_private:
            raise WebhookError("The address must start with https://.")
        http.check_url(url, allow_private)
    except UnsafeURL as exc:
        raise WebhookError(_webhook_words(str(exc))) from exc
    except ProviderError as exc:  # the name does not resolve
        raise WebhookError(str(exc)) from exc
    return url


def _webhook_words(message: str) -> str:
    """The shared URL checks speak of calendar servers; say the same of webhooks."""
    return message.replace("calendar servers on the local network", "webhooks to the local network")


def clean_events(events: list[str]) -> list[str]:
    """The chosen events in their usual order; unknown names are refused, not dropped."""
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookError(f"Unknown event: {', '.join(unknown)}.")
    chosen = [e for e in EVENTS if e in set(events)]
    if not chosen:
        raise WebhookError("Choose at least one event to send.")
    return chosen


def new_secret() -> str:
    """A 256-bit signing secret with a recognisable prefix."""
    return f"whsec_{secrets.token_urlsafe(32)}"


def create_webhook(actor: User, url: str, events: list[str]) -> tuple[Webhook, str]:
    """A new active endpoint and its secret in plain text, to be shown once and then only
    kept sealed."""
    webhook = Webhook(url=check_url(url), events=clean_events(events), active=True)
    webhook.created_by_id = actor.id
    secret = new_secret()
    webhook.store_secret(secret)
    db.session.add(webhook)
    db.session.flush()
    return webhook, secret


def set_events(webhook: Webhook, events: list[str]) -> None:
    webhook.events = clean_events(events)


def set_active(webhook: Webhook, active: bool) -> None:
    """A disabled endpoint is sent nothing, including deliveries still waiting to retry."""
    webhook.active = active


def delete_webhook(webhook: Webhook) -> None:
    """Delete the endpoint and its log; deliveries still waiting are then skipped."""
    db.session.delete(webhook)
    db.session.flush()


def reseal_secrets() -> tuple[int, int]:
    """Re-seal every signing secret not sealed with the newest key (``flask rotate-keys``);
    returns (re-sealed, secrets). Flushes; the caller commits."""
    from app.security import keyring

    ring = keyring()
    webhooks = db.session.scalars(select(Webhook)).all()
    resealed = 0
    for webhook in webhooks:
        if ring.needs_rotation(webhook.secret_sealed):
            webhook.secret_sealed = ring.encrypt(ring.decrypt(webhook.secret_sealed))
            resealed += 1
    db.session.flush()
    return resealed, len(webhooks)


def subscribers(event: str) -> list[Webhook]:
    rows = db.session.scalars(select(Webhook).where(Webhook.active.is_(True))).all()
    return [w for w in rows if w.wants(event)]


# --- the request a receiver gets ----------------------------------------------------------


def body(event: str, created_at: str, data: dict) -> str:
    """The JSON body, compact and with sorted keys so it is the same on every attempt."""
    return json.dumps(
        {"event": event, "created_at": created_at, "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def signature(secret: str, timestamp: str, payload: str) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under the secret: the
    timestamp is signed too, so a receiver can refuse old (replayed) requests."""
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def booking_summary(booking) -> dict:
    """What a receiver learns of a booking: its times, status, type and attendees. No link
    tokens, no notes, nothing sealed."""
    return {
        "id": booking.id,
        "status": booking.status,
        "sequence": booking.sequence,
        "title": booking.title,
        "starts_at": _iso(booking.starts_at),
        "ends_at": _iso(booking.ends_at),
        "booking_type": {"id": booking.booking_type.id, "name": booking.booking_type.name}
        if booking.booking_type
        else None,
        "owner": {"id": booking.owner.id, "name": booking.owner.name} if booking.owner else None,
        "attendees": [attendee_summary(a) for a in booking.attendees],
    }


def attendee_summary(attendee) -> dict:
    return {
        "id": attendee.id,
        "user_id": attendee.user_id,
        "name": attendee.display_name,
        "email": attendee.user.email if attendee.user else attendee.email,
        "role": attendee.role,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
