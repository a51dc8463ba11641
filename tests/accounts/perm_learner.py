"""Permission-table builders for booking for oneself (/me/book, S7).

The pages need only a signed-in user; what each person may do there is decided per type and
per booking (``bookings.policy.may_book_type``, ``learner_refusal``): a learner books the
types bookable by learners and changes their own bookings; staff holding ``bookings.create``
book the types bookable by staff (themselves, or whoever the type's source offers when they
may assign) and change bookings they are part of with their own permissions; anyone else
(an employer) is refused: 403 for a type, 404 for a booking that is not theirs. So each
request carries the status its sender should get in ``ok``.

``register(tables)`` adds one valid request per route to the shared tables of
``tests/accounts/conftest.py`` (see the comment above ``OBJECT_BUILDERS`` there).
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace


def _capacity(actor) -> str:
    """ "learner", "staff" (may book staff types) or "none" for the sender."""
    if actor is None:
        return "learner"  # anonymous: sent to sign in whatever the request
    if actor.role.slug == "learner":
        return "learner"
    if actor.is_staff and actor.can("bookings.create"):
        return "staff"
    return "none"


def _scene(world, actor):
    """A type bookable by learners and staff, drawing on a group with one fresh agent; its
    slug, and the fresh agent. Written directly (any sender's builder needs one)."""
    from app.accounts.models import Group, User
    from app.bookings.models import AvailabilitySource, BookingType
    from app.database import begin_write
    from app.extensions import db

    n = next(world._days)
    agent = world.factory.user("agent", email=f"self-book-{n}@example.test")
    with world.app.app_context():
        begin_write()
        group = Group(slug=f"self-book-{n}", name=f"Self booking {n}")
        group.members = [db.session.get(User, agent.id)]
        kind = BookingType(
            slug=f"self-book-{n}",
            name=f"Self booking {n}",
            duration_minutes=30,
            bookable_by=["learner", "staff"],
            availability_source=AvailabilitySource.GROUP,
            availability_group=group,
            horizon_days=400,
        )
        db.session.add_all([group, kind])
        db.session.commit()
        return kind.id, kind.slug, agent


def _free_start(world, actor, kind_id, booking_id=None) -> str:
    """A start the sender is offered (a learner's view when the sender is not staff).

    Searched from two days ahead: the CSRF sweep posts it minutes after building, and the
    earliest slot of today can fall inside the minimum notice by then (a 409 in CI at 16:30)."""
    from app.accounts.models import User
    from app.bookings import learner
    from app.bookings.availability import slots_for
    from app.bookings.models import Booking, BookingType
    from app.database import utcnow
    from app.extensions import db

    with world.app.app_context():
        kind = db.session.get(BookingType, kind_id)
        search_from = utcnow() + timedelta(days=2)
        end = search_from + timedelta(days=30)
        booking = db.session.get(Booking, booking_id) if booking_id else None
        if actor is not None and _capacity(actor) != "none":
            user = db.session.get(User, actor.id)
            slots = learner.offered_slots(user, kind, search_from, end, booking=booking)
        else:
            slots = slots_for(kind, search_from, end, audience="public")
        choices = [s for s in slots if booking is None or s.start != booking.starts_at]
        start = choices[0].start.isoformat()
        db.session.rollback()
        return start


def _own_booking(world, actor, kind_id, agent):
    """A booking that is the sender's own to change here (someone else's for an employer)."""
    kind = SimpleNamespace(id=kind_id)  # the factory loads it by id
    capacity = _capacity(actor)
    when = world.future()
    if actor is not None and capacity == "learner":
        return world.factory.booking(None, kind, when, [agent], learner=actor)
    if capacity == "staff":
        return world.factory.booking(None, kind, when, [actor])
    return world.factory.booking(None, kind, when, [agent])


def _status(actor, allowed: int, refused: int) -> int:
    return refused if _capacity(actor) == "none" else allowed


def register(tables: dict) -> None:
    """Add this area's routes to the permission table."""
    req = tables["Req"]

    def index(world, holder, actor):
        return [req("self-book:index", "GET", "/me/book")]

    def picker(world, holder, actor):
        _, slug, _ = _scene(world, actor)
        return [req("self-book:picker", "GET", f"/me/book/{slug}", ok=_status(actor, 200, 403))]

    def book(world, holder, actor):
        kind_id, slug, _ = _scene(world, actor)
        data = {"start": _free_start(world, actor, kind_id)}
        ok = _status(actor, 303, 403)
        return [req("self-book:book", "POST", f"/me/book/{slug}", data, ok)]

    def reschedule_page(world, holder, actor):
        kind_id, _, agent = _scene(world, actor)
        booking = _own_booking(world, actor, kind_id, agent)
        url = f"/me/book/bookings/{booking.id}/reschedule"
        return [req("self-book:reschedule-get", "GET", url, ok=_status(actor, 200, 404))]

    def reschedule(world, holder, actor):
        kind_id, _, agent = _scene(world, actor)
        booking = _own_booking(world, actor, kind_id, agent)
        data = {"start": _free_start(world, actor, kind_id, booking.id)}
        url = f"/me/book/bookings/{booking.id}/reschedule"
        return [req("self-book:reschedule", "POST", url, data, _status(actor, 303, 404))]

    def cancel(world, holder, actor):
        kind_id, _, agent = _scene(world, actor)
        booking = _own_booking(world, actor, kind_id, agent)
        url = f"/me/book/bookings/{booking.id}/cancel"
        return [req("self-book:cancel", "POST", url, {}, _status(actor, 303, 404))]

    tables["LOGIN_ONLY_BUILDERS"].update(
        {
            "learner.index": index,
            "learner.picker": picker,
            "learner.book": book,
            "learner.reschedule_page": reschedule_page,
            "learner.reschedule": reschedule,
            "learner.cancel": cancel,
        }
    )
