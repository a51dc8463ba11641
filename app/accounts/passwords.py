"""Set-password links: invitations (7 days) and forgotten-password resets (1 hour).

A link is single use and expiring. Only its SHA-256 is stored (``PasswordToken.token_hash``);
the plaintext lives in the email and nowhere else: not in the database, not in the outbox
payload, not in a log line.

Requests never send mail. ``send_invitation`` and ``request_password_reset`` only write an
outbox row naming the person (an id, or the email typed on the forgot-password page). The
outbox handler, running in the worker, makes a token in memory and builds the email from it;
the outbox sends it with no database transaction open and only then stores the token's hash
(revoking the older links) in a short transaction of its own. If the send fails nothing is
stored, so no live link exists that nobody received, and the retry makes a fresh one. (A
crash between the send and the store leaves a mailed link that does not work; the retry
mails one that does.)

Issuing a link revokes the unused earlier links of the same purpose for that person, and
setting a password revokes all of the person's unused links.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from email.utils import make_msgid

from flask import current_app, render_template
from sqlalchemy import select, update

from app.accounts.models import PasswordToken, User
from app.accounts.service import AccountError, check_password_strength, find_user, normalise_email
from app.database import utcnow
from app.extensions import db
from app.outbox import OutboxMessage, Send, emit, handles
from app.security import hash_token, new_token
from app.urls import absolute_url

log = logging.getLogger(__name__)

INVITE, RESET = "invite", "reset"
INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
TTL = {INVITE: INVITE_TTL, RESET: RESET_TTL}

# Outbox kinds: the payload names the person, never a token.
INVITE_KIND = "account.invite"
RESET_KIND = "account.reset"

TOKEN_PREFIX = "sbpw"  # noqa: S105 - a token prefix, not a password
MAX_TOKEN_LENGTH = 200  # anything longer is not one of ours: "unknown" without hashing it

OK, USED, EXPIRED, UNKNOWN = "ok", "used", "expired", "unknown"


class LinkError(AccountError):
    """The link cannot be used: ``state`` is used, expired or unknown."""

    def __init__(self, state: str) -> None:
        super().__init__(LINK_MESSAGES.get(state, LINK_MESSAGES[UNKNOWN]))
        self.state = state


LINK_MESSAGES = {
    USED: "This link has already been used.",
    EXPIRED: "This link has expired.",
    UNKNOWN: "This link is not valid.",
}


# --- requests: write an outbox row, nothing else -------------------------------------------


def send_invitation(user: User, invited_by: User | None) -> None:
    """Queue an invitation email with a set-password link; it goes out after the commit."""
    if user.id is None:
        db.session.flush()
    emit(INVITE_KIND, user_id=user.id, invited_by_id=invited_by.id if invited_by else None)


def request_password_reset(email: str) -> None:
    """Queue a reset link for ``email``. The same row is written whether or not an account
    exists, so the request does the same work either way; the worker looks the address up
    and sends nothing for an unknown or inactive account."""
    address = normalise_email(email)
    if address:
        emit(RESET_KIND, email=address)


# --- tokens ---------------------------------------------------------------------------------


def issue_token(
    user: User, purpose: str, created_by: User | None = None, token: str | None = None
) -> str:
    """Store a new link's hash (revoking the unused earlier ones of ``purpose``) and return
    the plaintext, which is never stored. ``token``: one made (and mailed) already."""
    if purpose not in TTL:
        raise ValueError(f"unknown password link purpose {purpose!r}")
    now = utcnow()
    db.session.execute(
        update(PasswordToken)
        .where(
            PasswordToken.user_id == user.id,
            PasswordToken.purpose == purpose,
            PasswordToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = token or new_token(TOKEN_PREFIX)
    db.session.add(
        PasswordToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + TTL[purpose],
            created_by_id=created_by.id if created_by else None,
        )
    )
    db.session.flush()
    return token


def token_state(token: str) -> tuple[str, PasswordToken | None]:
    """(ok | used | expired | unknown, the row). Reads only. A link of a deactivated account
    is unknown: it leads nowhere."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return UNKNOWN, None
    row = db.session.scalars(
        select(PasswordToken).where(PasswordToken.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or not row.user.active:
        return UNKNOWN, None
    if row.used_at is not None:
        return USED, row
    if row.expires_at <= utcnow():
        return EXPIRED, row
    return OK, row


def redeem(token: str, password: str) -> User:
    """Set the password through a link, once: check the password, take the link with a
    conditional UPDATE (of two concurrent redeems exactly one changes the row), set the
    password (which ends the person's sessions) and revoke their other unused links.
    Raises ``LinkError`` (used / expired / unknown) or ``AccountError`` (weak password)."""
    state, row = token_state(token)
    if state != OK:
        raise LinkError(state)
    check_password_strength(password)
    now = utcnow()
    taken = db.session.execute(
        update(PasswordToken)
        .where(
            PasswordToken.id == row.id,
            PasswordToken.used_at.is_(None),
            PasswordToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise LinkError(USED)
    user = row.user
    user.set_password(password)
    db.session.execute(
        update(PasswordToken)
        .where(PasswordToken.user_id == user.id, PasswordToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    db.session.refresh(row)
    return user


def expiry_in(row: PasswordToken, user: User | None = None) -> datetime:
    """When the link expires, in its person's time zone."""
    return row.expires_at.astimezone((user or row.user).zone)


def describe_moment(moment: datetime) -> str:
    """ "Tuesday 24 November 2026 at 10:00 GMT (Europe/London)"."""
    zone = getattr(moment.tzinfo, "key", str(moment.tzinfo))
    return f"{moment:%A} {moment.day} {moment:%B %Y at %H:%M} {moment.tzname()} ({zone})"


# --- the worker: issue the token and send the email -----------------------------------------


@handles(INVITE_KIND, RESET_KIND)
def send_password_link(message: OutboxMessage) -> Send | None:
    """Make a link for the person the row names and hand its email to the outbox (nothing
    for an unknown or inactive account); the link's hash is stored once the email is out."""
    payload = message.payload or {}
    inviter = None
    if message.kind == INVITE_KIND:
        purpose = INVITE
        user = db.session.get(User, payload.get("user_id") or 0)
        if payload.get("invited_by_id"):
            inviter = db.session.get(User, payload["invited_by_id"])
    else:
        purpose = RESET
        user = find_user(payload.get("email") or "")
    if user is None or not user.active:
        log.info("password link %s: no active account, nothing sent", message.id)
        return None
    token = new_token(TOKEN_PREFIX)
    email = _build_email(user, purpose, token, inviter, message.id)
    message_id, user_id = message.id, user.id
    inviter_id = inviter.id if inviter else None

    def store(_sent: None) -> None:
        person = db.session.get(User, user_id)
        issue_token(
            person, purpose, db.session.get(User, inviter_id) if inviter_id else None, token
        )
        log.info("password link %s (%s) sent to user %s", message_id, purpose, user_id)

    return Send(io=lambda: _send(email, message_id), record=store)


def _build_email(user: User, purpose: str, token: str, inviter: User | None, message_id: int):
    # The mailer's MIME building and delivery are reused; its outbox row is not (a
    # ``notify.email`` payload would store the link).
    from app.admin.settings import all_settings
    from app.notifications.mailer import build_message

    settings = all_settings()
    colour = str(settings["brand_primary_colour"])
    brand = {
        "organisation_name": str(settings["organisation_name"]),
        "from_name": str(settings["mailer_from_name"]),
        "colour": colour if _is_hex_colour(colour) else "#2457a7",
    }
    expires = utcnow() + TTL[purpose]
    if purpose == INVITE:
        subject = f"You are invited to {brand['organisation_name']} on Slotbook"
    else:
        subject = "Set a new Slotbook password"
    context = {
        "subject": subject,
        "recipient_name": user.name,
        "brand": brand,
        "link": absolute_url("passwords.set_password", token=token),
        "login_url": absolute_url("accounts.login"),
        "forgot_url": absolute_url("passwords.forgot_password"),
        "email": user.email,
        "inviter": inviter.name if inviter else None,
        "expires": describe_moment(expires.astimezone(user.zone)),
        "ttl": "7 days" if purpose == INVITE else "1 hour",
    }
    text = render_template(f"notifications/email/account_{purpose}.txt", **context)
    html = render_template(f"notifications/email/account_{purpose}.html", **context)
    email = build_message(
        {"to": user.email, "to_name": user.name, "subject": subject, "text": text, "html": html},
        message_id,
    )
    # Each attempt carries a different link: a fresh Message-ID, so no client hides a retry
    # as a duplicate of an earlier (possibly never delivered) message.
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    domain = sender.rpartition("@")[2].strip(" >") or "slotbook.localhost"
    del email["Message-ID"]
    email["Message-ID"] = make_msgid("slotbook-account", domain=domain)
    return email


def _send(email, message_id: int) -> None:
    from app.notifications.mailer import send, write_to_folder

    if not current_app.config.get("MAIL_SERVER"):
        write_to_folder(email, message_id)
        return
    send(email)


def _is_hex_colour(value: str) -> bool:
    return re.fullmatch(r"#[0-9a-fA-F]{6}", value) is not None
