"""Meeting polls (A5): staff propose and book; invitees answer through their link."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import select

from app.accounts.access import permission_required
from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings.models import BookingType
from app.bookings.policy import PermissionDenied
from app.bookings.service import BookingError, ConflictError
from app.database import utcnow
from app.extensions import db
from app.guard import parse_day, parse_id, parse_instant
from app.polls import service
from app.polls.models import Answer
from app.public.service import zone_names, zone_or_default

bp = Blueprint("polls", __name__, url_prefix="/polls")

MAX_SEARCH_DAYS = 14


def _formatter(zone: ZoneInfo):
    def fmt(value: datetime, pattern: str = "%a %d %b %Y, %H:%M") -> str:
        local = value.astimezone(zone)
        return f"{local.strftime(pattern)} {local.tzname()}"

    return fmt


def _ids(name: str) -> list[int]:
    """The ids named in ``name``; anything that cannot be an id is left out."""
    return [i for i in map(parse_id, request.values.getlist(name)) if i is not None]


def _choices():
    types = db.session.scalars(
        select(BookingType).where(BookingType.active.is_(True)).order_by(BookingType.name)
    ).all()
    staff = [
        u
        for u in db.session.scalars(
            select(User).where(User.active.is_(True)).order_by(User.name)
        ).all()
        if u.is_staff
    ]
    return types, staff


@bp.route("/new", methods=["GET", "POST"])
@permission_required(Perm.BOOKINGS_CREATE)
def new():
    """GET: the search form and, once searched, the common free slots to propose.
    POST: create the poll from the chosen slots and send the invitations (outbox)."""
    types, staff = _choices()
    type_id = parse_id(request.values.get("booking_type"))
    booking_type = db.session.get(BookingType, type_id) if type_id else None
    people = [db.session.get(User, i) for i in _ids("people")]
    if any(p is None or not p.is_staff for p in people):
        abort(404)
    # Checked once, before any work: someone who may not assign bookings to others can
    # still poll outside guests, but is never offered team members they could not send to.
    may_invite_team = current_user.can(Perm.BOOKINGS_ASSIGN)
    others = [p for p in people if p.id != current_user.id]
    zone = current_user.zone
    today = datetime.now(zone).date()
    chosen = parse_day((request.values.get("from") or "")[:10])
    first = chosen if chosen is not None else today + timedelta(days=1)
    raw_days = request.values.get("days", "7")
    plain = raw_days.isascii() and raw_days.isdigit() and len(raw_days) < 4
    days = min(max(int(raw_days), 1), MAX_SEARCH_DAYS) if plain else 7
    context = dict(
        types=types,
        staff=staff,
        booking_type=booking_type,
        people=people,
        first=first,
        days=days,
        fmt=_formatter(zone),
        title=request.values.get("title", ""),
        emails=request.values.get("emails", ""),
        slots=None,
        error=None,
        may_invite_team=may_invite_team,
        chosen=set(),
    )
    if others and not may_invite_team:
        context["people"] = []
        context["error"] = TEAM_REFUSAL
        return render_template("polls/new.html", **context), 403
    everyone = list(dict.fromkeys([current_user._get_current_object(), *people]))
    if request.method == "POST":
        if booking_type is None:
            abort(404)
        starts = []
        for raw in request.form.getlist("starts"):
            if (start := parse_instant(raw)) is not None:
                starts.append(start)
        emails = request.form.get("emails", "").replace(",", "\n").split()
        try:
            poll, _ = service.create_poll(
                current_user._get_current_object(),
                booking_type,
                request.form.get("title", ""),
                starts,
                people,
                emails,
            )
        except (PermissionDenied, service.PollError) as exc:
            db.session.rollback()
            # Keep the work: the same times offered again, the chosen ones still ticked.
            context["error"] = str(exc)
            context["chosen"] = {start.isoformat() for start in starts}
            context["slots"] = _search(booking_type, everyone, first, days, zone)
            status = 403 if isinstance(exc, PermissionDenied) else 422
            return render_template("polls/new.html", **context), status
        db.session.commit()
        flash(f"Poll sent to {len(poll.invitees)} people.", "success")
        return redirect(url_for("polls.detail", poll_id=poll.id), 303)
    if booking_type is not None and request.args.get("search"):
        context["slots"] = _search(booking_type, everyone, first, days, zone)
    return render_template("polls/new.html", **context)


TEAM_REFUSAL = (
    "You can send polls to outside guests, but inviting team members needs the "
    "“Assign bookings to other people” permission. Ask an administrator, or invite them "
    "by email as guests."
)


def _search(booking_type, everyone, first, days: int, zone):
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(first + timedelta(days=days), time(0), zone)
    return service.propose_slots(booking_type, everyone, start, end)[:200]


@bp.get("/<int:poll_id>")
@login_required
def detail(poll_id: int):
    """The answers table (organiser, or someone who sees every booking)."""
    poll = service.get_visible(current_user, poll_id)
    if poll is None:
        abort(404)
    return _detail_page(poll)


def _detail_page(poll, status: int = 200, error: str | None = None):
    answers = {(a.invitee_id, a.option_id): a.answer for i in poll.invitees for a in i.answers}
    return make_response(
        render_template(
            "polls/detail.html",
            poll=poll,
            answers=answers,
            counts=service.tally(poll),
            error=error,
            is_open=poll.is_open(utcnow()),
            can_book=current_user.can(Perm.BOOKINGS_CREATE),
            linked=service.linked_calendars(poll),
            state=service.state_of(poll, utcnow()),
            may_close=service.may_close(current_user, poll),
        ),
        status,
    )


@bp.post("/<int:poll_id>/book")
@login_required
def book(poll_id: int):
    """Book the chosen slot in one click; 409 with the reason if someone became busy."""
    poll = service.get_visible(current_user, poll_id)
    if poll is None:
        abort(404)
    if not current_user.can(Perm.BOOKINGS_CREATE):
        abort(403)
    option_id = parse_id(request.form.get("option_id")) or 0
    try:
        booking = service.book(current_user._get_current_object(), poll, option_id)
    except PermissionDenied:
        db.session.rollback()
        abort(403)
    except ConflictError as exc:
        db.session.rollback()
        return _detail_page(db.session.get(type(poll), poll_id), 409, str(exc))
    except (service.PollError, BookingError) as exc:
        db.session.rollback()
        return _detail_page(db.session.get(type(poll), poll_id), 422, str(exc))
    db.session.commit()
    flash("Booked. The poll is closed.", "success")
    return redirect(url_for("bookings.detail", booking_id=booking.id), 303)


# --- invitees: no account, the token in the link is the credential -------------------------


def _gone(message: str, status: int = 404):
    return (
        render_template(
            "errors/page.html", code=status, title="This link does not work", message=message
        ),
        status,
    )


@bp.route("/answer/<token>", methods=["GET", "POST"])
def answer(token: str):
    """GET shows the slots with the invitee's current answers; POST saves them."""
    invitee = service.invitee_for_token(token)
    if invitee is None:
        return _gone("This poll link is not valid. Check that you copied the whole link.")
    poll = invitee.poll
    if not poll.is_open(utcnow()):
        return _gone("This poll is closed: the organiser has chosen a time or it expired.", 410)
    given = request.values.get("tz")
    zone = zone_or_default(given, poll.organiser.timezone)  # detected in the browser, or chosen
    current = {a.option_id: a.answer for a in invitee.answers}
    error = None
    status = 200
    if request.method == "POST":
        chosen = {o.id: request.form.get(f"option-{o.id}", "") for o in poll.options}
        try:
            service.save_answers(invitee, chosen)
        except service.PollError as exc:
            db.session.rollback()
            error, status, current = str(exc), 422, chosen
        else:
            db.session.commit()
            return render_template("polls/answered.html", poll=poll), 200
    return (
        render_template(
            "polls/answer.html",
            poll=poll,
            invitee=invitee,
            current=current,
            choices=list(Answer),
            fmt=_formatter(zone),
            error=error,
            zone=zone.key,
            zones=zone_names(),
            tz_given=bool(given),
        ),
        status,
    )


# --- the organiser's polls (issue 15) --------------------------------------------------------


@bp.get("")
@permission_required(Perm.BOOKINGS_CREATE)
def index():
    """My polls: each with its state (open, answered, booked, closed) and what can be done."""
    now = utcnow()
    polls = service.my_polls(current_user)
    rows = [(poll, service.state_of(poll, now)) for poll in polls]
    return render_template("polls/index.html", rows=rows)


@bp.route("/<int:poll_id>/close", methods=["GET", "POST"])
@login_required
def close(poll_id: int):
    """GET asks for confirmation; POST closes the poll (its links stop taking answers)."""
    poll = service.get_visible(current_user, poll_id)
    if poll is None:
        abort(404)
    if not service.may_close(current_user, poll):
        return _detail_page(poll, 409, "This poll is already closed.")
    if request.method == "GET":
        return render_template("polls/close.html", poll=poll)
    try:
        service.close(current_user._get_current_object(), poll)
    except service.PollError as exc:
        db.session.rollback()
        return _detail_page(db.session.get(type(poll), poll_id), 409, str(exc))
    db.session.commit()
    flash("Poll closed. Its links no longer take answers.", "success")
    return redirect(url_for("polls.index"), 303)
