"""Capacity management screen (C5, seed 004), behind "Manage planning capacity".

- ``GET /capacity``: provisional and confirmed planning bookings, filtered by GET arguments
  (status, agent, type, from, to). HTMX asks for the table fragment and pushes the URL.
- ``GET /capacity/confirm?action=approve&ids=…``: the confirmation step, listing the chosen
  bookings; nothing changes on a GET.
- ``POST /capacity/bulk``: approve or reject them all, or none: one transaction; if any
  booking cannot change, the answer (409) names each one and why, and nothing was changed.
- ``GET|POST /capacity/<id>/reassign``: hand a booking to another agent who is free then.
"""

from __future__ import annotations

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
from flask_login import current_user
from sqlalchemy import select

from app import htmx
from app.accounts.access import permission_required
from app.accounts.models import User
from app.accounts.permissions import Perm
from app.bookings import capacity, policy, service
from app.bookings.forms import ActionForm
from app.bookings.lifecycle import Action, TransitionError, next_status
from app.bookings.models import BookingType
from app.extensions import db

bp = Blueprint("capacity", __name__, url_prefix="/capacity")

BULK = {"approve": Action.APPROVE, "reject": Action.REJECT}
PAST = {Action.APPROVE: "approved", Action.REJECT: "rejected"}


def _ids() -> list[int]:
    values = request.values.getlist("ids")
    try:
        return [int(v) for v in values]
    except ValueError:
        abort(400)


def _action() -> Action:
    action = BULK.get(request.values.get("action", ""))
    if action is None:
        abort(400)
    if not current_user.can(policy.ACTION_PERMISSION[action]):
        abort(403)
    return action


@bp.get("")
@permission_required(Perm.CAPACITY_MANAGE)
def index():
    filters = capacity.parse_filters(request.args)
    rows = capacity.planning_bookings(current_user, filters, current_user.zone)
    types = db.session.scalars(
        select(BookingType)
        .where(BookingType.requires_approval.is_(True))
        .order_by(BookingType.name)
    ).all()
    return htmx.render(
        "bookings/capacity.html",
        "bookings/_capacity_table.html",
        bookings=rows,
        filters=filters,
        agents=capacity.staff(),
        types=types,
        statuses=capacity.PLANNING_STATUSES,
        limit=capacity.LIMIT,
        can_approve=current_user.can(Perm.BOOKINGS_APPROVE),
        can_assign=current_user.can(Perm.BOOKINGS_ASSIGN),
    )


def _blockers(bookings, action: Action) -> dict[int, str]:
    """What the lifecycle will refuse, shown on the confirmation before anyone says yes."""
    problems = {}
    for booking in bookings:
        try:
            next_status(booking.status, action)
        except TransitionError as exc:
            problems[booking.id] = str(exc)
    return problems


def _confirm(bookings, action: Action, status: int = 200, error=None, problems=None):
    return htmx.render(
        "bookings/capacity_confirm.html",
        "bookings/_capacity_confirm.html",
        status,
        bookings=bookings,
        action=action,
        past=PAST[action],
        problems=problems if problems is not None else _blockers(bookings, action),
        error=error,
        action_form=ActionForm(),
        in_drawer=htmx.wants_fragment(),
    )


def _done(message: str, bookings):
    """What a change from the drawer answers: the outcome, and a nudge for the table."""
    fragment = render_template("bookings/_capacity_done.html", message=message, bookings=bookings)
    return htmx.changed(make_response(fragment))


@bp.get("/confirm")
@permission_required(Perm.CAPACITY_MANAGE)
def confirm():
    action, ids = _action(), _ids()
    bookings = capacity.chosen_bookings(current_user, ids)
    if bookings is None:
        abort(404)
    if not bookings:
        return _confirm([], action, 400, "Tick at least one booking first.")
    return _confirm(bookings, action)


@bp.post("/bulk")
@permission_required(Perm.CAPACITY_MANAGE)
def bulk():
    action, ids = _action(), _ids()
    bookings = capacity.chosen_bookings(current_user, ids)
    if bookings is None:
        abort(404)
    if not bookings:
        return _confirm([], action, 400, "Tick at least one booking first.")
    try:
        service.bulk_transition(current_user, bookings, action)
        db.session.commit()
    except service.BulkError as exc:
        db.session.rollback()
        problems = {f.booking_id: f.message for f in exc.failures}
        fresh = capacity.chosen_bookings(current_user, ids) or []
        return _confirm(fresh, action, 409, str(exc), problems)
    except service.BookingError as exc:
        db.session.rollback()
        return _confirm(bookings, action, 400, str(exc))
    message = f"{len(bookings)} booking{'s' if len(bookings) != 1 else ''} {PAST[action]}."
    if htmx.wants_fragment():
        return _done(message, bookings)
    flash(message, "success")
    return redirect(url_for("capacity.index"), 303)


def _planning_booking(booking_id: int):
    found = capacity.chosen_bookings(current_user, [booking_id])
    if not found:
        abort(404)
    return found[0]


@bp.route("/<int:booking_id>/reassign", methods=["GET", "POST"])
@permission_required(Perm.CAPACITY_MANAGE)
def reassign(booking_id: int):
    """Choose among the agents free for this booking's time, then move it to one of them."""
    booking = _planning_booking(booking_id)
    if not policy.can(current_user, Perm.BOOKINGS_ASSIGN, booking):
        abort(403)
    error, status = None, 200
    if request.method == "POST":
        ActionForm().validate_on_submit()  # CSRF is enforced globally
        agent = db.session.get(User, request.form.get("agent_id", type=int) or 0)
        if agent is None:
            error, status = "Choose who should take the booking.", 400
        else:
            old = booking.owner.name if booking.owner else "nobody"
            try:
                service.reassign(current_user, booking, agent, check_availability=True)
                db.session.commit()
            except policy.PermissionDenied:
                db.session.rollback()
                abort(403)
            except service.ConflictError as exc:
                db.session.rollback()
                error, status = str(exc), 409
            except service.BookingError as exc:
                db.session.rollback()
                error, status = str(exc), 400
            else:
                message = f"{booking.title} moved from {old} to {agent.name}."
                if htmx.wants_fragment():
                    return _done(message, [booking])
                flash(message, "success")
                return redirect(url_for("capacity.index"), 303)
    return htmx.render(
        "bookings/reassign.html",
        "bookings/_reassign.html",
        status,
        booking=booking,
        agents=capacity.free_agents(booking),
        error=error,
        action_form=ActionForm(),
        in_drawer=htmx.wants_fragment(),
    )
