"""The email channel (N1, N4): one ``notify.email`` outbox row becomes one email.

The planner has already written the words; this module only wraps them in a MIME message
and hands it to SMTP. A booking email carries its .ics twice, as Outlook and Gmail expect for
invitations: as a ``text/calendar; method=…`` alternative (which makes clients show their
accept/remove buttons) and as an ``invite.ics`` attachment (which every client can open).

The handler builds the message while the outbox's transaction is open (it reads settings)
and returns the SMTP conversation as a ``Send``, which the outbox runs after committing: a
slow or hanging SMTP server holds no database lock. Any SMTP or network error is raised,
so the outbox keeps the row, retries it with back-off and finally marks it failed with the
error, where admins see it and can retry it (``notifications.admin``). The booking itself
was committed long before and is never affected.

Without ``MAIL_SERVER`` (development) the message is written as an ``.eml`` file to
``MAIL_OUTBOX_DIR`` instead. Bodies are never logged: they may carry visitors' private links.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path

from flask import current_app

from app.admin.settings import get_setting
from app.database import utcnow
from app.outbox import OutboxMessage, Send, handles

log = logging.getLogger(__name__)

KIND = "notify.email"
SMTP_TIMEOUT_SECONDS = 15
ICS_FILENAME = "invite.ics"


@handles(KIND)
def send_email_message(message: OutboxMessage) -> Send:
    """Build the email one outbox row describes; the outbox sends (or, in development,
    files) it once its transaction is closed."""
    email = build_message(message.data, message.id)
    message_id, rule = message.id, message.payload.get("rule")
    return Send(lambda: deliver(email, message_id, rule))


def deliver(email: EmailMessage, message_id: int, rule: str | None = None) -> None:
    """Network (or file) only: SMTP when ``MAIL_SERVER`` is set, else the mail folder."""
    if not current_app.config.get("MAIL_SERVER"):
        path = write_to_folder(email, message_id)
        log.info("mail: MAIL_SERVER is not set; message %s written to %s", message_id, path)
        return
    send(email)
    log.info("mail: message %s (%s) sent", message_id, rule)


def build_message(payload: dict, message_id: int) -> EmailMessage:
    """The MIME message: plain text, HTML and (for bookings) the calendar part, plus the
    .ics attachment. The Message-ID is derived from the outbox row, so a resend after a
    crash between sending and committing reaches clients as the same message."""
    sender = str(get_setting("mailer_from_address")) or current_app.config["MAIL_DEFAULT_SENDER"]
    email = EmailMessage()
    email["From"] = formataddr((_one_line(str(get_setting("mailer_from_name"))), sender))
    reply_to = str(get_setting("mailer_reply_to"))
    if reply_to:
        email["Reply-To"] = reply_to
    email["To"] = formataddr((_one_line(payload.get("to_name") or ""), payload["to"]))
    email["Subject"] = _one_line(payload["subject"])
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = f"<slotbook-{message_id}@{_domain(sender)}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(payload["text"])
    email.add_alternative(payload["html"], subtype="html")
    calendar = payload.get("ics")
    if calendar:
        method = (payload.get("ics_method") or "REQUEST").upper()
        email.add_alternative(calendar, subtype="calendar", params={"method": method})
        email.get_payload()[-1].set_param("charset", "UTF-8")
        email.add_attachment(
            calendar.encode("utf-8"),
            maintype="application",
            subtype="ics",
            filename=ICS_FILENAME,
        )
    return email


def send(email: EmailMessage, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
    """Hand the message to the configured SMTP server; raise on any failure. (The settings
    screen's test email passes a shorter ``timeout``: a person is waiting.)"""
    config = current_app.config
    host, port = config["MAIL_SERVER"], int(config["MAIL_PORT"])
    if config.get("MAIL_USE_SSL"):
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(email, from_addr=config["MAIL_DEFAULT_SENDER"])


def write_to_folder(email: EmailMessage, message_id: int) -> Path:
    """Development: ``<MAIL_OUTBOX_DIR>/<timestamp>-<id>.eml``, written whole or not at all
    (a half-written file must never be mistaken for a message)."""
    folder = Path(current_app.config["MAIL_OUTBOX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{utcnow():%Y%m%dT%H%M%S%fZ}-{message_id}.eml"
    partial = path.with_suffix(".eml.partial")
    partial.write_bytes(email.as_bytes())
    partial.replace(path)
    return path


def _one_line(value: str) -> str:
    """Header values with a line break are refused by ``email``; fold them to spaces so a
    title typed with a newline still sends (and cannot inject a header)."""
    return " ".join(value.split())


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip(" >")
    return domain or "slotbook.localhost"
