"""The admin's notifications screen (N1, N4): channels per rule, and messages that failed.

Channel choices are stored as explicit ``RuleChannel`` rows for every rule shown on the
submitted form, so what the admin saw ticked is what holds, even if a default changes later.
Failed sends stay visible with their error until someone retries them; a retry only puts the
outbox row back in the queue, so it is delivered once by the normal outbox path and a handler
that already succeeded for that row (the in-app line, say) does not run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select

from app.extensions import db
from app.notifications.models import RuleChannel
from app.notifications.rules import CHANNEL_LABELS, RULES, Channel, Rule, channels_for
from app.outbox import FAILED, PENDING, OutboxMessage, reset_failed

SEND_KINDS = ("notify.email", "notify.sms")
LIST_LIMIT = 200


class NotFound(LookupError):
    """No such undelivered message (missing, not a notification, or not failed)."""


# --- channels per rule -----------------------------------------------------------------


@dataclass(frozen=True)
class RuleRow:
    rule: Rule
    label: str
    channels: dict[Channel, bool]


def channel_matrix() -> list[RuleRow]:
    """Every rule with the channels it uses now (the admin's choice, else its default)."""
    return [
        RuleRow(rule, info.label, {c: c in channels_for(rule) for c in Channel})
        for rule, info in RULES.items()
    ]


def field_name(rule: Rule, channel: Channel) -> str:
    """The checkbox's form field for one cell of the matrix."""
    return f"{rule.value}.{channel.value}"


def save_channels(shown: set[str], ticked: set[str]) -> int:
    """Store the ticked cells of the rules that were on the form; returns the rows changed.

    ``shown`` holds rule values (unknown ones are ignored), ``ticked`` holds field names.
    """
    existing = {(row.rule, row.channel): row for row in db.session.scalars(select(RuleChannel))}
    changed = 0
    for rule in RULES:
        if rule.value not in shown:
            continue
        for channel in Channel:
            enabled = field_name(rule, channel) in ticked
            row = existing.get((rule.value, channel.value))
            if row is None:
                db.session.add(RuleChannel(rule=rule.value, channel=channel.value, enabled=enabled))
                changed += 1
            elif row.enabled != enabled:
                row.enabled = enabled
                changed += 1
    db.session.flush()
    return changed


# --- messages that could not be sent ----------------------------------------------------


@dataclass(frozen=True)
class Undelivered:
    id: int
    channel: str  # "Email" or "SMS"
    recipient: str
    subject: str
    attempts: int
    last_error: str
    failed: bool  # False: still retrying on its own
    when: datetime  # created (failed rows) or next try (retrying rows)


def _recipient(payload: dict) -> str:
    to = payload.get("to")
    if isinstance(to, dict):
        to = to.get("email") or to.get("phone") or to.get("name")
    if isinstance(to, list | tuple):
        to = ", ".join(
            str(v.get("email") if isinstance(v, dict) else v) for v in to if v is not None
        )
    return str(to) if to else "—"


def _subject(payload: dict) -> str:
    subject = payload.get("subject")
    if isinstance(subject, str) and subject.strip():
        return subject
    try:
        return RULES[Rule(payload.get("rule"))].label
    except (ValueError, KeyError):
        return str(payload.get("rule") or "—")


def _row(message: OutboxMessage) -> Undelivered:
    payload = message.payload if isinstance(message.payload, dict) else {}
    failed = message.status == FAILED
    return Undelivered(
        id=message.id,
        channel=CHANNEL_LABELS[Channel.SMS] if message.kind == "notify.sms" else "Email",
        recipient=_recipient(payload),
        subject=_subject(payload),
        attempts=message.attempts,
        last_error=message.last_error or "",
        failed=failed,
        when=message.created_at if failed else message.available_at,
    )


def undelivered(limit: int = LIST_LIMIT) -> list[Undelivered]:
    """Failed email/SMS rows, and pending ones that already failed at least once, newest
    first (the status index narrows it to the few rows not done)."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.kind.in_(SEND_KINDS),
            or_(
                OutboxMessage.status == FAILED,
                (OutboxMessage.status == PENDING) & (OutboxMessage.attempts > 0),
            ),
        )
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [_row(m) for m in db.session.scalars(query)]


def retry(message_id: int) -> OutboxMessage:
    """Put a failed email/SMS row back to pending, due now, with a fresh set of attempts.

    The caller commits and then enqueues the id (``outbox.enqueue_ids``); if Redis is down the
    sweeper picks it up. Anything but a failed notification row is ``NotFound``.
    """
    message = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
    ).one_or_none()
    if message is None or message.kind not in SEND_KINDS or message.status != FAILED:
        raise NotFound(message_id)
    reset_failed(message)
    db.session.flush()
    return message
