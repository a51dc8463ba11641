"""Meeting polls (A5): propose common free slots, collect answers by token, book one.

Flushes, never commits (the route commits once). Plaintext tokens exist only in the return
value of ``create_poll`` and in the ``poll.invited`` outbox payload: never stored, never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings import policy
from app.bookings.availability import load_context
from app.bookings.models import Booking, BookingType
from app.bookings.service import BookingError, Guest, _clean_email, create_booking, working_modes
from app.database import begin_write, lock_row, utcnow
from app.extensions import db
from app.outbox import emit
from app.polls.models import Answer, Poll, PollAnswer, PollInvitee, PollOption, PollStatus
from app.scheduling.assistant import CommonSlot, common_slots
from app.security import hash_token, new_token
from app.urls import absolute_url

TOKEN_PREFIX = "sbp"  # noqa: S105 - a readable prefix, not a secret
MAX_OPTIONS = 20


class PollError(ValueError):
    """Input a poll cannot accept; the message is shown as it is."""


@dataclass(frozen=True)
class Invitation:
    invitee: PollInvitee
    token: str


def propose_slots(
    booking_type: BookingType,
    people: Sequence[User],
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
) -> list[CommonSlot]:
    """Starts in [start, end) at which every one of ``people`` is free (A5)."""
    people = list(dict.fromkeys(people))
    if not people:
        return []
    context = load_context(
        booking_type, people, start, end, audience="staff", now=now, group_threshold=False
    )
    return common_slots(context.people, [], context.request)


def create_poll(
    actor: User,
    booking_type: BookingType,
    title: str,
    starts: Sequence[datetime],
    people: Sequence[User],
    emails: Sequence[str] = (),
    *,
    expires_at: datetime | None = None,
    description: str = "",
    now: datetime | None = None,
) -> tuple[Poll, list[Invitation]]:
    """A poll by ``actor`` over ``starts`` for ``people`` (internal, each held by the
    booking; the organiser is always one) and ``emails`` (outside guests).

    Every start must still be a common free slot of the people. Each invitee gets a token
    whose hash is stored; the plaintext goes out only in the ``poll.invited`` message.
    """
    begin_write()
    now = now or utcnow()
    policy.require(actor, Perm.BOOKINGS_CREATE)
    people = list(dict.fromkeys([actor, *people]))
    if any(p.id != actor.id for p in people):
        policy.require(actor, Perm.BOOKINGS_ASSIGN)
    if any(not p.active for p in people):
        raise PollError("A chosen person's account is disabled.")
    if not booking_type.active:
        raise PollError(f"{booking_type.name} is not bookable at the moment.")
    title = (title or "").strip() or booking_type.name
    starts = sorted(set(starts))
    if not starts:
        raise PollError("Choose at least one proposed time.")
    if len(starts) > MAX_OPTIONS:
        raise PollError(f"Propose at most {MAX_OPTIONS} times.")
    if any(s.tzinfo is None for s in starts):
        raise PollError("Proposed times need a time zone.")
    free = {
        slot.start
        for slot in propose_slots(
            booking_type,
            people,
            starts[0] - timedelta(days=1),
            starts[-1] + booking_type.duration + timedelta(days=1),
            now=now,
        )
    }
    if any(s not in free for s in starts):
        raise PollError("A proposed time is no longer free for everyone. Search again.")
    internal = {p.email.lower() for p in people}
    try:
        guests = list(dict.fromkeys(_clean_email(e) for e in emails if e.strip()))
    except BookingError as exc:
        raise PollError(str(exc)) from exc
    guests = [e for e in guests if e not in internal]

    poll = Poll(
        title=title,
        description=description,
        organiser_id=actor.id,
        organiser=actor,
        booking_type=booking_type,
        booking_type_id=booking_type.id,
        status=PollStatus.OPEN,
        expires_at=expires_at or min(starts[0], now + timedelta(days=14)),
    )
    for start in starts:
        poll.options.append(PollOption(starts_at=start, ends_at=start + booking_type.duration))
    invitations: list[Invitation] = []
    pending = [(p, p.email, p.name) for p in people] + [(None, e, "") for e in guests]
    for user, email, name in pending:
        token = new_token(TOKEN_PREFIX)
        invitee = PollInvitee(
            user_id=user.id if user else None,
            user=user,
            email=email,
            name=name,
            token_hash=hash_token(token),
        )
        poll.invitees.append(invitee)
        invitations.append(Invitation(invitee, token))
    db.session.add(poll)
    db.session.flush()
    for invitation in invitations:
        emit(
            "poll.invited",
            poll_id=poll.id,
            invitee_id=invitation.invitee.id,
            email=invitation.invitee.email,
            token=invitation.token,
            url=absolute_url("polls.answer", token=invitation.token),
        )
    return poll, invitations


# --- answering (no account: the token is the credential) ----------------------------------


def invitee_for_token(token: str) -> PollInvitee | None:
    """The invitee a token belongs to, or None when it is unknown (tampered)."""
    if not token or not token.startswith(f"{TOKEN_PREFIX}_") or len(token) > 100:
        return None
    return db.session.scalar(select(PollInvitee).where(PollInvitee.token_hash == hash_token(token)))


def save_answers(
    invitee: PollInvitee, answers: dict[int, str], *, now: datetime | None = None
) -> None:
    """Record the invitee's yes/no/maybe for every option (replacing earlier answers)."""
    begin_write()
    now = now or utcnow()
    poll = invitee.poll
    if not poll.is_open(now):
        raise PollError("This poll is closed.")
    options = {o.id for o in poll.options}
    if set(answers) != options:
        raise PollError("Answer every proposed time.")
    if any(value not in set(Answer) for value in answers.values()):
        raise PollError("Answer yes, maybe or no.")
    existing = {a.option_id: a for a in invitee.answers}
    for option_id, value in answers.items():
        if option_id in existing:
            existing[option_id].answer = value
        else:
            invitee.answers.append(PollAnswer(option_id=option_id, answer=value))
    invitee.answered_at = now
    db.session.flush()


