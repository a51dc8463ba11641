"""Notification tests: a real SMTP server (aiosmtpd) on loopback, and the outbox delivered the
way the worker delivers it (``jobs.deliver_outbox_message``, row by row in id order, until
nothing is pending: planning a change adds ``notify.email`` rows that need delivering too)."""

from __future__ import annotations

import email
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import icalendar
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from tests.conftest import free_port


@dataclass
class Received:
    """One message as the SMTP server got it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        # A long subject may be folded right after "Subject:"; unfolded, the leading space
        # is insignificant (RFC 5322 2.2.3), as mail clients show it.
        return str(self.message["Subject"]).strip()

    @property
    def to(self) -> list[str]:
        return [address.lower() for address in self.rcpt_tos]

    def part(self, content_type: str) -> EmailMessage | None:
        return next((p for p in self.message.walk() if p.get_content_type() == content_type), None)

    @property
    def text(self) -> str:
        return self.part("text/plain").get_content()

    @property
    def html(self) -> str:
        return self.part("text/html").get_content()

    @property
    def calendar_part(self) -> EmailMessage | None:
        return self.part("text/calendar")

    @property
    def attachment(self) -> EmailMessage | None:
        return next(
            (p for p in self.message.iter_attachments() if p.get_filename() == "invite.ics"),
            None,
        )

    def ics(self) -> icalendar.Calendar:
        """The .ics attachment, parsed; the calendar alternative must say the same."""
        attached = self.attachment
        assert attached is not None, f"no invite.ics on {self.subject!r}"
        raw = attached.get_content()
        raw = raw.decode() if isinstance(raw, bytes) else raw
        inline = self.calendar_part
        assert inline is not None, f"no text/calendar alternative on {self.subject!r}"
        assert inline.get_content().replace("\r\n", "\n") == raw.replace("\r\n", "\n")
        return icalendar.Calendar.from_ical(raw)

    def event(self) -> icalendar.Event:
        [event] = self.ics().walk("VEVENT")
        return event


@dataclass
class _Inbox:
    """The aiosmtpd handler: keeps every message it accepts."""

    messages: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that a test can stop and start again on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = _Inbox()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        return list(self.inbox.messages)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.inbox.messages if address.lower() in m.to]

    def clear(self) -> None:
        self.inbox.messages.clear()


@pytest.fixture
def smtp_server(app):
    """The SMTP server, with the app's MAIL_SERVER / MAIL_PORT pointing at it."""
    server = SmtpServer()
    server.start()
    app.config["MAIL_SERVER"] = "127.0.0.1"
    app.config["MAIL_PORT"] = server.port
    app.config["MAIL_USE_TLS"] = False
    app.config["MAIL_USE_SSL"] = False
    yield server
    server.stop()


def pending_ids(app) -> list[int]:
    from app.extensions import db
    from app.outbox import PENDING, OutboxMessage

    with app.app_context():
        ids = list(
            db.session.scalars(
                select(OutboxMessage.id)
                .where(OutboxMessage.status == PENDING)
                .order_by(OutboxMessage.id)
            )
        )
        db.session.rollback()
    return ids


def deliver_all(app, rounds: int = 10) -> None:
    """Deliver every pending row in id order, again and again until none is pending; then
    insist nothing failed (a broken planner or mailer must fail the test, not hide)."""
    from app.extensions import db
    from app.jobs import deliver_outbox_message
    from app.outbox import FAILED, OutboxMessage

    for _ in range(rounds):
        ids = pending_ids(app)
        if not ids:
            break
        for message_id in ids:
            with app.app_context():
                deliver_outbox_message(message_id)
                db.session.remove()
    with app.app_context():
        stuck = db.session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.last_error).where(
                OutboxMessage.status.in_(["pending", FAILED])
            )
        ).all()
        db.session.rollback()
    assert not stuck, f"outbox rows not delivered: {stuck}"


def outbox_rows(app, kind: str) -> list[dict]:
    """Every row of ``kind`` as plain dicts (id, status, attempts, last_error, payload as
    handlers read it, with sealed links opened, and ``stored``: the payload as stored)."""
    from app.extensions import db
    from app.outbox import OutboxMessage

    with app.app_context():
        rows = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        ).all()
        result = [
            {
                "id": r.id,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "payload": r.data,
                "stored": dict(r.payload),
            }
            for r in rows
        ]
        db.session.rollback()
    return result
