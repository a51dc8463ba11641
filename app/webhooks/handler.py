"""Outbox consumers that deliver webhooks.

Two steps, so each endpoint is retried on its own:

1. **fan out** (database only): a booking event ("booking.approved", "attendee.added" …) is
   turned into one ``webhook.deliver`` row per active endpoint subscribed to its webhook
   event name, carrying the booking summary as it is now. It commits with the "handled"
   mark, exactly once.
2. **deliver** (a ``Send``): prepare reads the endpoint and signs the body; the POST runs with
   no transaction open, through the calendar URLs' pinned, deadlined HTTP (no loopback or
   private address unless ``SLOTBOOK_ALLOW_PRIVATE_URLS``); record logs the attempt and, for
   anything but a 2xx, raises ``PartialFailure`` so the outbox keeps the log row and retries
   with back-off until it gives up (the row is then "failed", as the log screen shows).
"""

from __future__ import annotations

import logging
import time

import requests
from flask import current_app

from app.bookings.models import Booking
from app.connections import http
from app.connections.providers.base import ProviderError, UnsafeURL
from app.extensions import db
from app.outbox import OutboxMessage, PartialFailure, Send, emit, handles
from app.webhooks import service
from app.webhooks.models import Webhook, WebhookDelivery

log = logging.getLogger(__name__)

DELIVER_KIND = "webhook.deliver"
USER_AGENT = "Slotbook webhooks"

# Outbox kinds (what bookings/ and public/ emit) → the event names receivers see.
EVENT_FOR_KIND: dict[str, str] = {
    "booking.created": "booking.created",
    "booking.approved": "booking.confirmed",
    "public.booking_confirmed": "booking.confirmed",  # a visitor confirmed by email link
    "booking.rescheduled": "booking.rescheduled",
    "booking.cancelled": "booking.cancelled",
    "booking.rejected": "booking.rejected",
    "attendee.added": "attendee.added",
    "attendee.removed": "attendee.removed",
}


@handles(*EVENT_FOR_KIND)
def fan_out(message: OutboxMessage) -> None:
    """One delivery row per subscribed endpoint (none: nothing to do)."""
    event = EVENT_FOR_KIND[message.kind]
    endpoints = service.subscribers(event)
    if not endpoints:
        return None
    payload = message.data
    data = _event_data(payload)
    created_at = message.created_at.isoformat()
    for webhook in endpoints:
        emit(
            DELIVER_KIND,
            webhook_id=webhook.id,
            event=event,
            created_at=created_at,
            data=data,
        )
    return None


def _event_data(payload: dict) -> dict:
    """The booking as it is now, plus who was added or removed for attendee events."""
    booking = db.session.get(Booking, payload.get("booking_id"))
    data: dict = {"booking": service.booking_summary(booking) if booking else None}
    if booking is None:
        data["booking"] = {"id": payload.get("booking_id")}
    attendee_id = payload.get("attendee_id")
    if attendee_id is not None and booking is not None:
        added = next((a for a in booking.attendees if a.id == attendee_id), None)
        data["attendee"] = service.attendee_summary(added) if added else {"id": attendee_id}
    removed = payload.get("attendee")
    if isinstance(removed, dict):
        data["attendee"] = {
            "user_id": removed.get("user_id"),
            "name": removed.get("name"),
            "email": removed.get("email"),
        }
    return data


@handles(DELIVER_KIND)
def deliver(message: OutboxMessage) -> Send | None:
    """Sign and send one event to one endpoint; skipped if it was deleted or disabled."""
    payload = message.data
    webhook = db.session.get(Webhook, payload.get("webhook_id"))
    if webhook is None or not webhook.active:
        return None
    event = payload["event"]
    text = service.body(event, payload["created_at"], payload["data"])
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Slotbook-Timestamp": timestamp,
        "Slotbook-Signature": service.signature(webhook.reveal_secret(), timestamp, text),
        "Slotbook-Event": event,
        "Slotbook-Delivery": str(message.id),
    }
    url, webhook_id, outbox_id, attempt = webhook.url, webhook.id, message.id, message.attempts
    allow_private = service.private_urls_allowed()
    timeout = float(current_app.config.get("SLOTBOOK_WEBHOOK_TIMEOUT", 10.0))

    def record(result: tuple[int | None, str | None]) -> None:
        status_code, error = result
        if db.session.get(Webhook, webhook_id) is None:
            return  # deleted while we were sending: nothing to log it under
        db.session.add(
            WebhookDelivery(
                webhook_id=webhook_id,
                event=event,
                outbox_id=outbox_id,
                attempt=attempt,
                status_code=status_code,
                error=error,
            )
        )
        if error is not None or status_code is None or not 200 <= status_code < 300:
            raise PartialFailure(error or f"The endpoint answered {status_code}.")

    return Send(lambda: post(url, text, headers, allow_private, timeout), record)


def post(
    url: str, text: str, headers: dict, allow_private: bool, timeout: float
) -> tuple[int | None, str | None]:
    """POST once, no redirects followed, within one deadline; (status code, None) for any
    answer, (None, what went wrong in words) otherwise. Runs with no transaction open."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would resolve the name again
    adapter = http.GuardedAdapter(http.AddressRules(allow_private=allow_private))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    try:
        scheme, host, _port = http.parse_target(url)
        if scheme != "https" and not allow_private:
            return None, "Refused: webhooks are only sent to https:// addresses."
        with http.deadline(timeout):
            # Streamed and never read: only the status matters, and a huge answer body
            # must not fill the worker's memory.
            response = session.post(
                url,
                data=text.encode(),
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
        response.close()
        return response.status_code, None
    except UnsafeURL as exc:
        return None, f"Refused: {service._webhook_words(str(exc))}"
    except ProviderError as exc:
        return None, str(exc)
    except requests.Timeout:
        return None, f"{host} took too long to answer (more than {timeout:g} s)."
    except requests.ConnectionError as exc:
        cause = exc.__context__ or exc
        if isinstance(cause, UnsafeURL):
            return None, f"Refused: {service._webhook_words(str(cause))}"
        if http.out_of_time():
            return None, f"{host} took too long to answer (more than {timeout:g} s)."
        return None, f"Could not connect to {host}."
    except (requests.RequestException, OSError) as exc:
        log.warning("webhook: request to %s failed: %s", host, type(exc).__name__)
        return None, f"The request to {host} failed ({type(exc).__name__})."
    finally:
        session.close()
