"""The Mailer screen's "Send test email": one real message through the configured SMTP.

A person is waiting for the answer, so the SMTP conversation has a short timeout, and it runs
after the request's transaction is closed (reading the settings opens one): a slow or hanging
server never holds a database lock. Failures come back as a sentence an administrator can act
on ("nothing is listening", "rejected the user name or password"), never a traceback.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import uuid

from flask import current_app

from app.extensions import db
from app.notifications import mailer

log = logging.getLogger(__name__)

TEST_TIMEOUT_SECONDS = 5


def send_test_email(to: str, to_name: str) -> tuple[bool, str]:
    """Send a test email to ``to``; returns (sent, what happened in words)."""
    payload = {
        "to": to,
        "to_name": to_name,
        "subject": "Slotbook test email",
        "text": (
            "This is a test email from Slotbook's Mailer settings.\n\n"
            "If you can read it, emails reach people with the sender shown above."
        ),
        "html": (
            "<p>This is a test email from Slotbook's Mailer settings.</p>"
            "<p>If you can read it, emails reach people with the sender shown above.</p>"
        ),
    }
    email = mailer.build_message(payload, f"test-{uuid.uuid4().hex}")
    db.session.rollback()  # end the read transaction before any network call
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        path = mailer.write_to_folder(email, 0)
        return False, (
            "No SMTP server is configured (MAIL_SERVER is not set), so nothing was sent; "
            f"the message was written to {path}."
        )
    where = f"{config['MAIL_SERVER']}:{config['MAIL_PORT']}"
    try:
        mailer.send(email, timeout=TEST_TIMEOUT_SECONDS)
    except Exception as exc:  # every failure becomes a sentence; none is a 500
        log.info("mail: test email to the signed-in admin failed: %s", type(exc).__name__)
        return False, f"The test email was not sent: {describe_error(exc, where)}"
    return True, f"A test email was sent to {to} through {where}. Check that inbox."


def describe_error(exc: BaseException, where: str) -> str:
    """An SMTP or network failure in words, naming the server."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"the SMTP server at {where} rejected the user name or password ({_reply(exc)})."
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"the SMTP server at {where} refused the from address ({_reply(exc)})."
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = "; ".join(f"{a}: {c} {_text(m)}" for a, (c, m) in exc.recipients.items())
        return f"the SMTP server at {where} refused the recipient ({codes})."
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the SMTP server at {where} does not support what was asked: {exc}."
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the SMTP server at {where} closed the connection unexpectedly."
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the SMTP server at {where} answered {_reply(exc)}."
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"the connection to {where} was refused: nothing is listening there. Check "
            "MAIL_SERVER and MAIL_PORT."
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"the SMTP server at {where} did not answer within {TEST_TIMEOUT_SECONDS} seconds."
    if isinstance(exc, socket.gaierror):
        return f"the SMTP server's name in {where} could not be found (DNS)."
    if isinstance(exc, ssl.SSLError):
        return f"the secure connection (TLS) to {where} failed: {exc.reason or exc}."
    if isinstance(exc, OSError):
        return f"the connection to {where} failed: {exc.strerror or exc}."
    return f"{type(exc).__name__} while talking to {where}."


def _text(message: bytes | str) -> str:
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}".strip()