# --- the organiser ------------------------------------------------------------------------


def get_visible(actor: User, poll_id: int) -> Poll | None:
    """The poll if ``actor`` organised it or may see every booking; None otherwise."""
    poll = db.session.get(Poll, poll_id)
    if poll is None:
        return None
    if poll.organiser_id == actor.id or actor.can(Perm.BOOKINGS_VIEW_ALL):
        return poll
    return None


def tally(poll: Poll) -> dict[int, dict[str, int]]:
    counts = {o.id: {a.value: 0 for a in Answer} for o in poll.options}
    for invitee in poll.invitees:
        for answer in invitee.answers:
            counts[answer.option_id][answer.answer] += 1
    return counts


def book(actor: User, poll: Poll, option_id: int, *, now: datetime | None = None) -> Booking:
    """Book the chosen option for the internal invitees (held) and the outside ones (guests),
    and close the poll. Raises ConflictError when someone has become busy."""
    begin_write()
    now = now or utcnow()
    policy.require(actor, Perm.BOOKINGS_CREATE)
    lock_row(poll)  # two organisers booking at once: the second sees the poll booked
    if poll.status != PollStatus.OPEN:
        raise PollError("This poll is closed.")
    option = next((o for o in poll.options if o.id == option_id), None)
    if option is None:
        raise PollError("Choose one of the proposed times.")
    people = [poll.organiser] + [
        i.user for i in poll.invitees if i.user is not None and i.user_id != poll.organiser_id
    ]
    guests = [Guest(i.email, i.name) for i in poll.invitees if i.user_id is None]
    booking = create_booking(
        actor,
        poll.booking_type,
        option.starts_at,
        people,
        guests=guests,
        title=poll.title,
        description=poll.description,
        location_mode=(working_modes(list(poll.booking_type.location_modes)) or [None])[0],
        check_availability=True,
    )
    db.session.flush()
    poll.status = PollStatus.BOOKED
    poll.booking_id = booking.id
    emit("poll.booked", poll_id=poll.id, booking_id=booking.id)
    return booking


# --- the organiser's list and closing (issue 15) --------------------------------------------

STATES = ("open", "answered", "booked", "closed")


def state_of(poll: Poll, now: datetime) -> str:
    """Open (nobody has answered yet), answered (someone has, still open), booked, or closed
    (closed by hand, or past its expiry without a booking)."""
    if poll.status == PollStatus.BOOKED:
        return "booked"
    if not poll.is_open(now):
        return "closed"
    return "answered" if any(i.answered_at for i in poll.invitees) else "open"


def my_polls(actor: User) -> list[Poll]:
    """The polls ``actor`` organised, newest first, with their invitees (two queries)."""
    from sqlalchemy.orm import selectinload

    return list(
        db.session.scalars(
            select(Poll)
            .where(Poll.organiser_id == actor.id)
            .options(selectinload(Poll.invitees), selectinload(Poll.options))
            .order_by(Poll.created_at.desc(), Poll.id.desc())
        )
    )


def may_close(actor: User, poll: Poll, now: datetime | None = None) -> bool:
    return poll.is_open(now or utcnow()) and (
        poll.organiser_id == actor.id or actor.can(Perm.BOOKINGS_VIEW_ALL)
    )


def close(actor: User, poll: Poll, *, now: datetime | None = None) -> None:
    """Close an open poll: its links stop taking answers; nothing is booked."""
    begin_write()
    lock_row(poll)
    if not may_close(actor, poll, now):
        raise PollError("This poll is already closed.")
    poll.status = PollStatus.CLOSED
    db.session.flush()


def linked_calendars(poll: Poll) -> tuple[int, int]:
    """(internal invitees with at least one linked calendar, internal invitees): how much of
    the "everyone is free" the proposed times rest on real calendars (seed 003)."""
    from sqlalchemy import func

    from app.connections.models import Connection

    ids = [i.user_id for i in poll.invitees if i.user_id is not None]
    if not ids:
        return 0, 0
    linked = db.session.scalar(
        select(func.count(func.distinct(Connection.user_id))).where(Connection.user_id.in_(ids))
    )
    return int(linked or 0), len(ids)
